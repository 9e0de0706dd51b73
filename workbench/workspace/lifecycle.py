"""The subject's data lifecycle: erase everything of one subject, and expire subjects past their retention.

Erasing means gone, not hidden, on the embedded store and on a team's ``mlflow server`` alike, through MLflow's
public client API only:

1. the runs tagged ``workbench.subject_id=<id>`` are found by tag search; their artifacts are deleted through
   the artifact repository (local folder, ``mlflow-artifacts:`` proxy, S3, ...); the tags that name the subject
   are deleted; the runs are deleted; logged models and registered LoRA versions made by them are deleted;
2. MLflow's delete only marks a run deleted, so the rows are then purged with ``mlflow gc`` (a public CLI) on
   the backend store: the embedded SQLite store itself, or ``$WORKBENCH_BACKEND_STORE_URI`` in team mode
   (the server's database; without it the report says which ``mlflow gc`` command an operator must run).
   A SQLite store is then vacuumed, because SQLite keeps deleted rows in free pages until it is;
3. the subject's folder goes, and so does every copy the app made: its published copies and any file in the
   app's upload cache (``ui-cache/``) whose SHA-256 is that of one of the subject's files.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import unquote, urlparse

from workbench.errors import WorkbenchError
from workbench.tracking import SUBJECT_TAG
from workbench.workspace import Workspace, validate_subject_id
from workbench.workspace.loras import registered_model_name

BACKEND_ENV_VAR = "WORKBENCH_BACKEND_STORE_URI"  # team mode: the server's database, for `mlflow gc`
PUBLISHED = "published"  # ui-cache/published/<subject>/: the app's copies of a subject's images


def forget_subject(subject_id: str, workspace: Workspace | str | Path | None = None) -> dict:
    """Erase the subject's folder, the app's copies and every MLflow run, artifact and model of it; report
    what was removed."""
    validate_subject_id(subject_id)
    ws = workspace if isinstance(workspace, Workspace) else Workspace.resolve(workspace)
    report: dict = {"subject_id": subject_id, "workspace": str(ws.root)}
    report.update(_forget_tracking(subject_id, ws))
    folder = ws.subjects_dir / subject_id
    digests = _digests(folder)
    files, size = _count_files(folder)
    if folder.exists():
        shutil.rmtree(folder)
    report.update(files_removed=files, bytes_removed=size, subject_folder=str(folder))
    report["app_copies_removed"] = _forget_app_copies(subject_id, ws, digests)
    report["found"] = bool(files or report["runs_deleted"] or report["app_copies_removed"])
    report["remaining"] = _remaining(subject_id, ws, report["runs_deleted"])
    if any(report["remaining"].values()):
        raise WorkbenchError(
            f"Subject '{subject_id}' could not be erased completely ({report['remaining']}): check file "
            "permissions in the workspace and that no other process holds the tracking store open."
        )
    return report


def expire_subjects(
    workspace: Workspace | str | Path | None = None, now: datetime | None = None
) -> list[dict]:
    """Forget every subject whose retention has run out; returns one :func:`forget_subject` report each."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace.resolve(workspace)
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    reports = []
    for subject_id in ws.subjects():
        try:
            expires = expiry(ws.read_subject(subject_id))
        except (ValueError, KeyError, TypeError):
            continue  # an unreadable subject.json: leave it for a person to judge, never guess and erase
        if expires is not None and expires <= now:
            report = forget_subject(subject_id, ws)
            report["expired_at"] = expires.isoformat()
            reports.append(report)
    return reports


def expiry(record: dict) -> datetime | None:
    """When the subject's data expires: ``created_at + retention_days`` (None: kept until forgotten)."""
    days = record.get("retention_days")
    if days is None:
        return None
    created = datetime.fromisoformat(record["created_at"])
    if created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    return created + timedelta(days=float(days))


