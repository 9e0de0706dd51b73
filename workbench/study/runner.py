"""Run a study on Ray: one task per cell, resumable from MLflow, with a done/failed/running bar.

The driver (the ``workbench study`` process) expands the study into cells, asks MLflow which cells already
FINISHED (found by the cell-id tag under the study-id tag), submits the rest as Ray tasks, and builds the
report from every finished cell's run. The same code runs on a laptop (a local Ray started here) and on a
cluster (``address=`` or ``$RAY_ADDRESS``); workers log to the tracking URI the driver passes them.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import MissingDependencyError
from workbench.study.cell import CELL_TAG, REPORT_METRICS, STAGE_TAG, STUDY_TAG, run_cell
from workbench.study.config import StudyConfig, expand
from workbench.study.identities import load_identities
from workbench.workspace import Workspace


@dataclass
class StudyResult:
    run_id: str
    study_id: str
    cells: list[dict[str, Any]]  # finished cells (this run's and earlier runs')
    skipped: int  # finished before this run
    ran: int
    failed: list[dict[str, str]] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "study_id": self.study_id, "skipped": self.skipped, "ran": self.ran,
            "failed": self.failed, "n_cells": len(self.cells), "files": self.files, "report": self.report,
        }  # fmt: skip


def import_ray():
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError(
            "Studies run on Ray: pip install 'headshot-workbench[study]' (ray[tune], optuna)."
        ) from exc
    return ray


def start_ray(address: str | None, num_cpus: int | None):
    """Join ``address`` / ``$RAY_ADDRESS`` when given, else start a local Ray for this process."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS")
    # Workers import the workbench from the driver's working tree (a source checkout on a laptop).
    env = {
        "env_vars": {k: v for k, v in os.environ.items() if k.startswith(("WORKBENCH_", "HF_", "MLFLOW_"))}
    }
    if address:
        ray.init(address=address, runtime_env=env, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 runtime_env=env)  # fmt: skip
    return ray


def run_study(
    config: StudyConfig,
    workspace: Workspace,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    progress: bool = True,
) -> StudyResult:
    import mlflow

    from workbench.tracking import configure_tracking, tracking_uri
    from workbench.tracking.runs import DEFAULT_EXPERIMENT, EXPERIMENT_ENV_VAR

    identities = load_identities(config.testset, workspace, config.ladder_levels, config.max_identities)
    cells = expand(config, identities)
    experiment_id = configure_tracking(workspace)
    uri = tracking_uri(workspace)
    client = mlflow.MlflowClient(uri)
    study_id = config.study_id()
    parent_id = _parent_run(client, experiment_id, config, study_id, workspace)
    failed: list[dict[str, str]] = []
    ran = 0
    status = "FAILED"
    try:
        finished = _close_orphans_and_collect(client, experiment_id, study_id)
        todo = [c for c in cells if c.cell_id() not in finished]
        if todo:
            ray = start_ray(address, num_cpus)
            gpu = ray.cluster_resources().get("GPU", 0) > 0
            resources = {"num_gpus": 1} if gpu else {"num_cpus": config.cpus_per_cell}
            task = ray.remote(run_cell).options(max_retries=config.max_retries, retry_exceptions=False,
                                                **resources)  # fmt: skip
            kwargs = {"workspace_root": str(workspace.root), "tracking_uri": uri, "parent_run_id": parent_id,
                      "experiment": os.environ.get(EXPERIMENT_ENV_VAR, DEFAULT_EXPERIMENT)}  # fmt: skip
            pending = {task.remote(cell, **kwargs): cell for cell in todo}
            ran, failed = _wait_all(ray, pending, len(cells) - len(todo), len(cells), progress)
        done = _close_orphans_and_collect(client, experiment_id, study_id)
        cells_done = [done[c.cell_id()] for c in cells if c.cell_id() in done]
        result = StudyResult(parent_id, study_id, cells_done, len(cells) - len(todo), ran, failed)
        _report(result, config, client, workspace)
        status = "FINISHED" if not failed and len(cells_done) == len(cells) else "FAILED"
        return result
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        client.set_terminated(parent_id, status)


