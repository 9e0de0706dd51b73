"""``run_intake``: photos in; per-photo verdicts, set findings, an aligned training set and an MLflow run out.

Order of work for each file: read the bytes once -> keep them byte-identical in ``originals/`` -> decode ->
detect and check -> near-duplicate against the photos accepted so far -> aligned crop and embedding. Any
failure of one file becomes a reason on that file; the batch always goes on.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from workbench.errors import WorkbenchError
from workbench.faces import get_backend
from workbench.intake.align import warp
from workbench.intake.checks import assess_image, duplicate_check, perceptual_hash
from workbench.intake.config import DEFAULT_RETENTION_DAYS, IntakeConfig
from workbench.intake.dataset import EMBEDDINGS, DatasetWriter, save_embeddings
from workbench.intake.identity import CHECK as IDENTITY_CHECK
from workbench.intake.identity import one_person
from workbench.intake.reading import (
    PhotoRejected,
    collect_inputs,
    decode_photo,
    read_bytes,
    sha256,
    store_original,
)
from workbench.intake.set_checks import Finding, assess_set
from workbench.stage import Progress, StageEvents, StageResult, tracked_stage
from workbench.workspace import Workspace, validate_subject_id
from workbench.workspace.lifecycle import expire_subjects, expiry
from workbench.workspace.locks import subject_lock

REPORT = "report.json"


@dataclass(frozen=True)
class PhotoReport:
    """One file's verdict: accepted or not, the reasons in plain sentences, and what was measured."""

    path: str
    accepted: bool
    reasons: list[str]
    warnings: list[str]
    checks: list[dict]
    sha256: str | None = None
    original: str | None = None  # relative to the subject's folder
    crop: str | None = None  # the aligned crop's file in the dataset, when accepted
    rejected_as: str | None = None  # unreadable files: why (format, bomb, io, error)
    details: dict = field(default_factory=dict, repr=False)  # format, size, pose, measures, ...

    @property
    def name(self) -> str:
        return Path(self.path).name

    @classmethod
    def from_dict(cls, data: dict) -> PhotoReport:
        known = {
            "path",
            "accepted",
            "reasons",
            "warnings",
            "checks",
            "sha256",
            "original",
            "crop",
            "rejected_as",
        }
        return cls(**{k: data.get(k) for k in known},
                   details={k: v for k, v in data.items() if k not in known})  # fmt: skip

    def to_dict(self) -> dict:
        return {"path": self.path, "accepted": self.accepted, "reasons": self.reasons, "warnings": self.warnings,
                "checks": self.checks, "sha256": self.sha256, "original": self.original, "crop": self.crop,
                "rejected_as": self.rejected_as, **self.details}  # fmt: skip


@dataclass(kw_only=True)
class IntakeResult(StageResult):
    """``out_dir`` is the subject's ``intake/`` folder (report and embeddings); the crops are in ``dataset_dir``."""

    subject: str
    photos: list[PhotoReport]
    set_findings: list[Finding]
    dataset_dir: Path
    report_path: Path
    expired: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def n_accepted(self) -> int:
        return sum(p.accepted for p in self.photos)

    def to_dict(self) -> dict:
        return {
            "subject_id": self.subject,
            "run_id": self.run_id,
            "n_photos": len(self.photos),
            "n_accepted": self.n_accepted,
            "photos": [p.to_dict() for p in self.photos],
            "set_findings": [f.to_dict() for f in self.set_findings],
            "dataset_dir": str(self.dataset_dir),
            "report_path": str(self.report_path),
            "expired_subjects": [r["subject_id"] for r in self.expired],
            "seconds": round(self.seconds, 3),
        }


def run_intake(
    subject: str,
    config: IntakeConfig | None = None,
    *,
    workspace: Workspace,
    events: StageEvents | None = None,
    photos: Sequence[str | Path],
    now: datetime | None = None,
) -> IntakeResult:
    """Check ``photos`` (files or folders), build the subject's aligned training set and log an intake run.

    The subject's dataset is rebuilt from the photos of this call; originals of earlier calls are kept. One
    intake of a subject runs at a time: a second one is refused with who holds the subject's lock.
    """
    with subject_lock(workspace, validate_subject_id(subject), "intake"):
        return _run_intake(subject, config or IntakeConfig(), workspace, events or StageEvents(), photos, now)


