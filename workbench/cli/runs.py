"""``workbench runs``: a subject's MLflow runs with their status (a function command, see :mod:`workbench.cli`)."""

from __future__ import annotations

from datetime import datetime, timezone

from workbench.cli.output import print_json, stdout_to_stderr
from workbench.errors import WorkbenchError


def runs(*, subject: str, json: bool = False, workspace: str | None = None) -> int:
    """List a subject's runs (newest first): when, stage, run name, status and run id.

    A RUNNING run whose process is gone (killed on this host) is marked KILLED first; `workbench train
    --subject ID --resume` continues a killed or failed training run from its last checkpoint.

    Args:
      subject: the subject's id.
      json: print the runs as one JSON document.
      workspace: workspace folder (default: $WORKBENCH_WORKSPACE or ./workspace).
    """
    from workbench.tracking.runs import HOST_TAG, PID_TAG, subject_runs
    from workbench.workspace import Workspace, validate_subject_id

    validate_subject_id(subject)
    ws = Workspace.resolve(workspace)
    if not ws.mlflow_dir.is_dir() and not ws.subject_dir(subject).is_dir():
        raise WorkbenchError(f"No subject '{subject}' in workspace {ws.root}: nothing to list.")
    with stdout_to_stderr(json):
        found = subject_runs(ws, subject)
    rows = [
        {
            "started": datetime.fromtimestamp(r.info.start_time / 1000, timezone.utc).isoformat(timespec="seconds"),
            "stage": r.data.tags.get("workbench.stage", ""), "run_name": r.info.run_name, "status": r.info.status,
            "run_id": r.info.run_id, "pid": r.data.tags.get(PID_TAG), "host": r.data.tags.get(HOST_TAG),
        }
        for r in found
    ]  # fmt: skip
    if json:
        print_json(rows)
        return 0
    if not rows:
        print(f"Subject '{subject}' has no runs in {ws.root}.")
    for row in rows:
        print(f"{row['started']}  {row['stage']:<8} {row['status']:<8} {row['run_name']}  {row['run_id']}")
    return 0
