"""Long stage calls in a worker thread, watched by one generator and stopped through the stage's events.

A handler that simply called ``run_train`` would block until it returned: the page could neither show the
curves while it runs nor stop it (Gradio's ``cancels=`` stops the *event*, not the Python call inside it). So a
:class:`Job` runs the stage in a thread with a :class:`UiEvents` (the stage contract's hooks, see
:mod:`workbench.stage`); :func:`watch` polls it and yields a :class:`Tick` that the tab turns into a status
line, a ``gr.Progress`` bar and live results. Cancel calls ``request_stop()``: the stage stops at its next step
boundary and its MLflow run ends KILLED; nothing is injected into the thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from workbench.errors import WorkbenchError
from workbench.stage import Progress, StageEvents, StageStopped

POLL_S = 0.5


class UiEvents(StageEvents):
    """Records what the stage reports, for the watcher in another thread (every field read under a lock)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.run_id: str | None = None
        self.status: str | None = None  # FINISHED / FAILED / KILLED once the run ended
        self.last: Progress | None = None
        self.items: list[Any] = []  # every Progress.item, in order (the generated images)

    def run_started(self, stage: str, run_id: str) -> None:
        with self._lock:
            self.run_id = run_id

    def progress(self, update: Progress) -> None:
        with self._lock:
            self.last = update
            if update.item is not None:
                self.items.append(update.item)

    def run_finished(self, stage: str, run_id: str, status: str) -> None:
        with self._lock:
            self.status = status

    def snapshot(self) -> tuple[str | None, str | None, Progress | None, tuple[Any, ...]]:
        with self._lock:
            return self.run_id, self.status, self.last, tuple(self.items)


@dataclass(frozen=True)
class Tick:
    """What the watcher sees at one poll: the run, the latest progress and, once done, the outcome."""

    stage: str
    run_id: str | None
    progress: Progress | None
    items: tuple[Any, ...]
    done: bool = False
    status: str | None = None  # as the events heard it; the tracking store has the last word
    result: Any = None
    error: BaseException | None = None

    @property
    def stopped(self) -> bool:
        return isinstance(self.error, StageStopped)

    def outcome(self) -> Any:
        """The stage's result; re-raises its error, except a requested stop (then None)."""
        if self.error is not None and not self.stopped:
            raise self.error
        return self.result

    def bar(self) -> tuple[tuple[int, int | None] | None, str]:
        """(``gr.Progress`` value, description): ``(done, total)`` and e.g. "train: 3/20 step"."""
        if self.progress is None:
            return None, f"{self.stage}: starting…"
        p = self.progress
        text = f"{self.stage}: {p.done}/{p.total if p.total is not None else '?'} {p.unit}"
        return (p.done, p.total), f"{text} · {p.message}" if p.message else text


class Job:
    """One stage call in a daemon thread; ``fn`` gets the job's events."""

    def __init__(self, stage: str, fn: Callable[[StageEvents], Any]) -> None:
        self.stage = stage
        self.events = UiEvents()
        self._fn = fn
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"workbench-{stage}")

    def _run(self) -> None:
        try:
            self.result = self._fn(self.events)
        except BaseException as exc:  # noqa: BLE001 - handed to the watcher, which hands it to the handler
            self.error = exc

    def start(self) -> Job:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout: float | None) -> bool:
        """Wait up to ``timeout`` seconds; True once the job has finished."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def cancel(self) -> None:
        """Ask the stage to stop at its next step (its MLflow run then ends KILLED)."""
        self.events.request_stop()

    def tick(self) -> Tick:
        done = not self._thread.is_alive()
        run_id, status, last, items = self.events.snapshot()
        if not done:
            return Tick(self.stage, run_id, last, items)
        return Tick(self.stage, run_id, last, items, True, status, self.result, self.error)


def watch(job: Job, poll_s: float = POLL_S) -> Iterator[Tick]:
    """Yield a :class:`Tick` every ``poll_s`` seconds while ``job`` runs, then one final tick (``done``)."""
    while not job.wait(poll_s):
        yield job.tick()
    yield job.tick()


class JobBoard:
    """The running job of each (person, stage): one per app, nothing at module level.

    Filed under the viewer's key (the login, or "local"), so a reloaded page, or the same login in another
    browser, can still cancel it; a job keeps running when its page goes away.
    """

    def __init__(self) -> None:
        self._jobs: dict[tuple[str, str], Job] = {}
        self._lock = threading.Lock()

    def start(self, key: str, stage: str, fn: Callable[[StageEvents], Any]) -> Job:
        with self._lock:
            current = self._jobs.get((key, stage))
            if current is not None and current.running:
                raise WorkbenchError(
                    f"A {stage} job of yours is still running: wait for it to finish, or press Cancel first."
                )
            job = self._jobs[(key, stage)] = Job(stage, fn)
        return job.start()

    def running(self, key: str, stage: str) -> Job | None:
        with self._lock:
            job = self._jobs.get((key, stage))
        return job if job is not None and job.running else None

    def cancel(self, key: str, stage: str) -> bool:
        """Ask the running ``stage`` job of ``key`` to stop; False when none is running."""
        job = self.running(key, stage)
        if job is None:
            return False
        job.cancel()
        return True