def _run_intake(
    subject: str, config: IntakeConfig, workspace: Workspace, events: StageEvents, photos, now
) -> IntakeResult:
    """The intake itself, under the subject's lock."""
    # Retention is enforced whenever the workbench takes in new data.
    expired = expire_subjects(workspace, now)
    paths = collect_inputs(photos)
    if not paths:
        raise WorkbenchError("No photos given: pass photo files or folders that contain them.")
    backend = get_backend(config.face_backend)
    _file_subject(workspace, subject, config)

    started = time.perf_counter()
    run_name = workspace.new_run_name("intake")
    with tracked_stage(
        "intake", subject, config, workspace=workspace, events=events, run_name=run_name
    ) as run:
        reports, embeddings, findings, dataset_dir = _check_all(
            paths, workspace, subject, config, backend, events
        )
        intake_dir = workspace.intake_dir(subject)
        save_embeddings(intake_dir / EMBEDDINGS, embeddings, [r.crop for r in reports if r.crop], backend)
        result = IntakeResult(
            run_id=run.info.run_id, out_dir=intake_dir, subject=subject, photos=reports, set_findings=findings,
            dataset_dir=dataset_dir, report_path=intake_dir / REPORT, expired=expired,
            seconds=time.perf_counter() - started,
        )  # fmt: skip
        full = {**_stored(result, workspace), "config": config.to_dict(), "backend": backend.name}
        result.report_path.write_text(json.dumps(full, indent=2, default=str))
        workspace.write_subject(
            subject,
            intake={
                "run_id": run.info.run_id, "run_name": run_name, "resolution": config.resolution,
                "n_accepted": result.n_accepted, "face_backend": backend.name,
                "updated_at": datetime.now(timezone.utc).isoformat(),
            },
        )  # fmt: skip
        _log_run(result, config, workspace, subject)
    return result


def _stored(result: IntakeResult, ws: Workspace) -> dict:
    """The result as records store it: paths inside the workspace relative to its root (it may be moved)."""
    data = result.to_dict()
    data.update(dataset_dir=ws.relative(result.dataset_dir), report_path=ws.relative(result.report_path))
    for photo in data["photos"]:
        photo["path"] = ws.relative(photo["path"])
    return data


def _file_subject(ws: Workspace, subject: str, config: IntakeConfig) -> None:
    """Create or update ``subject.json``; an existing subject keeps its retention unless the config sets one."""
    subject_dir = ws.subject_dir(subject)
    subject_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(subject_dir, 0o700)  # biometric data: readable by its owner only
    existing = ws.subject_path(subject, "subject.json").is_file()
    fields: dict = {"token": config.token, "class_word": config.class_word}
    if config.retention_days is not None:
        fields["retention_days"] = config.retention_days if config.retention_days > 0 else None
    elif not existing:
        fields["retention_days"] = DEFAULT_RETENTION_DAYS
    record = ws.write_subject(subject, **fields)
    expires = expiry(record)
    ws.write_subject(subject, expires_at=expires.isoformat() if expires else None)


def _check_all(paths: list[Path], ws: Workspace, subject: str, config: IntakeConfig, backend, events):
    """Every file through the checks, then one person per subject; the accepted ones into the dataset
    (committed only when all went well)."""
    results: list[tuple[dict, np.ndarray | None, dict | None, np.ndarray | None]] = []
    hashes: dict[str, object] = {}
    for done, path in enumerate(paths, 1):
        events.raise_if_stopped()
        results.append(_process(path, ws, subject, config, backend, hashes))
        events.progress(Progress("intake", done, len(paths), unit="photo", message=path.name))
    _check_one_person(results, config, backend)  # before anything is written: it may stop the intake
    held = _holdout_indices(results, config.holdout)
    writer = DatasetWriter(ws.dataset_dir(subject))
    reports: list[PhotoReport] = []
    embeddings: list[np.ndarray] = []
    try:
        for index, (report, crop, row, embedding) in enumerate(results):
            if index in held:
                report["holdout"] = f"holdout/{Path(report['original']).name}"
            elif crop is not None and report["accepted"]:
                report["crop"] = writer.add(crop, row)
                embeddings.append(embedding)
            reports.append(PhotoReport.from_dict(report))
        findings = assess_set([r.to_dict() for r in reports if r.accepted], config)
        dataset_dir = writer.commit()
    except BaseException:
        writer.abort()
        raise
    # Only once the new dataset is committed, so a failed intake leaves the previous held-out set as it was.
    _replace_holdout(ws, subject, [results[i][0] for i in sorted(held)])
    return reports, embeddings, findings, dataset_dir