def _wait_all(ray, pending: dict, done: int, total: int, progress: bool) -> tuple[int, list[dict[str, str]]]:
    """Gather cells as they finish; the bar shows done / failed / running."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=done, desc="cells", unit="cell", disable=not progress, dynamic_ncols=True)
    failed: list[dict[str, str]] = []
    ran = 0
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=2.0)
            for ref in ready:
                cell = pending.pop(ref)
                try:
                    ray.get(ref)
                    ran += 1
                except Exception as exc:  # a cell's error (or a worker lost beyond its retries)
                    failed.append({"cell_id": cell.cell_id(), "identity": cell.identity,
                                   "method": cell.method["name"], "error": _first_line(exc)})  # fmt: skip
                bar.update(1)
            bar.set_postfix_str(f"failed={len(failed)} running={len(pending)}", refresh=True)
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        bar.close()
    return ran, failed


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    useful = [line for line in text if "Error" in line or "error" in line]
    return (useful[-1] if useful else text[-1] if text else type(exc).__name__)[:500]


def _parent_run(client, experiment_id: str, config: StudyConfig, study_id: str, workspace: Workspace) -> str:
    """The study's parent run: the existing one for this study id (a re-run continues it), else a new one."""
    runs = client.search_runs([experiment_id], f"tags.`{STUDY_TAG}` = '{study_id}' and tags.`{STAGE_TAG}` = 'study'",
                              order_by=["attributes.start_time ASC"], max_results=1)  # fmt: skip
    if runs:
        client.update_run(runs[0].info.run_id, status="RUNNING")
        return runs[0].info.run_id
    from workbench.tracking.runs import _code_tags

    tags = {STAGE_TAG: "study", STUDY_TAG: study_id, "mlflow.runName": config.name, **_code_tags()}
    run = client.create_run(experiment_id, tags=tags, run_name=config.name)
    run_id = run.info.run_id
    from mlflow.entities import Param

    params = [Param(k, str(v)[:6000]) for k, v in config.to_flat().items()]
    client.log_batch(run_id, params=params)
    with tempfile.TemporaryDirectory() as tmp:
        path = config.save_yaml(Path(tmp) / "study.yaml")  # re-runs the study: `workbench study study.yaml`
        client.log_artifact(run_id, str(path), "config")
    return run_id


def _close_orphans_and_collect(client, experiment_id: str, study_id: str) -> dict[str, dict[str, Any]]:
    """Cell runs left RUNNING by a dead driver or worker become KILLED; returns cell id -> finished cell."""
    runs = client.search_runs([experiment_id], f"tags.`{STUDY_TAG}` = '{study_id}' and tags.`{STAGE_TAG}` = 'cell'",
                              max_results=50000)  # fmt: skip
    finished: dict[str, dict[str, Any]] = {}
    for run in runs:
        if run.info.status == "RUNNING":  # its worker or driver died: the run and its stage runs end KILLED
            stages = client.search_runs([experiment_id], f"tags.`mlflow.parentRunId` = '{run.info.run_id}'")
            for dead in [run, *stages]:
                client.set_tag(dead.info.run_id, "workbench.study.orphaned", "true")
                if dead.info.status == "RUNNING":
                    client.set_terminated(dead.info.run_id, "KILLED")
        elif run.info.status == "FINISHED":
            tags, metrics = run.data.tags, run.data.metrics
            finished[tags[CELL_TAG]] = {
                "cell_id": tags[CELL_TAG], "run_id": run.info.run_id, "identity": tags["workbench.study.identity"],
                "method": tags["workbench.study.method"], "seed": int(tags["workbench.study.seed"]),
                "groups": {k.removeprefix("workbench.study.group."): v for k, v in tags.items()
                           if k.startswith("workbench.study.group.")},
                "metrics": {name: metrics.get(f"study.{name}", float("nan"))
                            for name in [*REPORT_METRICS, "train_loss"]},
            }  # fmt: skip
    return finished


def _report(result: StudyResult, config: StudyConfig, client, workspace: Workspace) -> None:
    from workbench.study.report import build_report, write_report

    if not result.cells:
        return
    result.report = build_report(result.cells, group_by=list(config.group_by),
                                 min_identities=config.min_identities, n_boot=config.n_boot)  # fmt: skip
    out = workspace.root / "studies" / f"{config.name}-{result.study_id}"
    files = write_report(result.report, out, config.name)
    result.files = {k: str(v) for k, v in files.items()}
    for path in files.values():
        client.log_artifact(result.run_id, str(path), "study")
    flat = {}
    for method, values in result.report["overall"].items():
        for metric, e in values.items():
            if isinstance(e.get("est"), float):
                flat[f"{method}.{metric}"] = e["est"]
    for key, value in flat.items():
        client.log_metric(result.run_id, key[:250], value)
