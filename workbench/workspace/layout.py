"""The workspace: one folder that holds every subject's files, every run's outputs and the tracking store.

Layout (everything of one subject lives under ``subjects/<id>/`` so it can be found, expired and erased)::

    <workspace>/
      subjects/<id>/subject.json      who, when, identifier token, retention
      subjects/<id>/originals/        uploads, byte-identical
      subjects/<id>/holdout/          held-out photos: never trained on; the eval's unseen real photos
      subjects/<id>/intake/           per-photo report, embeddings
      subjects/<id>/dataset/          aligned crops + metadata.jsonl (HF imagefolder)
      subjects/<id>/loras/<run>/      adapters and checkpoints
      subjects/<id>/generations/<run>/ images with provenance
      subjects/<id>/evaluations/<run>/ reports and plots
      mlflow/mlflow.db, mlflow/artifacts/   the embedded tracking store
      ui-cache/                       the app's uploads and published copies (Gradio's cache folder)
      cache/                          built tiny models, class images (no personal data)

Records store paths relative to the root (:meth:`Workspace.relative`) and read them back with
:meth:`Workspace.absolute`, so a workspace folder can be moved or copied; the embedded MLflow store, which can
only hold absolute artifact locations, is rebased onto the current root when it is opened
(:meth:`Workspace.rebase_tracking_store`).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from workbench.errors import WorkbenchError

ENV_VAR = "WORKBENCH_WORKSPACE"
CACHE_ENV_VAR = "WORKBENCH_CACHE"  # shared cache of built models (no personal data), e.g. across test runs
DEFAULT_DIR = "workspace"
_SUBJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def validate_subject_id(subject_id: str) -> str:
    return _folder_name(subject_id, "Subject id", "it names a folder, so no spaces or slashes")


def validate_run_name(run_name: str) -> str:
    """A run name names a folder under the subject's: the same rule as subject ids (no '..', no '/')."""
    return _folder_name(
        run_name, "Run name", "it names a folder inside the subject's, so no spaces, slashes or '..'"
    )


