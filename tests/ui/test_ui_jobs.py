"""The one job watcher: progress while a stage runs, its outcome at the end, and Cancel through the events."""

from __future__ import annotations

import threading

import pytest

from workbench.config import StageConfig
from workbench.errors import WorkbenchError
from workbench.stage import Progress, StageEvents, StageStopped, tracked_stage
from workbench.ui import runs as R
from workbench.ui.handlers.common import final_state, stopped_text
from workbench.ui.jobs import Job, JobBoard, watch


def _stepper(n: int, gate: threading.Event | None = None, fail_at: int | None = None):
    """A stage-shaped function: n steps, each reported, stopping at a step boundary when asked."""

    def run(events: StageEvents) -> str:
        for step in range(1, n + 1):
            if gate is not None:
                gate.wait(5)
            if step == fail_at:
                raise WorkbenchError("step 2 went wrong: here is the fix")
            events.progress(Progress("toy", step, n, unit="img", item=f"image-{step}"))
            events.raise_if_stopped()
        return "all done"

    return run


def test_watcher_yields_progress_then_the_result() -> None:
    ticks = list(watch(Job("toy", _stepper(3)).start(), poll_s=0.01))
    final = ticks[-1]
    assert final.done and final.outcome() == "all done" and not final.stopped
    assert final.items == (
        "image-1",
        "image-2",
        "image-3",
    )  # every Progress.item, in order (the live gallery)
    assert final.progress.done == 3 and final.bar() == ((3, 3), "toy: 3/3 img")
    assert all(not t.done for t in ticks[:-1])


def test_a_tick_before_any_progress_says_it_is_starting() -> None:
    gate = threading.Event()
    job = Job("toy", _stepper(1, gate)).start()
    first = next(watch(job, poll_s=0.01))
    assert not first.done and first.progress is None and first.bar() == (None, "toy: starting…")
    gate.set()
    assert list(watch(job, poll_s=0.01))[-1].outcome() == "all done"


def test_the_stage_error_reaches_the_handler_with_its_sentence() -> None:
    final = list(watch(Job("toy", _stepper(3, fail_at=2)).start(), poll_s=0.01))[-1]
    assert final.done and final.items == ("image-1",)
    with pytest.raises(WorkbenchError, match="here is the fix"):
        final.outcome()


def test_cancel_asks_the_stage_to_stop_at_its_next_step() -> None:
    gate = threading.Event()
    board = JobBoard()
    job = board.start("ana", "toy", _stepper(100, gate))
    assert board.running("ana", "toy") is job and not board.cancel("bo", "toy")  # someone else's: untouched
    assert board.cancel("ana", "toy")
    gate.set()
    final = list(watch(job, poll_s=0.01))[-1]
    assert final.stopped and isinstance(final.error, StageStopped) and final.outcome() is None
    assert final.progress.done == 1  # the step under way finished; nothing was injected into the thread
    assert board.running("ana", "toy") is None and not board.cancel("ana", "toy")


def test_one_job_per_person_and_stage() -> None:
    gate = threading.Event()
    board = JobBoard()
    board.start("ana", "train", _stepper(1, gate))
    with pytest.raises(WorkbenchError, match="still running"):
        board.start("ana", "train", _stepper(1))
    other = board.start("ana", "generate", _stepper(1))  # another stage, or another person, may run
    gate.set()
    assert list(watch(other, poll_s=0.01))[-1].outcome() == "all done"


def test_cancel_ends_the_mlflow_run_killed_and_the_app_reads_that_from_the_store(workspace) -> None:
    def stage(events: StageEvents) -> str:
        with tracked_stage("train", None, StageConfig(), workspace=workspace, events=events):
            for step in range(1, 1000):
                events.progress(Progress("train", step, 999))
                events.raise_if_stopped()
                threading.Event().wait(0.01)
        return "never"

    board = JobBoard()
    job = board.start("local", "train", stage)
    for tick in watch(job, poll_s=0.02):
        if tick.progress is not None and not job.events.should_stop():
            board.cancel("local", "train")  # what the Cancel button does, once the first steps are reported
    final = tick
    assert final.stopped and final.status == "KILLED" and final.run_id
    assert R.run_status(workspace, final.run_id) == "KILLED"
    assert final_state(workspace, final) == "KILLED"
    text = stopped_text(workspace, final, "Training", "Resume later.")
    assert f"MLflow run `{final.run_id}` is **KILLED**" in text and "cancelled after" in text
