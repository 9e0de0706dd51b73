"""Empty states and final states shared by the tabs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from workbench.stage import StageEvents
from workbench.ui import runs as R
from workbench.ui.jobs import Tick
from workbench.workspace import Workspace

UNITS = {"img": "images"}


@dataclass(frozen=True)
class StageJob:
    """What a tab's button starts: the subject, the config it runs with (if any) and the call the job thread
    makes with the stage events."""

    subject: str
    config: Any
    call: Callable[[StageEvents], Any]  # plurals of the stages' progress units that are not just unit + "s"


def message_frame(state: str, hint: str) -> pd.DataFrame:
    """A table that says why it is empty and what fills it (a bare one would show column headers "1 2 3")."""
    return pd.DataFrame({state: [hint]})


def final_state(workspace: Workspace, tick: Tick) -> str:
    """The run's final status from the tracking store (the events' view if the store has none)."""
    stored = R.run_status(workspace, tick.run_id) if tick.run_id else None
    return stored or tick.status or ("KILLED" if tick.stopped else "unknown")


def stopped_text(workspace: Workspace, tick: Tick, what: str, after: str) -> str:
    """The status line after Cancel: where it stopped and the run's final state as MLflow stored it."""
    p = tick.progress
    where = (
        f" after {p.done} of {p.total} {UNITS.get(p.unit, p.unit + 's')}" if p else " before its first step"
    )
    run = f"MLflow run `{tick.run_id}`" if tick.run_id else "The run"
    return f"{what} cancelled{where}. {run} is **{final_state(workspace, tick)}**. {after}"
