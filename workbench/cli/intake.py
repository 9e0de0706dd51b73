"""``workbench intake`` and ``workbench forget``: thin calls into :mod:`workbench.intake`."""

from __future__ import annotations

import json as _json
import sys
from typing import Literal

from workbench.errors import WorkbenchError


def intake(
    photos: list[str],
    *,
    subject: str,
    json: bool = False,
    workspace: str | None = None,
    recipe: str | None = None,
    resolution: int | None = None,
    token: str | None = None,
    class_word: str | None = None,
    face_backend: Literal["dlib", "mediapipe", "insightface"] | None = None,
    retention_days: int | None = None,
    log_originals: bool = False,
) -> int:
    """Check photos of one person, say what to fix, and build the aligned training set.

    Every file gets a verdict and the reasons in plain sentences; the set gets findings on count, variety and
    capture dates. Accepted photos become eye-aligned crops with captions, face boxes and landmarks under
    <workspace>/subjects/<ID>/dataset (a Hugging Face imagefolder), logged as an MLflow intake run.
    Exit status 0 when at least one photo was accepted.

    Args:
      photos: photo files and/or folders of photos (JPEG, PNG, WebP, HEIC).
      subject: the subject's id (letters, digits, '-' and '_'), e.g. --subject alice.
      json: print the full report as JSON (path, accepted, reasons for every file, plus set findings).
      workspace: workspace folder (default: $WORKBENCH_WORKSPACE or ./workspace).
      recipe: an intake YAML recipe (for example a run's config/intake.yaml artifact).
      resolution: crop size in pixels: 512 for SD 1.5, 1024 for SDXL.
      token: the rare identifier token used in captions.
      class_word: the class noun after the token (person, man, woman, ...).
      face_backend: face analysis backend.
      retention_days: days until the subject's data expires.
      log_originals: also copy the raw photos and crops into MLflow (biometric data; off by default).
    """
    from workbench.intake import IntakeConfig, run_intake

    config = IntakeConfig.from_yaml(recipe) if recipe else IntakeConfig()
    config = config.replace(
        resolution=resolution, token=token, class_word=class_word, face_backend=face_backend,
        retention_days=retention_days, log_originals=log_originals or None,
    )  # fmt: skip
    result = run_intake(photos, subject, config, workspace)
    if json:
        print(_json.dumps(result.to_dict(), indent=2, default=str))
    else:
        _print_human(result)
    if result.n_accepted == 0:
        print(
            f"error: none of the {len(result.photos)} files was accepted for subject '{subject}'; "
            "see the reasons above, fix or replace the photos and run intake again.",
            file=sys.stderr,
        )
        return 1
    return 0


def forget(
    subject: str | None = None, /, *, expired: bool = False, json: bool = False, workspace: str | None = None
) -> int:
    """Erase everything of one subject: photos, crops, embeddings, LoRAs, images and its MLflow runs.

    Reports what was removed. `workbench forget --expired` erases every subject whose retention period has
    run out (intake also does this each time it runs).

    Args:
      subject: the subject's id.
      expired: erase every expired subject instead of one.
      json: print the report as JSON.
      workspace: workspace folder (default: $WORKBENCH_WORKSPACE or ./workspace).
    """
    from workbench.intake import expire_subjects, forget_subject

    if expired == bool(subject):
        raise WorkbenchError("Name one subject (`workbench forget ID`) or pass --expired, not both.")
    reports = expire_subjects(workspace) if expired else [forget_subject(subject, workspace)]
    if json:
        print(_json.dumps(reports if expired else reports[0], indent=2, default=str))
        return 0
    if expired and not reports:
        print("No subject has expired.")
    for report in reports:
        if not report["found"]:
            print(
                f"Nothing to erase: no files or runs of subject '{report['subject_id']}' in {report['workspace']}."
            )
            continue
        print(
            f"Erased subject '{report['subject_id']}': {report['files_removed']} files "
            f"({report['bytes_removed'] / 1e6:.1f} MB), {len(report['runs_deleted'])} MLflow runs with "
            f"{report['artifact_files_removed']} artifact files, {len(report['models_deleted'])} models."
        )
    return 0


def _print_human(result) -> None:
    print(f"Intake of '{result.subject_id}': {result.n_accepted} of {len(result.photos)} photos accepted.")
    for photo in result.photos:
        mark = "ok " if photo["accepted"] else "NO "
        print(f"  {mark} {photo['path']}")
        for reason in photo["reasons"]:
            print(f"       - {reason}")
        for warning in photo["warnings"]:
            print(f"       ~ {warning}")
    print("The set:")
    for finding in result.set_findings:
        print(f"  {'ok ' if finding.ok else '!! '} {finding.message}")
    if result.n_accepted:
        print(f"Training set: {result.dataset_dir} (MLflow run {result.run_id}).")
