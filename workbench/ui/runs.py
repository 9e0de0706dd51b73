"""Reading the MLflow store for the Runs tab and the live training curves (reads only, never writes)."""

from __future__ import annotations

import os
from typing import Any

import mlflow
import pandas as pd

from workbench.tracking import SUBJECT_TAG
from workbench.tracking.runs import DEFAULT_EXPERIMENT, EXPERIMENT_ENV_VAR, tracking_uri
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


def runs_frame(runs: list[Any]) -> pd.DataFrame:
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
        return pd.DataFrame({"key": []})
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
    run = mlflow_client.get_run(run_id)
    rows = []
    for key in sorted(k for k in run.data.metrics if match in k):
        for point in mlflow_client.get_metric_history(run_id, key):
            rows.append({"step": point.step, "value": point.value, "metric": key})
    return pd.DataFrame(rows, columns=["step", "value", "metric"])


def latest_stage_run(workspace: Workspace, subject_id: str, stage: str, since_ms: int) -> str | None:
    """The id of the newest ``stage`` run of ``subject_id`` started after ``since_ms`` (epoch milliseconds)."""
    ids = experiment_ids(workspace)
    if not ids:
        return None
    runs = client(workspace).search_runs(
        ids,
        filter_string=f"tags.`{SUBJECT_TAG}` = '{subject_id}' and tags.`{STAGE_TAG}` = '{stage}' "
        f"and attributes.start_time >= {since_ms}",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0].info.run_id if runs else None
