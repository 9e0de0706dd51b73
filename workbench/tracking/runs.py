"""One MLflow run per stage call, with the whole config, the code version and the environment logged.

The default store is a SQLite file plus a local artifact folder inside the workspace, so nothing leaves the
machine; ``MLFLOW_TRACKING_URI`` points a team at its own server instead.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow

from workbench.config import StageConfig
from workbench.workspace import Workspace

EXPERIMENT_ENV_VAR = "WORKBENCH_EXPERIMENT"
# Every run and registered model of a subject carries this tag: `forget` finds what to erase by it.
SUBJECT_TAG = "workbench.subject_id"
DEFAULT_EXPERIMENT = "headshot-workbench"
# Packages whose versions decide whether a run can be reproduced.
TRACKED_PACKAGES = (
    "torch", "diffusers", "transformers", "peft", "accelerate", "mlflow", "numpy", "dlib-bin",
    "opencv-python-headless", "colour-science", "gradio",
)  # fmt: skip
_MAX_PARAM_CHARS = 6000  # MLflow's limit for one param value
# mlflow.set_tracking_uri() also exports $MLFLOW_TRACKING_URI; remember what *we* set so that a value we
# exported ourselves is not mistaken for the user's choice when another workspace is used in this process.
_exported: dict[str, str | None] = {"uri": None}


def embedded_tracking_uri(workspace: Workspace) -> str:
    return f"sqlite:///{workspace.mlflow_dir / 'mlflow.db'}"


def tracking_uri(workspace: Workspace) -> str:
    """``$MLFLOW_TRACKING_URI`` when the user set it, else the embedded SQLite store in the workspace."""
    from_env = os.environ.get("MLFLOW_TRACKING_URI")
    if from_env and from_env != _exported["uri"]:
        return from_env
    return embedded_tracking_uri(workspace)


def _local_artifact_root(uri: str, workspace: Workspace) -> Path | None:
    """Where a local SQLite store's artifacts go: beside its database, so the store is one folder that can be
    found, moved and erased. Without this MLflow uses ``./mlruns`` of whatever folder the command ran in, and
    photos and reports would land there (and ``forget`` from another folder would miss them). None for a
    server, whose own artifact root applies."""
    if uri == embedded_tracking_uri(workspace):
        return workspace.mlflow_dir / "artifacts"
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).expanduser().resolve().parent / "artifacts"
    return None


def configure_tracking(workspace: Workspace) -> str:
    """Point MLflow at the workspace store and make sure the experiment exists; returns the experiment id."""
    uri = tracking_uri(workspace)
    if uri == embedded_tracking_uri(workspace):
        workspace.rebase_tracking_store()  # a moved or copied workspace writes its artifacts here, not there
    mlflow.set_tracking_uri(uri)
    if uri == embedded_tracking_uri(workspace):
        _exported["uri"] = uri
    name = os.environ.get(EXPERIMENT_ENV_VAR, DEFAULT_EXPERIMENT)
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        mlflow.set_experiment(experiment_id=experiment.experiment_id)
        return experiment.experiment_id
    artifacts = _local_artifact_root(uri, workspace)
    artifact_location = None
    if artifacts is not None:
        artifacts.mkdir(parents=True, exist_ok=True)
        artifact_location = artifacts.as_uri()
    workspace.mlflow_dir.mkdir(parents=True, exist_ok=True)
    experiment_id = mlflow.create_experiment(name, artifact_location=artifact_location)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


@contextmanager
def stage_run(
    workspace: Workspace,
    stage: str,
    config: StageConfig,
    *,
    subject_id: str | None = None,
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """Open an MLflow run for one stage call; nests under an active run (the demo's parent) if there is one.

    The run ends FINISHED on success, KILLED on Ctrl-C and FAILED on any other exception. A process killed
    outright cannot end its run; the run's pid and host tags let the next command mark it KILLED
    (:func:`mark_dead_runs`), so no run stays RUNNING for ever.
    """
    experiment_id = configure_tracking(workspace)
    mark_dead_runs(experiment_id)  # any command of the workbench tidies up after killed ones
    nested = mlflow.active_run() is not None
    all_tags = {"workbench.stage": stage, **_code_tags(), **_process_tags(), **(tags or {})}
    if subject_id:
        all_tags[SUBJECT_TAG] = subject_id
    run = mlflow.start_run(run_name=run_name, nested=nested, tags=all_tags)
    try:
        _log_config(config)
        log_json(_package_versions(), "environment/packages.json")
        yield run
    except KeyboardInterrupt:
        mlflow.end_run(status="KILLED")
        raise
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    else:
        mlflow.end_run(status="FINISHED")


# -- runs whose process was killed -------------------------------------------------------------------------------
# A process killed with SIGKILL (or by the OOM killer, or a power cut) cannot end its run: it stays RUNNING. Each
# run records which process owns it, so that a later command on the same host can tell that it is gone.
PID_TAG, HOST_TAG, PID_START_TAG = "workbench.pid", "workbench.host", "workbench.pid_start"


def _process_tags() -> dict[str, str]:
    tags = {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}
    started = _process_start(os.getpid())
    if started is not None:
        tags[PID_START_TAG] = started
    return tags


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), so that a reused pid is not taken for it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 of proc(5); the name in (...) may hold spaces


def process_alive(pid: int, started: str | None = None) -> bool:
    """Whether process ``pid`` (started at ``started``, when recorded) still runs on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    if started is not None:
        now = _process_start(pid)
        if now is not None and now != started:
            return False  # the pid was reused by a later process
    return True


def mark_dead_runs(experiment_id: str, client: Any = None) -> list[str]:
    """End as KILLED every RUNNING run of this host whose process is gone; returns their run ids.

    Runs of other hosts are left alone (their processes cannot be checked from here), and so are runs that
    recorded no pid (made by an older workbench).
    """
    client = client or mlflow.MlflowClient()
    host = socket.gethostname()
    running = client.search_runs(
        [experiment_id], f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{_quote(host)}'"
    )
    killed = []
    for run in running:
        tags = run.data.tags
        try:
            pid = int(tags.get(PID_TAG, ""))
        except ValueError:
            continue
        if process_alive(pid, tags.get(PID_START_TAG)):
            continue
        client.set_tag(run.info.run_id, "workbench.ended_by", f"process {pid} on {host} was gone")
        client.set_terminated(run.info.run_id, status="KILLED")
        killed.append(run.info.run_id)
    return killed


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def subject_runs(workspace: Workspace, subject: str) -> list[Any]:
    """Every MLflow run of ``subject``, newest first, after marking the runs of killed processes KILLED."""
    experiment_id = configure_tracking(workspace)
    client = mlflow.MlflowClient()
    mark_dead_runs(experiment_id, client)
    return client.search_runs(
        [experiment_id],
        f"tags.`{SUBJECT_TAG}` = '{_quote(subject)}'",
        order_by=["attributes.start_time DESC"],
    )


def log_json(data: Any, artifact_file: str) -> None:
    mlflow.log_text(json.dumps(data, indent=2, default=str), artifact_file)


def _log_config(config: StageConfig) -> None:
    params = {k: _param_value(v) for k, v in config.to_flat().items()}
    mlflow.log_params(params)
    with tempfile.TemporaryDirectory() as tmp:
        # The YAML re-runs the stage: `workbench <stage> --recipe config.yaml`.
        path = Path(tmp) / f"{config.stage_name()}.yaml"
        config.save_yaml(path)
        mlflow.log_artifact(str(path), artifact_path="config")


def _param_value(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= _MAX_PARAM_CHARS else text[: _MAX_PARAM_CHARS - 3] + "..."


@lru_cache(maxsize=1)
def _code_tags() -> dict[str, str]:
    """The git commit of the workbench checkout (and whether it had local changes), when it is one."""
    repo = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo, capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return {"workbench.version": _version("headshot-workbench")}
    return {
        "mlflow.source.git.commit": commit,
        "workbench.git_dirty": str(bool(dirty)).lower(),
        "workbench.version": _version("headshot-workbench"),
    }


@lru_cache(maxsize=1)
def _package_versions() -> dict[str, str]:
    return {name: _version(name) for name in TRACKED_PACKAGES}


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"
