"""The Subject tab and the subject picker: upload limits, intake, per-photo verdicts, the subjects on disk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.errors import WorkbenchError
from workbench.stage import StageEvents
from workbench.ui.handlers.common import StageJob, message_frame
from workbench.ui.publish import discard_uploads
from workbench.ui.sessions import Viewer
from workbench.workspace import Workspace

MAX_PHOTOS = 20  # the 1-20; more photos add little likeness and much training time
MAX_PHOTO_MB = 25  # a 48 MP phone JPEG is ~15 MB; anything larger is rarely a photo of a face
NO_PHOTOS_YET = ("No photos checked yet", "Upload 1-20 photos and press the button above.")
NO_SUBJECT = "No subject yet: type a name and upload 1-20 photos on the Subject tab."


def subjects(
    workspace: Workspace, viewer: Viewer, selected: str | None = None
) -> tuple[list[str], str | None]:
    """The picker's choices and value: ``selected`` if still visible, else the most recently created subject."""
    choices = viewer.subjects(workspace)
    if selected in choices:
        return choices, selected
    created = {s: str(workspace.read_subject(s).get("created_at", "")) for s in choices}
    return choices, max(choices, key=lambda s: (created[s], s)) if choices else None


def summary(workspace: Workspace, viewer: Viewer, subject: str | None) -> str:
    if not subject:
        return NO_SUBJECT
    viewer.require(workspace, subject)
    record = workspace.read_subject(subject)
    n_originals = len(list(workspace.originals_dir(subject).glob("*")))
    accepted = (record.get("intake") or {}).get("n_accepted")
    kept = f", {accepted} accepted for training" if accepted is not None else ""
    return f"Subject **{subject}**: {n_originals} photo(s) on file{kept}, token `{record.get('token', '?')}`."


def check_uploads(
    files: list[str] | None, max_photos: int = MAX_PHOTOS, max_mb: float = MAX_PHOTO_MB
) -> list[Path]:
    """The upload limits, checked before anything is written: 1-20 photos, each at most ``max_mb`` MB."""
    paths = [Path(f) for f in (files or [])]
    if not paths:
        raise WorkbenchError(
            f"Upload 1 to {max_photos} photos of the subject first (15-20 give the best likeness)."
        )
    gone = [p.name for p in paths if not p.is_file()]
    if gone:
        raise WorkbenchError(
            f"{', '.join(gone)} {'is' if len(gone) == 1 else 'are'} no longer here: the app deletes its copy of an "
            "upload as soon as intake has filed it. Upload the photos again to check them again."
        )
    if len(paths) > max_photos:
        raise WorkbenchError(
            f"{len(paths)} photos uploaded; the limit is {max_photos}: keep the best {max_photos} "
            "(sharp, varied, recent) and upload again."
        )
    too_big = [p for p in paths if p.stat().st_size > max_mb * 1024 * 1024]
    if too_big:
        names = ", ".join(f"{p.name} ({p.stat().st_size / 1024 / 1024:.0f} MB)" for p in too_big)
        raise WorkbenchError(
            f"Photo(s) larger than {max_mb:g} MB: {names}. Export them at a smaller size (a few MB is plenty) "
            "and upload again."
        )
    return paths


def start_intake(workspace: Workspace, viewer: Viewer, name: str, files: list[str] | None) -> StageJob:
    """Check the uploads and the name (nothing written yet); the returned call runs intake and claims the subject."""
    from workbench.intake import IntakeConfig, run_intake

    paths = check_uploads(files)
    subject = viewer.subject_id(name)
    viewer.check_free(workspace, subject)

    def call(events: StageEvents) -> Any:
        try:
            return run_intake(subject, IntakeConfig(), workspace=workspace, events=events, photos=paths)
        finally:  # after intake filed the subject (a first record decides its retention), even if it failed
            # Intake keeps the photos in the subject's folder; the upload copies must not outlive it.
            discard_uploads(paths, workspace)
            if subject in workspace.subjects():
                viewer.claim(workspace, subject)

    return StageJob(subject, None, call)


def photo_rows(result: Any) -> list[dict[str, Any]]:
    """One row per photo of an ``IntakeResult``: path, name, accepted, and the advice in one sentence.

    ``path`` is the copy intake kept in the subject's folder (the upload itself is deleted after intake).
    """
    out_dir = getattr(result, "out_dir", None)  # subjects/<id>/intake
    rows = []
    for p in result.photos:
        original = getattr(p, "original", None)
        path = Path(out_dir).parent / original if out_dir and original else Path(p.path)
        advice = " ".join([*(p.reasons or []), *(p.warnings or [])]) or "Good photo."
        rows.append({"path": str(path), "name": p.name, "accepted": bool(p.accepted), "advice": advice})
    return rows


def set_advice(result: Any) -> str:
    """The set-level verdict, problems first (a passed check reads as reassurance, not as advice)."""
    findings = sorted(result.set_findings, key=lambda f: f.ok)
    lines = [("✓ " if f.ok else "⚠ ") + f.message for f in findings]
    head = f"**{result.n_accepted} of {len(result.photos)} photos accepted** for subject `{result.subject}`."
    return head + "\n\n" + ("\n".join(f"- {line}" for line in lines) or "- The set looks good.")


def verdicts(rows: list[dict[str, Any]]) -> pd.DataFrame:
    if not rows:
        return message_frame(*NO_PHOTOS_YET)
    return pd.DataFrame(
        [{"photo": r["name"], "verdict": "accepted" if r["accepted"] else "rejected", "advice": r["advice"]}
         for r in rows],
        columns=["photo", "verdict", "advice"],
    )  # fmt: skip


def gallery(rows: list[dict[str, Any]], thumbnail: Callable[[str], str]) -> list[tuple[str, str]]:
    return [
        (thumbnail(r["path"]), ("✓ " if r["accepted"] else "✗ ") + f"{r['name']}: {r['advice']}")
        for r in rows
    ]