# -- the tracking store ----------------------------------------------------------------------------------------
def _forget_tracking(subject_id: str, ws: Workspace) -> dict:
    from workbench.tracking import tracking_uri
    from workbench.tracking.runs import embedded_tracking_uri

    uri = tracking_uri(ws)
    result: dict = {
        "tracking_uri": uri, "runs_deleted": [], "artifact_files_removed": 0, "tags_deleted": 0,
        "models_deleted": [], "purged": False,
    }  # fmt: skip
    db = _sqlite_path(uri)
    if db is not None and not db.exists():
        return result  # never tracked anything: do not create an empty store just to search it
    if uri == embedded_tracking_uri(ws):
        ws.rebase_tracking_store()  # a moved workspace: erase the artifacts here, not at the old place
    import mlflow
    from mlflow.entities import ViewType

    client = mlflow.MlflowClient(uri, registry_uri=uri)  # explicit: never the process's global store
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    runs = _subject_runs(client, experiments, subject_id)
    run_ids = {r.info.run_id for r in runs}
    models, logged = _forget_models(client, experiments, run_ids, subject_id, uri)
    result["models_deleted"] = models
    for run in runs:
        result["artifact_files_removed"] += _delete_artifacts(client, run.info.artifact_uri, uri)
        for key, value in run.data.tags.items():
            if key == SUBJECT_TAG or subject_id in str(value):  # e.g. workbench.run_dir=subjects/<id>/...
                client.delete_tag(run.info.run_id, key)
                result["tags_deleted"] += 1
        if run.info.lifecycle_stage != "deleted":
            client.delete_run(run.info.run_id)
        result["runs_deleted"].append(run.info.run_id)
        # A LoRA fetched from this run (`--lora mlflow:<run_id>`) was downloaded into the workspace's cache.
        downloaded = ws.cache_dir / "mlflow-loras" / run.info.run_id
        if downloaded.exists():
            shutil.rmtree(downloaded)
    if run_ids:
        result.update(_purge(uri, sorted(run_ids), logged))
    return result


def _purge(uri: str, run_ids: list[str], logged_models: list[str]) -> dict:
    """Remove the deleted rows for good with ``mlflow gc`` on the backend store (then VACUUM a SQLite one)."""
    server = uri.startswith(("http://", "https://"))
    backend = os.environ.get(BACKEND_ENV_VAR) if server else uri
    args = ["--run-ids", ",".join(run_ids)]
    if logged_models:
        args += ["--logged-model-ids", ",".join(logged_models)]
    if not backend:  # a server whose database this machine cannot reach: say what the operator must run
        command = ["mlflow", "gc", "--backend-store-uri", "<the server's database URI>", *args]
        return {"purged": False, "purge_command": shlex.join(command)}
    if server:
        args += ["--tracking-uri", uri]  # resolves the server's mlflow-artifacts: locations
    # A child process: `mlflow gc` in this one would set the global tracking URI (and export it) to the one it
    # read from the environment when mlflow.cli was first imported, sending later calls to a stale store.
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    done = subprocess.run([sys.executable, "-m", "mlflow", "gc", *args, "--backend-store-uri", backend],
                          env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise WorkbenchError(
            f"The runs were deleted but `mlflow gc` could not purge them ({last}): run it by hand: "
            f"{shlex.join(['mlflow', 'gc', *args, '--backend-store-uri', '<the database URI>'])}"
        )
    db = _sqlite_path(backend)
    if db is not None:
        with closing(sqlite3.connect(db)) as connection:
            connection.execute("VACUUM")  # deleted rows otherwise stay readable in SQLite's free pages
    return {"purged": True, "store_vacuumed": db is not None}


def _subject_runs(client, experiments: list[str], subject_id: str) -> list:
    from mlflow.entities import ViewType

    if not experiments:
        return []
    return _all_pages(lambda token: client.search_runs(
        experiments, f"tags.`{SUBJECT_TAG}` = '{subject_id}'", run_view_type=ViewType.ALL,
        max_results=1000, page_token=token,
    ))  # fmt: skip


def _forget_models(client, experiments: list[str], run_ids: set[str], subject_id: str, uri: str):
    """Logged models and registered model versions made by the subject's runs (e.g. its LoRAs)."""
    removed: list[str] = []
    logged: list[str] = []
    if run_ids and experiments:
        for model in _all_pages(lambda token: client.search_logged_models(experiments, page_token=token)):
            if model.source_run_id in run_ids or model.tags.get(SUBJECT_TAG) == subject_id:
                _delete_artifacts(client, model.artifact_location, uri)
                client.delete_logged_model(model.model_id)
                logged.append(model.model_id)
                removed.append(f"logged-model:{model.model_id}")
    try:
        registered = _all_pages(lambda token: client.search_registered_models(page_token=token))
    except Exception:  # noqa: BLE001 - a store without a registry has nothing registered to erase
        return removed, logged
    for model in registered:
        versions = client.search_model_versions(f"name = '{model.name}'")
        mine = [v for v in versions if v.run_id in run_ids or v.tags.get(SUBJECT_TAG) == subject_id]
        if (
            model.tags.get(SUBJECT_TAG) == subject_id
            or model.name == registered_model_name(subject_id)  # exact: "ann" must not take "joanna"'s
            or (mine and len(mine) == len(versions))
        ):
            client.delete_registered_model(model.name)  # deletes the versions and their tags with it
            removed.append(f"registered-model:{model.name}")
            continue
        for version in mine:
            client.delete_model_version(model.name, version.version)
            removed.append(f"model-version:{model.name}/{version.version}")
    for name, version in _models_naming(client, subject_id):  # e.g. a version whose model row went first
        client.delete_model_version(name, version)
        removed.append(f"model-version:{name}/{version}")
    return removed, logged


def _models_naming(client, subject_id: str) -> list[tuple[str, str]]:
    """(model name, version) of every model version still named after or tagged with the subject."""
    try:
        versions = _all_pages(lambda token: client.search_model_versions(page_token=token))
    except Exception:  # noqa: BLE001 - a store without a registry has no versions
        return []
    return [(v.name, v.version) for v in versions
            if v.name == registered_model_name(subject_id) or v.tags.get(SUBJECT_TAG) == subject_id]  # fmt: skip


def _all_pages(search) -> list:
    items, token = [], None
    while True:
        page = search(token)
        items.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return items


def _delete_artifacts(client, uri: str | None, tracking_uri: str) -> int:
    """Delete everything under an artifact location; returns the number of files it held."""
    if not uri:
        return 0
    local = _local_path(uri)
    if local is not None:
        count, _ = _count_files(local)
        if local.exists():
            shutil.rmtree(local)
        run_dir = local.parent if local.name == "artifacts" else None
        if run_dir is not None and run_dir.exists() and not any(run_dir.iterdir()):
            run_dir.rmdir()
        return count
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repository = get_artifact_repository(uri, tracking_uri=tracking_uri)  # proxy, S3, GCS, ...: it knows how
    count = _count_remote(repository, None)
    if count:
        repository.delete_artifacts()
    return count


def _count_remote(repository, path: str | None) -> int:
    count = 0
    for item in repository.list_artifacts(path):
        count += _count_remote(repository, item.path) if item.is_dir else 1
    return count


def _local_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and uri[1:3] in (":\\", ":/")):
        return Path(uri).resolve()
    return None


