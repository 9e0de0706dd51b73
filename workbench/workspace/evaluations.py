"""A subject's evaluations: the one reader of ``subjects/<id>/evaluations/<run>/`` (written by the report)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.workspace.layout import Workspace

REPORT_JSON = "report.json"
REPORT_MARKDOWN = "report.md"
REPORT_HTML = "report.html"


@dataclass(frozen=True)
class EvaluationRun:
    dir: Path

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def report_json(self) -> Path:
        return self.dir / REPORT_JSON

    def report(self) -> dict[str, Any]:
        return json.loads(self.report_json.read_text())


def evaluation_runs(workspace: Workspace, subject: str | None) -> list[EvaluationRun]:
    """Finished evaluations (those with a report), newest first; ``None``: the test-set evaluations."""
    root = (
        workspace.root / "evaluations" if subject is None else workspace.subject_path(subject, "evaluations")
    )
    runs = [EvaluationRun(p) for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    return sorted((r for r in runs if r.report_json.is_file()), key=lambda r: r.name, reverse=True)
