"""The workspace: one folder that holds every subject's files, every run's outputs and the tracking store.

Layout (everything of one subject lives under ``subjects/<id>/`` so it can be found, expired and erased)::

    <workspace>/
      subjects/<id>/subject.json      who, when, identifier token, retention
      subjects/<id>/originals/        uploads, byte-identical
      subjects/<id>/intake/           per-photo report, embeddings
      subjects/<id>/dataset/          aligned crops + metadata.jsonl (HF imagefolder)
      subjects/<id>/loras/<run>/      adapters and checkpoints
      subjects/<id>/generations/<run>/ images with provenance
      subjects/<id>/evaluations/<run>/ reports and plots
      mlflow/mlflow.db, mlflow/artifacts/   the embedded tracking store
      cache/                          built tiny models, class images (no personal data)
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

ENV_VAR = "WORKBENCH_WORKSPACE"
CACHE_ENV_VAR = "WORKBENCH_CACHE"  # shared cache of built models (no personal data), e.g. across test runs
DEFAULT_DIR = "workspace"
_SUBJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def validate_subject_id(subject_id: str) -> str:
    # fullmatch, not match: `$` also matches before a trailing newline, which would name a folder "alice\n".
    if not isinstance(subject_id, str) or not _SUBJECT_ID.fullmatch(subject_id):
        raise WorkbenchError(
            f"Subject id {subject_id!r} is not valid: use 1-64 letters, digits, '-' or '_' "
            "(it names a folder, so no spaces or slashes)."
        )
    return subject_id


def validate_run_name(run_name: str) -> str:
    """A run name names a folder under the subject's: the same rule as subject ids (no '..', no '/')."""
    if not isinstance(run_name, str) or not _SUBJECT_ID.fullmatch(run_name):
        raise WorkbenchError(
            f"Run name {run_name!r} is not valid: use 1-64 letters, digits, '-' or '_' "
            "(it names a folder inside the subject's, so no spaces, slashes or '..')."
        )
    return run_name


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

    def new_run_name(self, stage: str) -> str:
        return f"{stage}-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S-%f')}"
