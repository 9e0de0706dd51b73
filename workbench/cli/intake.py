"""``workbench intake`` (a stage command, see :mod:`workbench.cli.stages`) and ``workbench forget``."""

from __future__ import annotations

import argparse
import sys

from workbench.cli.output import print_json, stdout_to_stderr
from workbench.cli.stages import StageCommand
from workbench.errors import WorkbenchError

DESCRIPTION = """\
Check photos of one person, say what to fix, and build the aligned training set.

Every file gets a verdict and the reasons in plain sentences; the set gets findings on count, variety and
capture dates. Accepted photos become eye-aligned crops with captions, face boxes and landmarks under
<workspace>/subjects/<ID>/dataset (a Hugging Face imagefolder), logged as an MLflow intake run.
Exit status 0 when at least one photo was accepted.

examples:
  workbench intake --subject alice photos/alice/
  workbench intake --subject alice photos/alice/ resolution=1024 class_word=woman
  workbench intake --subject alice --recipe my-intake.yaml a.jpg b.heic --json
"""


def _report(result, args: argparse.Namespace) -> int:
    if not args.json:
        _print_human(result)
    if result.n_accepted == 0:
        print(
            f"error: none of the {len(result.photos)} files was accepted for subject '{args.subject}'; "
            "see the reasons above, fix or replace the photos and run intake again.",
            file=sys.stderr,
        )
        return 1
    return 0


def _photos(args: argparse.Namespace, inputs: list[str]) -> dict:
    if not inputs:
        raise WorkbenchError("No photos given: pass photo files or folders after --subject ID.")
    return {"photos": inputs}


COMMAND = StageCommand(
    stage="intake",
    description=DESCRIPTION,
    report=_report,
    inputs="PHOTO_OR_FOLDER",
    words_help="Photo files and folders of photos, and config options as KEY=VALUE (listed below), in any order.",
    call_kwargs=_photos,
)


def _print_human(result) -> None:
    print(f"Intake of '{result.subject}': {result.n_accepted} of {len(result.photos)} photos accepted.")
    for photo in result.photos:
        print(f"  {'ok ' if photo.accepted else 'NO '} {photo.path}")
        for reason in photo.reasons:
            print(f"       - {reason}")
        for warning in photo.warnings:
            print(f"       ~ {warning}")
    print("The set:")
    for finding in result.set_findings:
        print(f"  {'ok ' if finding.ok else '!! '} {finding.message}")
    if result.n_accepted:
        print(f"Training set: {result.dataset_dir} (MLflow run {result.run_id}).")


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
    from workbench.workspace.lifecycle import expire_subjects, forget_subject

    if expired == bool(subject):
        raise WorkbenchError("Name one subject (`workbench forget ID`) or pass --expired, not both.")
    with stdout_to_stderr(json):
        reports = expire_subjects(workspace) if expired else [forget_subject(subject, workspace)]
    if json:
        print_json(reports if expired else reports[0])
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
            f"{report['artifact_files_removed']} artifact files, {len(report['models_deleted'])} models, "
            f"{report.get('app_copies_removed', 0)} copies in the app's cache."
        )
        if report.get("purge_command"):  # team mode without access to the server's database
            print(
                f"The runs are deleted but their rows stay until an operator runs: {report['purge_command']}"
            )
    return 0
