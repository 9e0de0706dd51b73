"""``run_intake``: photos in; per-photo verdicts, set findings, an aligned training set and an MLflow run out.

Order of work for each file: read the bytes once -> keep them byte-identical in ``originals/`` -> decode ->
detect and check -> near-duplicate against the photos accepted so far -> aligned crop and embedding. Any
failure of one file becomes a reason on that file; the batch always goes on.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from workbench.errors import WorkbenchError
from workbench.faces import get_backend
from workbench.intake.align import warp
from workbench.intake.checks import assess_image, duplicate_check, perceptual_hash
from workbench.intake.config import IntakeConfig
from workbench.intake.dataset import EMBEDDINGS, DatasetWriter, save_embeddings
from workbench.intake.lifecycle import expire_subjects, expiry
from workbench.intake.reading import (
    PhotoRejected,
    collect_inputs,
    decode_photo,
    read_bytes,
    sha256,
    store_original,
)
from workbench.intake.set_checks import Finding, assess_set
from workbench.workspace import Workspace, validate_subject_id

REPORT = "report.json"


@dataclass
class IntakeResult:
    subject_id: str
    run_id: str | None
    photos: list[dict]
    set_findings: list[Finding]
    dataset_dir: Path
    report_path: Path
    expired: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def n_accepted(self) -> int:
        return sum(p["accepted"] for p in self.photos)

    def to_dict(self) -> dict:
        return {
            "subject_id": self.subject_id,
            "run_id": self.run_id,
            "n_photos": len(self.photos),
            "n_accepted": self.n_accepted,
            "photos": self.photos,
            "set_findings": [f.to_dict() for f in self.set_findings],
            "dataset_dir": str(self.dataset_dir),
            "report_path": str(self.report_path),
            "expired_subjects": [r["subject_id"] for r in self.expired],
            "seconds": round(self.seconds, 3),
        }


def run_intake(
    photos: list[str | Path],
    subject_id: str,
    config: IntakeConfig | None = None,
    workspace: Workspace | str | Path | None = None,
    *,
    now: datetime | None = None,
) -> IntakeResult:
    """Check ``photos`` (files or folders), build the subject's aligned training set and log an intake run.

    Called as ``run_intake(photos, "alice", config, workspace)``, like ``train_lora``: the subject is data and
    the config is a recipe that can be reused for any subject. The subject's dataset is rebuilt from the
    photos of this call; originals of earlier calls are kept.
    """
    import mlflow

    from workbench.tracking import log_json, stage_run

    config = config or IntakeConfig()
    subject_id = subject_id or config.subject_id
    if not subject_id:
        raise WorkbenchError(
            "No subject given: pass the subject id (`workbench intake --subject ID PHOTOS...`)."
        )
    if config.subject_id not in (None, subject_id):
        raise WorkbenchError(
            f"Two subject ids given: '{subject_id}' and config.subject_id='{config.subject_id}'."
        )
    config = config.replace(subject_id=validate_subject_id(subject_id))  # logged with the run
    ws = workspace if isinstance(workspace, Workspace) else Workspace.resolve(workspace)
    expired = expire_subjects(ws, now)  # retention is enforced whenever the workbench takes in new data
    paths = collect_inputs(photos)
    if not paths:
        raise WorkbenchError("No photos given: pass photo files or folders that contain them.")
    backend = get_backend(config.face_backend)

    subject_dir = ws.subject_dir(subject_id)
    subject_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(subject_dir, 0o700)  # biometric data: readable by its owner only
    record = ws.write_subject(
        subject_id, token=config.token, class_word=config.class_word, retention_days=config.retention_days
    )
    expires = expiry(record)
    ws.write_subject(subject_id, expires_at=expires.isoformat() if expires else None)

    started = time.perf_counter()
    run_name = ws.new_run_name("intake")
    writer = DatasetWriter(ws.dataset_dir(subject_id))
    with stage_run(ws, "intake", config, subject_id=subject_id, run_name=run_name) as run:
        reports: list[dict] = []
        hashes: dict[str, object] = {}
        embeddings: list[np.ndarray] = []
        try:
            for path in paths:
                report, crop, row, embedding = _process(path, ws, subject_id, config, backend, hashes)
                if crop is not None:
                    report["crop"] = writer.add(crop, row)
                    embeddings.append(embedding)
                reports.append(report)
            findings = assess_set([r for r in reports if r["accepted"]], config)
            dataset_dir = writer.commit()
        except BaseException:
            writer.abort()
            raise
        intake_dir = ws.intake_dir(subject_id)
        names = [r["crop"] for r in reports if r.get("crop")]
        save_embeddings(intake_dir / EMBEDDINGS, embeddings, names, backend)
        seconds = time.perf_counter() - started
        result = IntakeResult(
            subject_id, run.info.run_id, reports, findings, dataset_dir, intake_dir / REPORT, expired, seconds
        )
        full = {**result.to_dict(), "config": config.to_dict(), "backend": backend.name}
        result.report_path.write_text(json.dumps(full, indent=2, default=str))
        ws.write_subject(
            subject_id,
            intake={
                "run_id": run.info.run_id, "run_name": run_name, "resolution": config.resolution,
                "n_accepted": result.n_accepted, "face_backend": backend.name,
                "updated_at": datetime.now(timezone.utc).isoformat(),
            },
        )  # fmt: skip
        _log_run(result, config, ws, subject_id, mlflow, log_json)
    return result


def _process(path: Path, ws: Workspace, subject_id: str, config: IntakeConfig, backend, hashes: dict):
    """One file -> (report, crop or None, metadata row, embedding). Never raises for a bad file."""
    report: dict = {"path": str(path), "accepted": False, "reasons": [], "warnings": [], "checks": []}
    try:
        data = read_bytes(path)
        report["sha256"] = sha256(data)
        stored = store_original(data, path.name, ws.originals_dir(subject_id))
        report["original"] = str(stored.relative_to(ws.subject_dir(subject_id)))
        photo = decode_photo(data, config.max_megapixels)
    except PhotoRejected as exc:
        report.update(reasons=[exc.reason], rejected_as=exc.kind)
        return report, None, None, None
    except OSError as exc:
        report.update(
            reasons=[f"The file could not be read ({exc}): check its permissions."], rejected_as="io"
        )
        return report, None, None, None
    h, w = photo.image.shape[:2]
    report.update(
        format=photo.format, mode=photo.mode, size=[w, h], exif_orientation=photo.orientation,
        capture_date=photo.capture_date.isoformat() if photo.capture_date else None,
    )  # fmt: skip
    try:
        assessment = assess_image(photo.image, backend, config)
        checks = list(assessment.checks)
        phash = perceptual_hash(assessment.preview)
        if assessment.face is not None:
            checks.append(duplicate_check(phash, hashes, config))
    except Exception as exc:  # noqa: BLE001 - an analysis bug on one photo must not lose the batch
        report.update(
            reasons=[f"The photo could not be analysed ({type(exc).__name__}: {exc})."], rejected_as="error"
        )
        return report, None, None, None
    failed = [c for c in checks if not c.passed]
    report.update(
        accepted=not any(c.blocking for c in failed),
        reasons=[c.advice for c in failed if c.blocking and c.advice],
        warnings=[c.advice for c in failed if not c.blocking and c.advice],
        checks=[c.to_dict() for c in checks],
        n_faces=len(assessment.faces),
        **assessment.labels(config),
    )  # fmt: skip
    if assessment.measures is not None:
        report["measures"] = assessment.measures.to_dict()
    if not report["accepted"]:
        return report, None, None, None
    hashes[Path(report["original"]).name] = phash

    face, alignment = assessment.face, assessment.alignment
    crop, padding = warp(photo.image, alignment)
    report.update(upscale=round(alignment.upscale, 3), padding_fraction=round(padding, 4))
    row = {
        "text": config.caption(),
        "subject_id": subject_id,
        "source": report["original"],
        "source_sha256": report["sha256"],
        "face_box": alignment.box(face.box),
        "landmarks": _points(alignment.apply(face.landmarks)) if face.landmarks is not None else None,
        "landmarks5": _points(alignment.apply(face.landmarks5)) if face.landmarks5 is not None else None,
        "eyes": _points(alignment.apply(np.stack(face.eye_centers()))),
        "pose": report.get("pose"),
        "yaw": report.get("measures", {}).get("yaw"),
        "expression": report.get("expression"),
        "lighting": report.get("lighting"),
        "capture_date": report["capture_date"],
        "upscale": report["upscale"],
        "padding_fraction": report["padding_fraction"],
    }
    embedding = backend.embed(photo.image, face)
    return report, crop, row, embedding


def _points(points: np.ndarray) -> list[list[float]]:
    return [[round(float(x), 2), round(float(y), 2)] for x, y in points]


def _log_run(
    result: IntakeResult, config: IntakeConfig, ws: Workspace, subject_id: str, mlflow, log_json
) -> None:
    metrics = {
        "n_photos": len(result.photos),
        "n_accepted": result.n_accepted,
        "n_rejected": len(result.photos) - result.n_accepted,
        "seconds": result.seconds,
        "photos_per_s": len(result.photos) / max(result.seconds, 1e-9),
    }
    failures: dict[str, int] = {}
    for photo in result.photos:
        if photo.get("rejected_as"):
            failures[f"unreadable_{photo['rejected_as']}"] = (
                failures.get(f"unreadable_{photo['rejected_as']}", 0) + 1
            )
        for check in photo["checks"]:
            failures.setdefault(check["name"], 0)
            failures[check["name"]] += not check["passed"]
    metrics.update({f"failed.{name}": count for name, count in failures.items()})
    metrics.update({f"set.{f.name}_ok": float(f.ok) for f in result.set_findings})
    mlflow.log_metrics(metrics)
    # The report holds verdicts and scores, no pixels, landmarks or embeddings.
    log_json(result.to_dict(), "intake/report.json")
    if config.log_originals:  # opt-in: raw photos and crops are biometric data
        mlflow.log_artifacts(str(ws.originals_dir(subject_id)), "originals")
        mlflow.log_artifacts(str(result.dataset_dir), "dataset")
