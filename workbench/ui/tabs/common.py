"""Gradio glue the tabs share: errors as toasts, the progress bar fed from the job watcher, the GPU queue."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import gradio as gr

from workbench.errors import MissingDependencyError, WorkbenchError
from workbench.ui.jobs import Tick

# Train, generate and evaluate share one queue, one at a time: two LoRA trainings on one GPU would both run out
# of memory.
GPU = {"concurrency_limit": 1, "concurrency_id": "gpu"}


def shown(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Show a WorkbenchError as a Gradio error toast with the CLI's sentence (also for generators)."""

    def reraise(exc: BaseException) -> None:
        raise gr.Error(str(exc), print_exception=False) from exc

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any):
            try:
                yield from fn(*args, **kwargs)
            except (WorkbenchError, MissingDependencyError) as exc:
                reraise(exc)

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any):
        try:
            return fn(*args, **kwargs)
        except (WorkbenchError, MissingDependencyError) as exc:
            reraise(exc)

    return wrapper


def feed(progress: Any, tick: Tick) -> None:
    """One tick of the job watcher as ``gr.Progress`` (hidden once the job is done)."""
    value, desc = tick.bar()
    if tick.done:
        progress(None)
    elif value is None or value[1] is None:
        progress(0.0, desc=desc)
    else:
        progress(value, desc=desc, unit=tick.progress.unit if tick.progress else "steps")


def cancel(jobs: Any, key: str, stage: str) -> None:
    """The Cancel button: ask the running job to stop at its next step; the watcher then shows KILLED."""
    if jobs.cancel(key, stage):
        gr.Info("Stopping after the current step…")
    else:
        gr.Info(f"No {stage} job of yours is running.")
