"""``workbench eval``: run an evaluation suite."""

from __future__ import annotations

import json as _json
from pathlib import Path

from workbench.errors import WorkbenchError


def evaluate(
    subject: str | None = None,
    images: str | None = None,
    suite: str = "default",
    testset: str | None = None,
    json: bool = False,
    workspace: str | None = None,
) -> int:
    """Evaluate generated headshots (likeness, skin tone, AI-detectability, usable yield) or a test set.

    Examples:
      workbench eval --subject alice --images gen-20260101-120000   (a generation run of alice)
      workbench eval --subject alice --images ./my_outputs
      workbench eval --suite skin-tone-ladder                        (built-in counterfactual ladder)
      workbench eval --testset ./my_labelled_faces --json

    The report (JSON, Markdown, HTML, plots) is written under the workspace and logged to MLflow.
    Exit status 1 when a threshold check of the suite fails.

    Args:
      subject: Subject id whose own photos are the reference (from `workbench intake`).
      images: Folder of images, or the name of one of the subject's generation runs (default: the latest).
      suite: Suite name in eval/suites/ or a path to a suite YAML.
      testset: Test set (eval/testsets/ name, folder with metadata.jsonl, or hub:<id>); overrides the suite's.
      json: Print the metrics and checks as JSON instead of a summary.
      workspace: Workspace folder (default: $WORKBENCH_WORKSPACE or ./workspace).
    """
    from workbench.evaluate import load_suite, run_suite
    from workbench.workspace import Workspace

    ws = Workspace.resolve(workspace)
    config = load_suite(suite)
    if testset:
        config = config.replace(testset=testset)
    folder = None
    if not config.testset:
        folder = _resolve_images(ws, subject, images)
    result = run_suite(config, subject=subject, images=folder, workspace=ws)
    if json:
        print(_json.dumps({"metrics": result.metrics, "checks": result.checks, "report": str(result.files["json"]),
                           "run_id": result.run_id}, indent=2, default=str))  # fmt: skip
    else:
        print(f"Report: {result.files['markdown']}")
        for name in ("likeness.verification_rate", "skin.lightening_rate", "skin.delta_e2000", "skin.mst_abs_error",
                     "detect.accuracy", "detect.auc", "ranking.usable_yield", "timing.faces_per_second"):  # fmt: skip
            if name in result.metrics:
                lo, hi = result.metrics.get(f"{name}.lo"), result.metrics.get(f"{name}.hi")
                ci = f"  [{lo:.3f}, {hi:.3f}]" if lo is not None else ""
                print(f"  {name:32s} {result.metrics[name]:.3f}{ci}")
        for check in result.checks:
            print(f"  check {check['metric']}: {'pass' if check['passed'] else 'FAIL'} ({check['value']})")
    return 0 if result.passed else 1


def _resolve_images(ws, subject: str | None, images: str | None) -> Path:
    if images and Path(images).is_dir():
        return Path(images)
    if subject is None:
        raise WorkbenchError(
            "Pass --images FOLDER (with --subject for likeness), or --testset / a test-set suite."
        )
    runs_dir = ws.subject_path(subject, "generations")
    if images:
        run = runs_dir / images
        if run.is_dir():
            return run
        raise WorkbenchError(
            f"'{images}' is neither a folder nor a generation run of '{subject}' (looked in {runs_dir})."
        )
    runs = sorted(p for p in runs_dir.glob("*") if p.is_dir()) if runs_dir.is_dir() else []
    if not runs:
        raise WorkbenchError(
            f"Subject '{subject}' has no generation runs: run `workbench generate` or pass --images."
        )
    return runs[-1]
