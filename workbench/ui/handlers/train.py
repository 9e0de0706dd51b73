"""The Train tab: a recipe fills the widgets; only what the user changed overrides it; live curves; Cancel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from workbench.ui import forms
from workbench.ui import runs as R
from workbench.ui.choices import NO_RECIPE
from workbench.ui.handlers.common import StageJob, final_state, stopped_text
from workbench.ui.jobs import Tick
from workbench.ui.sessions import Viewer
from workbench.workspace import Workspace

DEFAULT_RECIPE = "tiny-demo"  # seconds on a CPU; the other recipes are for a GPU
NOT_STARTED = "No training yet: pick a recipe, change what you want, and press Train."
NO_CURVES = (
    "*No curves yet: the loss (every step) and likeness (at each validation) appear here from MLflow.*"
)


def recipe_config(recipe: str | None) -> Any:
    """The recipe's TrainConfig (user's ``experiments/train`` first, then the built-ins), or the defaults."""
    from workbench.train import TrainConfig

    if not recipe or recipe == NO_RECIPE:
        return TrainConfig()
    return TrainConfig.from_yaml(recipe)


def fill(recipe: str | None) -> dict[str, Any]:
    """The values the Train tab's widgets show for ``recipe`` (by field name, see ``forms.TRAIN_FIELDS``)."""
    return forms.form_values(recipe_config(recipe), forms.TRAIN_FIELDS)


def train_config(recipe: str | None, values: dict[str, Any], extra: str = "") -> Any:
    """The recipe with only the widgets the user changed, and the extra ``KEY=VALUE`` lines, over it."""
    return forms.apply(recipe_config(recipe), values, forms.parse_extra(extra))


def start_train(
    workspace: Workspace, viewer: Viewer, subject: str | None, recipe: str | None, values: dict[str, Any],
    extra: str = "",
) -> StageJob:  # fmt: skip
    """Check the subject and build the config (errors surface before any thread starts)."""
    from workbench.train import run_train

    subject = viewer.require(workspace, subject)
    config = train_config(recipe, values, extra)
    return StageJob(
        subject, config, lambda events: run_train(subject, config, workspace=workspace, events=events)
    )


@dataclass(frozen=True)
class TrainView:
    status: str
    loss: pd.DataFrame | None  # None clears the plot (an empty frame would keep the last run's legend)
    likeness: pd.DataFrame | None

    @property
    def note(self) -> str:
        """What the plots show, or why they are empty."""
        if self.loss is None and self.likeness is None:
            return NO_CURVES
        return "*Loss at every step, likeness at each validation (from the run's MLflow metrics).*"


def curves(workspace: Workspace, run_id: str | None) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """Loss and validation (likeness) curves of a run, read from MLflow; None where nothing is logged yet."""
    if not run_id:
        return None, None
    frames = R.metric_history(workspace, run_id, "loss"), R.metric_history(workspace, run_id, "val_")
    return tuple(None if frame.empty else frame for frame in frames)  # type: ignore[return-value]


def view(workspace: Workspace, job: StageJob, tick: Tick) -> TrainView:
    """What the tab shows at one tick of the watcher (re-raises the stage's error once it failed)."""
    loss, likeness = curves(workspace, tick.run_id)
    where = f"Training `{job.subject}` on `{job.config.model}`"
    if not tick.done:
        p = tick.progress
        step = f"step {p.done} of {p.total}" if p else "loading the model and the training set"
        return TrainView(f"{where}: {step}…", loss, likeness)
    if tick.stopped:
        after = f"Checkpoints are kept: `workbench train --subject {job.subject} --resume` continues it."
        return TrainView(stopped_text(workspace, tick, "Training", after), loss, likeness)
    result = tick.outcome()
    text = (
        f"Done: {result.steps} steps in {result.seconds:.1f} s, final loss {result.final_loss:.4f}. "
        f"LoRA: `{result.lora_file}` (MLflow run `{result.run_id}`, {final_state(workspace, tick)})."
    )
    return TrainView(text, loss, likeness)