def _holdout_indices(results: list, n: int) -> set[int]:
    """The last ``n`` accepted photos; at least one accepted photo must remain to train on."""
    accepted = [i for i, r in enumerate(results) if r[1] is not None and r[0]["accepted"]]
    if n and n >= len(accepted):
        raise WorkbenchError(
            f"holdout={n} would keep all {len(accepted)} accepted photos out of training: add photos or lower "
            "holdout (a few held-out photos out of 10-20 is typical)."
        )
    return set(accepted[len(accepted) - n :]) if n else set()


def _replace_holdout(ws: Workspace, subject: str, reports: list[dict]) -> None:
    """Rebuild ``holdout/`` (as each intake rebuilds the dataset) from byte-identical copies of the held-out
    originals: the evaluation reads them; training never does."""
    folder = ws.holdout_dir(subject)
    shutil.rmtree(folder, ignore_errors=True)
    for report in reports:
        folder.mkdir(parents=True, exist_ok=True)
        source = ws.subject_dir(subject) / report["original"]
        shutil.copyfile(source, folder / source.name)


def _check_one_person(results: list, config: IntakeConfig, backend) -> None:
    """Compare every accepted face with the others; reject (or, with warn_only, flag) the odd ones out."""
    accepted = [r for r in results if r[0]["accepted"] and r[3] is not None]
    if len(accepted) < 2:
        return
    names = [Path(r[0]["original"]).name for r in accepted]
    blocking = IDENTITY_CHECK not in config.warn_only
    verdict = one_person([r[3] for r in accepted], names, backend, strict=blocking)
    for index, (report, *_rest) in enumerate(accepted):
        check = verdict.check(index, blocking=blocking)
        report["checks"].append(check.to_dict())
        report["same_person"] = verdict.details[index]
        if check.passed:
            continue
        if blocking:
            report["accepted"] = False
            report["reasons"].append(check.advice)
        else:
            report["warnings"].append(check.advice)


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


def _log_run(result: IntakeResult, config: IntakeConfig, ws: Workspace, subject_id: str) -> None:
    import mlflow

    from workbench.tracking import log_json

    metrics = {
        "n_photos": len(result.photos),
        "n_accepted": result.n_accepted,
        "n_rejected": len(result.photos) - result.n_accepted,
        "seconds": result.seconds,
        "photos_per_s": len(result.photos) / max(result.seconds, 1e-9),
    }
    failures: dict[str, int] = {}
    for photo in result.photos:
        if photo.rejected_as:
            key = f"unreadable_{photo.rejected_as}"
            failures[key] = failures.get(key, 0) + 1
        for check in photo.checks:
            failures.setdefault(check["name"], 0)
            failures[check["name"]] += not check["passed"]
    metrics.update({f"failed.{name}": count for name, count in failures.items()})
    metrics.update({f"set.{f.name}_ok": float(f.ok) for f in result.set_findings})
    mlflow.log_metrics(metrics)
    # The report holds verdicts and scores, no pixels, landmarks or embeddings.
    log_json(_stored(result, ws), "intake/report.json")
    if config.log_originals:  # opt-in: raw photos and crops are biometric data
        mlflow.log_artifacts(str(ws.originals_dir(subject_id)), "originals")
        mlflow.log_artifacts(str(result.dataset_dir), "dataset")
