"""The subject's data lifecycle: erase everything of one subject, and expire subjects past their retention.

Erasing means gone, not hidden: MLflow's ``delete_run`` only marks a run deleted, so the runs tagged
``workbench.subject_id=<id>`` are deleted, their artifacts removed from the artifact store, and their rows
purged the way ``mlflow gc`` does it. A SQLite store is then vacuumed, because SQLite keeps deleted rows in
free pages until it is.
"""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import unquote, urlparse

from workbench.errors import WorkbenchError
from workbench.tracking import SUBJECT_TAG
from workbench.workspace import Workspace, validate_subject_id


def forget_subject(subject_id: str, workspace: Workspace | str | Path | None = None) -> dict:
    """Erase the subject's folder and every MLflow run, artifact and model of it; report what was removed."""
    validate_subject_id(subject_id)
    ws = workspace if isinstance(workspace, Workspace) else Workspace.resolve(workspace)
    report: dict = {"subject_id": subject_id, "workspace": str(ws.root)}
    report.update(_forget_tracking(subject_id, ws))
    folder = ws.subjects_dir / subject_id
    files, size = _count_files(folder)
    if folder.exists():
        shutil.rmtree(folder)
    report.update(files_removed=files, bytes_removed=size, subject_folder=str(folder))
    report["found"] = bool(files or report["runs_deleted"])
    report["remaining"] = _remaining(subject_id, ws)
    if report["remaining"]["files"] or report["remaining"]["runs"]:
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

    uri = tracking_uri(ws)
    result: dict = {
        "tracking_uri": uri,
        "runs_deleted": [],
        "artifact_files_removed": 0,
        "models_deleted": [],
    }
    db = _sqlite_path(uri)
    if db is not None and not db.exists():
        return result  # never tracked anything: do not create an empty store just to search it
    import mlflow
    from mlflow.entities import ViewType
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
    from mlflow.tracking._tracking_service.utils import _get_store

    client = mlflow.MlflowClient(uri)
    store = _get_store(uri)
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    runs = _subject_runs(client, experiments, subject_id)
    run_ids = {r.info.run_id for r in runs}
    result["models_deleted"] = _forget_models(client, store, experiments, run_ids, subject_id)
    for run in runs:
        result["artifact_files_removed"] += _delete_artifacts(run.info.artifact_uri, get_artifact_repository)
        if run.info.lifecycle_stage != "deleted":
            client.delete_run(run.info.run_id)
        store._hard_delete_run(run.info.run_id)  # what `mlflow gc` does: the rows themselves go
        result["runs_deleted"].append(run.info.run_id)
    if db is not None and run_ids:
        with closing(sqlite3.connect(db)) as connection:
            connection.execute("VACUUM")  # deleted rows otherwise stay readable in SQLite's free pages
        result["store_vacuumed"] = True
    return result


def _subject_runs(client, experiments: list[str], subject_id: str) -> list:
    from mlflow.entities import ViewType

    if not experiments:
        return []
    runs, token = [], None
    while True:
        page = client.search_runs(
            experiments, f"tags.`{SUBJECT_TAG}` = '{subject_id}'", run_view_type=ViewType.ALL,
            max_results=1000, page_token=token,
        )  # fmt: skip
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _forget_models(client, store, experiments: list[str], run_ids: set[str], subject_id: str) -> list[str]:
    """Logged models and registered model versions made by the subject's runs (e.g. its LoRAs)."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    removed: list[str] = []
    if run_ids and experiments and hasattr(store, "_hard_delete_logged_model"):
        for model in _all_pages(lambda token: client.search_logged_models(experiments, page_token=token)):
            if model.source_run_id in run_ids or model.tags.get(SUBJECT_TAG) == subject_id:
                _delete_artifacts(model.artifact_location, get_artifact_repository)
                store._hard_delete_logged_model(model.model_id)
                removed.append(f"logged-model:{model.model_id}")
    try:
        registered = _all_pages(lambda token: client.search_registered_models(page_token=token))
    except Exception:  # noqa: BLE001 - a store without a registry has nothing registered to erase
        return removed
    for model in registered:
        versions = client.search_model_versions(f"name = '{model.name}'")
        mine = [v for v in versions if v.run_id in run_ids or v.tags.get(SUBJECT_TAG) == subject_id]
        if model.tags.get(SUBJECT_TAG) == subject_id or (mine and len(mine) == len(versions)):
            client.delete_registered_model(model.name)  # deletes the versions and their tags with it
            removed.append(f"registered-model:{model.name}")
            continue
        for version in mine:
            for key in version.tags:
                client.delete_model_version_tag(model.name, version.version, key)
            client.delete_model_version(model.name, version.version)
            removed.append(f"model-version:{model.name}/{version.version}")
    return removed


def _all_pages(search) -> list:
    items, token = [], None
    while True:
        page = search(token)
        items.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return items


def _delete_artifacts(uri: str | None, get_repository) -> int:
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
    get_repository(uri).delete_artifacts()  # remote stores: the repository knows how
    return 0


def _local_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and uri[1:3] in (":\\", ":/")):
        return Path(uri).resolve()
    return None


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None


def _count_files(folder: Path) -> tuple[int, int]:
    if not folder.exists():
        return 0, 0
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def _remaining(subject_id: str, ws: Workspace) -> dict:
    from workbench.tracking import tracking_uri

    files, _ = _count_files(ws.subjects_dir / subject_id)
    runs = 0
    uri = tracking_uri(ws)
    db = _sqlite_path(uri)
    if db is None or db.exists():
        import mlflow
        from mlflow.entities import ViewType

        client = mlflow.MlflowClient(uri)
        experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
        runs = len(_subject_runs(client, experiments, subject_id))
    return {"files": files, "runs": runs}