def _folder_name(value: str, what: str, why: str) -> str:
    # fullmatch, not match: `$` also matches before a trailing newline, which would name a folder "alice\n".
    if not isinstance(value, str) or not _SUBJECT_ID.fullmatch(value):
        raise WorkbenchError(f"{what} {value!r} is not valid: use 1-64 letters, digits, '-' or '_' ({why}).")
    return value


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def resolve(cls, path: str | Path | None = None) -> Workspace:
        """The flag wins, then ``$WORKBENCH_WORKSPACE``, then ``./workspace``."""
        chosen = path or os.environ.get(ENV_VAR) or DEFAULT_DIR
        return cls(Path(chosen).expanduser().resolve())

    # -- shared folders -------------------------------------------------------------------------------------
    @property
    def subjects_dir(self) -> Path:
        return self.root / "subjects"

    @property
    def mlflow_dir(self) -> Path:
        return self.root / "mlflow"

    @property
    def ui_cache_dir(self) -> Path:
        """The app's uploads and the copies it hands to the browser (set as ``$GRADIO_TEMP_DIR``): inside the
        workspace, so that ``forget`` finds them."""
        return self.root / "ui-cache"

    @property
    def cache_dir(self) -> Path:
        return Path(os.environ[CACHE_ENV_VAR]) if os.environ.get(CACHE_ENV_VAR) else self.root / "cache"

    # -- one subject ----------------------------------------------------------------------------------------
    def subject_dir(self, subject_id: str) -> Path:
        return self.subjects_dir / validate_subject_id(subject_id)

    def subject_path(self, subject_id: str, *parts: str) -> Path:
        return self.subject_dir(subject_id).joinpath(*parts)

    def originals_dir(self, subject_id: str) -> Path:
        return self.subject_path(subject_id, "originals")

    def dataset_dir(self, subject_id: str) -> Path:
        return self.subject_path(subject_id, "dataset")

    def holdout_dir(self, subject_id: str) -> Path:
        return self.subject_path(subject_id, "holdout")

    def intake_dir(self, subject_id: str) -> Path:
        return self.subject_path(subject_id, "intake")

    def lora_dir(self, subject_id: str, run_name: str) -> Path:
        return self.subject_path(subject_id, "loras", validate_run_name(run_name))

    def generation_dir(self, subject_id: str, run_name: str) -> Path:
        return self.subject_path(subject_id, "generations", validate_run_name(run_name))

    def evaluation_dir(self, subject_id: str | None, run_name: str) -> Path:
        """A subject's evaluation folder; a test-set evaluation (no subject) goes under ``evaluations/``."""
        if subject_id is None:
            return self.root / "evaluations" / validate_run_name(run_name)
        return self.subject_path(subject_id, "evaluations", validate_run_name(run_name))

    def subjects(self) -> list[str]:
        if not self.subjects_dir.is_dir():
            return []
        return sorted(p.name for p in self.subjects_dir.iterdir() if (p / "subject.json").is_file())

    def read_subject(self, subject_id: str) -> dict[str, Any]:
        path = self.subject_path(subject_id, "subject.json")
        if not path.is_file():
            raise WorkbenchError(
                f"No subject '{subject_id}' in workspace {self.root}: run `workbench intake --subject {subject_id} "
                "PHOTOS...` first, or pass --workspace to point at the right folder."
            )
        return json.loads(path.read_text())

    def write_subject(self, subject_id: str, **fields: Any) -> dict[str, Any]:
        """Create or update ``subject.json`` (created_at is set once and kept)."""
        path = self.subject_path(subject_id, "subject.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        record = json.loads(path.read_text()) if path.is_file() else {}
        record.setdefault("subject_id", subject_id)
        record.setdefault("created_at", datetime.now(timezone.utc).isoformat())
        record.update(fields)
        path.write_text(json.dumps(record, indent=2))
        return record

    # -- paths in records: relative to the root, so a moved or copied workspace still finds its files ---------
    def relative(self, path: str | Path) -> str:
        """``path`` relative to the root (POSIX) when it lies inside the workspace; otherwise unchanged."""
        resolved = Path(path).expanduser().resolve()
        try:
            return resolved.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def absolute(self, stored: str | Path) -> Path:
        """A path read from a record: relative ones are resolved against the current root."""
        path = Path(stored).expanduser()
        return path if path.is_absolute() else self.root / path

    def rebase_tracking_store(self) -> int:
        """Point the embedded MLflow store's artifact locations at this root after the folder was moved/copied.

        MLflow keeps absolute ``file://`` URIs per experiment, run, logged model and model version; left alone,
        a moved workspace would write new artifacts to its old place and ``forget`` would miss the copies here.
        Only locations under an old ``<root>/mlflow/artifacts`` are rewritten. Returns the rows changed.
        """
        db = self.mlflow_dir / "mlflow.db"
        if not db.is_file():
            return 0
        new_uri = (self.mlflow_dir / "artifacts").as_uri()
        changed = 0
        with closing(sqlite3.connect(db)) as connection:
            rows = connection.execute("SELECT artifact_location FROM experiments").fetchall()
            olds = {r[0].rstrip("/") for r in rows if r[0] and r[0].startswith("file://")
                    and r[0].rstrip("/").endswith("/mlflow/artifacts") and r[0].rstrip("/") != new_uri}  # fmt: skip
            for old_uri in olds:
                old_path, new_path = unquote(urlparse(old_uri).path), str(self.mlflow_dir / "artifacts")
                for old, new in ((old_uri, new_uri), (old_path, new_path)):
                    for table, column in _LOCATION_COLUMNS:
                        changed += _replace_prefix(connection, table, column, old, new)
            connection.commit()
        return changed

    def new_run_name(self, stage: str) -> str:
        return f"{stage}-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S-%f')}"


# Where MLflow's SQL schema keeps artifact locations (checked against mlflow 3.17's schema).
_LOCATION_COLUMNS = (
    ("experiments", "artifact_location"), ("runs", "artifact_uri"), ("logged_models", "artifact_location"),
    ("model_versions", "source"), ("model_versions", "storage_location"),
)  # fmt: skip


def _replace_prefix(connection: sqlite3.Connection, table: str, column: str, old: str, new: str) -> int:
    try:
        cursor = connection.execute(
            f"UPDATE {table} SET {column} = ? || substr({column}, ?) "  # noqa: S608 - names are constants above
            f"WHERE substr({column}, 1, ?) = ? AND (length({column}) = ? OR substr({column}, ?, 1) = '/')",
            (new, len(old) + 1, len(old), old, len(old), len(old) + 1),
        )
    except sqlite3.OperationalError:  # an older schema without this table
        return 0
    return cursor.rowcount
