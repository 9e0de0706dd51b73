"""The contract every stage follows, so that the CLI, the app, notebooks, studies and sweeps call them alike.

    run_<stage>(subject, config, *, workspace, events=None, <the stage's own inputs>) -> <Stage>Result

* ``subject`` is an argument, never a config field: a config is a recipe that fits any subject.
* The result is a typed dataclass that extends :class:`StageResult` (``run_id`` and an existing ``out_dir``).
* The work runs inside :func:`tracked_stage`: one MLflow run that ends FINISHED, FAILED when the stage raises,
  and KILLED on Ctrl-C or when ``events.should_stop()`` fires.
* :class:`StageEvents` is the one small hook object every stage calls (in the spirit of diffusers'
  ``callback_on_step_end``): progress, run started/finished, and should-stop. Front ends subclass it: the CLI
  and notebooks draw tqdm bars (:class:`TqdmEvents`), the app feeds ``gr.Progress`` and a Cancel button, a
  study runner reports to its driver. Stopping is cooperative: a stage checks at its next step boundary and
  raises :class:`StageStopped`, so nothing is injected into a running thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.config import StageConfig
    from workbench.workspace import Workspace

STAGES = ("intake", "train", "generate", "eval")


class StageStopped(KeyboardInterrupt):
    """Raised by a stage at a step boundary after ``events.should_stop()``; ends its run KILLED like Ctrl-C."""


@dataclass(kw_only=True)
class StageResult:
    """What every stage returns: its MLflow run and the folder it wrote (extended by each stage)."""

    run_id: str
    out_dir: Path


@dataclass(frozen=True)
class Progress:
    """One progress report: ``done`` of ``total`` units of ``stage``; ``item`` is what was just made, if any."""

    stage: str
    done: int
    total: int | None
    unit: str = "step"
    message: str = ""
    item: Any = None


class StageEvents:
    """The hooks a stage calls. The base class records nothing and never stops; subclass what you need.

    Thread-safe for the one pattern front ends need: the stage runs in one thread and another thread (a
    Cancel button, a pruner, a driver) calls :meth:`request_stop`.
    """

    def __init__(self) -> None:
        self._stop = threading.Event()

    # -- called by the stages --------------------------------------------------------------------------------
    def run_started(self, stage: str, run_id: str) -> None:
        """The stage's MLflow run is open (a front end can link to it, a study can record it)."""

    def progress(self, update: Progress) -> None:
        """``update.done`` of ``update.total`` units are finished."""

    def run_finished(self, stage: str, run_id: str, status: str) -> None:
        """The run ended: FINISHED, FAILED or KILLED."""

    def validated(self, stage: str, step: int, metrics: dict[str, float]) -> None:
        """The stage measured itself mid-run (the trainer's validation every N steps): what pruners listen to."""

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def raise_if_stopped(self) -> None:
        """What a stage calls at each step boundary."""
        if self.should_stop():
            raise StageStopped("stopped on request")

    # -- called by front ends ----------------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Ask the running stage to stop at its next step boundary (its run ends KILLED)."""
        self._stop.set()


class TqdmEvents(StageEvents):
    """One tqdm bar per stage (terminal in the CLI, a widget in Jupyter through ``tqdm.auto``)."""

    def __init__(self, *, disable: bool = False) -> None:
        super().__init__()
        self.disable = disable
        self._bars: dict[str, Any] = {}

    def progress(self, update: Progress) -> None:
        bar = self._bars.get(update.stage)
        if bar is None:
            from tqdm.auto import tqdm

            bar = tqdm(total=update.total, desc=update.stage, unit=update.unit, disable=self.disable,
                       dynamic_ncols=True)  # fmt: skip
            self._bars[update.stage] = bar
        bar.total = update.total
        bar.n = update.done
        if update.message:
            bar.set_postfix_str(update.message, refresh=False)
        bar.refresh()

    def run_finished(self, stage: str, run_id: str, status: str) -> None:
        bar = self._bars.pop(stage, None)
        if bar is not None:
            bar.close()


class RecordingEvents(StageEvents):
    """Keeps every event (tests, and a caller that wants the run ids of a chain of stages)."""

    def __init__(self, *, stop_after: int | None = None) -> None:
        super().__init__()
        self.started: list[tuple[str, str]] = []
        self.updates: list[Progress] = []
        self.finished: list[tuple[str, str, str]] = []
        self.stop_after = stop_after  # request a stop after this many progress reports (tests of Cancel)

    def run_started(self, stage: str, run_id: str) -> None:
        self.started.append((stage, run_id))

    def progress(self, update: Progress) -> None:
        self.updates.append(update)
        if self.stop_after is not None and len(self.updates) >= self.stop_after:
            self.request_stop()

    def run_finished(self, stage: str, run_id: str, status: str) -> None:
        self.finished.append((stage, run_id, status))


@contextmanager
def tracked_stage(
    stage: str,
    subject: str | None,
    config: StageConfig,
    *,
    workspace: Workspace,
    events: StageEvents,
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
) -> Iterator[Any]:
    """The MLflow run of one stage call, with the events told when it opens and how it ends."""
    from workbench.tracking import stage_run

    with stage_run(workspace, stage, config, subject_id=subject, run_name=run_name, tags=tags) as run:
        run_id = run.info.run_id
        events.run_started(stage, run_id)
        try:
            events.raise_if_stopped()
            yield run
        except KeyboardInterrupt:
            events.run_finished(stage, run_id, "KILLED")
            raise
        except BaseException:
            events.run_finished(stage, run_id, "FAILED")
            raise
        events.run_finished(stage, run_id, "FINISHED")


@dataclass(frozen=True)
class StageSpec:
    """Where a stage's function and config live, for callers that handle every stage alike (CLI, tests)."""

    name: str
    module: str
    function: str
    config: str

    def load(self) -> tuple[type[StageConfig], Any]:
        """(config class, run function), imported on demand: torch and diffusers load only when used."""
        import importlib

        module = importlib.import_module(self.module)
        return getattr(module, self.config), getattr(module, self.function)


STAGE_SPECS: dict[str, StageSpec] = {
    "intake": StageSpec("intake", "workbench.intake", "run_intake", "IntakeConfig"),
    "train": StageSpec("train", "workbench.train", "run_train", "TrainConfig"),
    "generate": StageSpec("generate", "workbench.generate", "run_generate", "GenerateConfig"),
    "eval": StageSpec("eval", "workbench.evaluate", "run_eval", "EvalConfig"),
}