def _sqlite_path(uri: str | None) -> Path | None:
    return Path(uri[len("sqlite:///") :]) if uri and uri.startswith("sqlite:///") else None


# -- the app's copies ------------------------------------------------------------------------------------------
def _forget_app_copies(subject_id: str, ws: Workspace, digests: set[str]) -> int:
    """The app's published copies of the subject, and uploads in its cache with the bytes of a subject's file."""
    cache = ws.ui_cache_dir
    if not cache.is_dir():
        return 0
    removed, _ = _count_files(cache / PUBLISHED / subject_id)
    if (cache / PUBLISHED / subject_id).exists():
        shutil.rmtree(cache / PUBLISHED / subject_id)
    for path in [p for p in cache.rglob("*") if p.is_file()]:
        if _sha256(path) in digests:
            path.unlink()
            removed += 1
            if path.parent != cache and not any(path.parent.iterdir()):
                path.parent.rmdir()  # Gradio's per-upload folder
    return removed


def _digests(folder: Path) -> set[str]:
    return {_sha256(p) for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _count_files(folder: Path) -> tuple[int, int]:
    if not folder.exists():
        return 0, 0
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def _remaining(subject_id: str, ws: Workspace, deleted: list[str]) -> dict:
    """What a fresh look still finds: files in the subject's folder, runs tagged with it (deleted or not),
    model versions named after or tagged with it."""
    from workbench.tracking import tracking_uri

    files, _ = _count_files(ws.subjects_dir / subject_id)
    runs = models = 0
    uri = tracking_uri(ws)
    db = _sqlite_path(uri)
    if db is None or db.exists():
        import mlflow
        from mlflow.entities import ViewType

        client = mlflow.MlflowClient(uri, registry_uri=uri)
        experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
        runs = len(_subject_runs(client, experiments, subject_id))
        models = len(_models_naming(client, subject_id))
    return {"files": files, "runs": runs, "models": models}
