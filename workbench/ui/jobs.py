"""Long stage calls in a worker thread that the UI can watch and cancel.

A handler that simply calls ``train_lora`` blocks until it returns, so the page could neither show the curves
while it runs nor stop it: Gradio's ``cancels=`` stops the *event*, not the Python call inside it. The job runs
the call in a thread (with the caller's context, so ``gr.Progress(track_tqdm=True)`` still sees its tqdm
bars), lets the handler poll it, and cancels it by raising ``KeyboardInterrupt`` inside that thread: every
stage treats Ctrl-C the same way (the MLflow run ends KILLED, checkpoints stay resumable).
"""

from __future__ import annotations

import contextvars
import ctypes
import threading
from collections.abc import Callable
from typing import Any


class Job:
    def __init__(self, fn: Callable[[], Any]) -> None:
        self._fn = fn
        self.result: Any = None
        self.error: BaseException | None = None
        self.cancelled = False
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._run,), daemon=True, name="workbench-job"
        )

    def _run(self) -> None:
        try:
            self.result = self._fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting handler, which re-raises it
            self.error = exc

    def start(self) -> Job:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; True once the job has finished."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def cancel(self) -> None:
        """Raise KeyboardInterrupt in the worker at its next Python instruction (a running C kernel finishes)."""
        if not self._thread.is_alive() or self._thread.ident is None:
            return
        self.cancelled = True
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(self._thread.ident), ctypes.py_object(KeyboardInterrupt)
        )

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


class JobBoard:
    """The running job of each browser session (one app instance owns one board; nothing is module-level)."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(self, session: str, fn: Callable[[], Any]) -> Job:
        job = Job(fn)
        with self._lock:
            self._jobs[session] = job
        return job.start()

    def cancel(self, session: str) -> bool:
        with self._lock:
            job = self._jobs.get(session)
        if job is None or not job.running:
            return False
        job.cancel()
        return True

    def finish(self, session: str, job: Job) -> None:
        with self._lock:
            if self._jobs.get(session) is job:
                del self._jobs[session]
