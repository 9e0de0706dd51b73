"""Reading the MLflow store for the Runs tab, the live training curves and a run's final state (reads only)."""

from __future__ import annotations

import os
from typing import Any

import mlflow
import pandas as pd

from workbench.tracking import SUBJECT_TAG
from workbench.tracking.runs import DEFAULT_EXPERIMENT, EXPERIMENT_ENV_VAR, tracking_uri
from workbench.ui.sessions import Viewer
from workbench.workspace import Workspace

STAGE_TAG = "workbench.stage"


def client(workspace: Workspace) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri(workspace))


def experiment_ids(workspace: Workspace) -> list[str]:
    name = os.environ.get(EXPERIMENT_ENV_VAR, DEFAULT_EXPERIMENT)
    try:
        experiment = client(workspace).get_experiment_by_name(name)
    except Exception:  # noqa: BLE001 - an empty or missing store simply has no runs yet
        return []
    return [experiment.experiment_id] if experiment is not None else []


def list_runs(workspace: Workspace, subjects: list[str] | None, max_results: int = 200) -> list[Any]:
    """Runs newest first; only those of ``subjects`` (None = every run, for an operator)."""
    ids = experiment_ids(workspace)
    if not ids:
        return []
    runs = client(workspace).search_runs(
        ids, max_results=max_results, order_by=["attributes.start_time DESC"]
    )
    if subjects is None:
        return list(runs)
    allowed = set(subjects)
    return [r for r in runs if r.data.tags.get(SUBJECT_TAG) in allowed]


def visible_runs(workspace: Workspace, viewer: Viewer) -> list[Any]:
    """The runs of the subjects ``viewer`` may see (every run for the local researcher and the operator)."""
    return list_runs(workspace, None if viewer.sees_all else viewer.subjects(workspace))


def run_choices(runs: list[Any]) -> list[tuple[str, str]]:
    return [
        (f"{r.info.run_name} · {r.data.tags.get(STAGE_TAG, '')} · {r.info.status}", r.info.run_id)
        for r in runs
    ]


def run_status(workspace: Workspace, run_id: str) -> str | None:
    """FINISHED, FAILED, KILLED or RUNNING as the tracking store has it; None for an unknown run."""
    try:
        return client(workspace).get_run(run_id).info.status
    except Exception:  # noqa: BLE001 - a run id the store does not know
        return None


def run_params(workspace: Workspace, run_id: str) -> dict[str, str]:
    return dict(client(workspace).get_run(run_id).data.params)


def runs_frame(runs: list[Any]) -> pd.DataFrame:
    if not runs:
        return pd.DataFrame(
            {"No runs yet": ["Intake, training, generation and evaluation runs appear here."]}
        )
    rows = []
    for run in runs:
        info, tags = run.info, run.data.tags
        rows.append({
            "run_id": info.run_id,
            "name": info.run_name,
            "stage": tags.get(STAGE_TAG, ""),
            "subject": tags.get(SUBJECT_TAG, ""),
            "status": info.status,
            "started": pd.to_datetime(info.start_time, unit="ms").strftime("%Y-%m-%d %H:%M:%S"),
            "metrics": len(run.data.metrics),
        })  # fmt: skip
    columns = ["run_id", "name", "stage", "subject", "status", "started", "metrics"]
    return pd.DataFrame(rows, columns=columns)


def compare_frame(runs: list[Any]) -> pd.DataFrame:
    """Params and latest metrics side by side: one row per key, one column per run."""
    if not runs:
        return pd.DataFrame(
            {"Nothing to compare yet": ["Pick two or more runs above: params and metrics side by side."]}
        )
    keys_params = sorted({k for r in runs for k in r.data.params})
    keys_metrics = sorted({k for r in runs for k in r.data.metrics})
    rows = []
    for kind, keys, attr in (("metric", keys_metrics, "metrics"), ("param", keys_params, "params")):
        for key in keys:
            row = {"kind": kind, "key": key}
            for run in runs:
                value = getattr(run.data, attr).get(key, "")
                row[_column(run)] = f"{value:.4g}" if isinstance(value, float) else str(value)
            rows.append(row)
    frame = pd.DataFrame(rows)
    if len(runs) > 1:  # differences first: that is what a comparison is for
        values = frame[[_column(r) for r in runs]]
        frame.insert(2, "differs", values.nunique(axis=1) > 1)
        frame = frame.sort_values(["differs", "kind"], ascending=[False, True], kind="stable")
    return frame


def _column(run: Any) -> str:
    return f"{run.info.run_name or ''} ({run.info.run_id[:8]})"


def metric_history(workspace: Workspace, run_id: str, match: str) -> pd.DataFrame:
    """Every logged value of the metrics whose name contains ``match``, long format (step, value, metric)."""
    mlflow_client = client(workspace)
    try:
        run = mlflow_client.get_run(run_id)
    except mlflow.exceptions.MlflowException:  # not (yet) in this store: nothing to draw
        return pd.DataFrame(columns=["step", "value", "metric"])
    rows = []
    for key in sorted(k for k in run.data.metrics if match in k):
        for point in mlflow_client.get_metric_history(run_id, key):
            rows.append({"step": point.step, "value": point.value, "metric": key})
    return pd.DataFrame(rows, columns=["step", "value", "metric"])
