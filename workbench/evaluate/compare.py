"""Head to head: two generation runs of one subject side by side (e.g. LoRA vs tuning-free), with CIs.

Each run is evaluated by :func:`run_eval` as usual (each its own MLflow run, nested under one ``compare`` run).
The comparison then puts, for each arm, likeness, skin-tone shift, detectability and usable yield with their
intervals next to each other, and — for the images of the two runs that share a seed and presets — the **paired**
difference B - A with a bootstrap CI over the pairs. Pairing removes the seed-to-seed variation (pose, framing,
lighting of that draw) that both arms share, so a difference between identity methods shows up with far fewer
images than two independent intervals would need.

Outputs ``compare.json`` and ``compare.md`` in ``subjects/<id>/evaluations/compare-<time>/``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.evaluate.config import EvalConfig
from workbench.evaluate.stats import Estimate, bootstrap_ci
from workbench.stage import StageEvents
from workbench.workspace import Workspace
from workbench.workspace.generations import find_generation

# Arm-level estimates shown side by side: (label, summary section, key, lower is better).
ARM_METRICS: tuple[tuple[str, str, str, bool], ...] = (
    ("verification rate", "likeness", "verification_rate", False),
    ("centroid distance", "likeness", "centroid_distance", True),
    ("face found rate", "likeness", "face_found_rate", False),
    ("skin ΔL* (output - photos)", "skin", "delta_L", True),
    ("skin ΔE2000", "skin", "delta_e2000", True),
    ("lightening rate", "skin", "lightening_rate", True),
    ("detector AUC (0.5 = undetectable)", "detect", "auc", True),
    ("usable yield", "ranking", "usable_yield", False),
)
# Per-image columns whose paired difference B - A is reported.
PAIRED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("verified", "verified (0/1)"),
    ("centroid_distance", "centroid distance"),
    ("face_found", "face found (0/1)"),
    ("delta_L", "skin ΔL*"),
    ("abs_delta_L", "|skin ΔL*|"),
    ("delta_e2000", "skin ΔE2000"),
    ("usable", "usable (0/1)"),
)
PAIR_KEYS = ("seed", "preset")


@dataclass
class CompareResult:
    subject: str
    arms: dict[str, dict[str, Any]]  # "A"/"B" -> run, identity, eval run id, estimates
    paired: dict[str, Estimate]  # column -> mean difference B - A with its CI
    n_pairs: int
    out_dir: Path
    run_id: str = ""
    markdown: str = ""
    files: dict[str, Path] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject, "run_id": self.run_id, "n_pairs": self.n_pairs, "pair_keys": list(PAIR_KEYS),
            "arms": {k: {**v, "estimates": {m: _est(e) for m, e in v["estimates"].items()}}
                     for k, v in self.arms.items()},
            "paired_difference_b_minus_a": {k: _est(v) for k, v in self.paired.items()},
            "files": {k: str(v) for k, v in self.files.items()},
        }  # fmt: skip


def compare_runs(
    subject: str,
    run_a: str | Path,
    run_b: str | Path,
    config: EvalConfig | None = None,
    *,
    workspace: Workspace,
    events: StageEvents | None = None,
) -> CompareResult:
    """Evaluate generation runs ``run_a`` and ``run_b`` of ``subject`` and write their head-to-head report."""
    import mlflow

    from workbench.evaluate.suite import run_eval
    from workbench.tracking import stage_run

    config = config or EvalConfig()
    events = events or StageEvents()
    runs = {"A": find_generation(workspace, subject, run_a), "B": find_generation(workspace, subject, run_b)}
    out = workspace.evaluation_dir(subject, workspace.new_run_name("compare"))
    tags = {"workbench.compare.a": runs["A"].name, "workbench.compare.b": runs["B"].name}
    with stage_run(workspace, "compare", config, subject_id=subject, run_name=out.name, tags=tags) as parent:
        arms, tables = {}, {}
        for arm, run in runs.items():
            evaluated = run_eval(subject, config, workspace=workspace, events=events, images=run.dir)
            tables[arm] = evaluated.table
            arms[arm] = {
                "run": run.name, "dir": str(run.dir), "eval_run_id": evaluated.run_id, **_identity(run),
                "n_images": int(len(evaluated.table)),
                "estimates": {label: _get(evaluated.summary, section, key)
                              for label, section, key, _ in ARM_METRICS},
            }  # fmt: skip
        paired, n_pairs = paired_differences(tables["A"], tables["B"], config)
        result = CompareResult(subject, arms, paired, n_pairs, out, run_id=parent.info.run_id)
        result.markdown = to_markdown(result)
        out.mkdir(parents=True, exist_ok=True)
        result.files = {"json": out / "compare.json", "markdown": out / "compare.md"}
        result.files["json"].write_text(json.dumps(result.to_dict(), indent=2, allow_nan=False))
        result.files["markdown"].write_text(result.markdown)
        metrics = {f"paired.{k}": v.est for k, v in paired.items() if math.isfinite(v.est)}
        mlflow.log_metrics({**metrics, "n_pairs": float(n_pairs)})
        mlflow.log_artifacts(str(out), artifact_path="compare")
    return result


def paired_differences(
    table_a: pd.DataFrame, table_b: pd.DataFrame, config: EvalConfig
) -> tuple[dict[str, Estimate], int]:
    """Mean of B - A over images that share seed and presets, each with a percentile-bootstrap CI over pairs."""
    keys = [k for k in PAIR_KEYS if k in table_a and k in table_b]
    if len(keys) < len(PAIR_KEYS):
        return {}, 0
    pairs = table_a.merge(table_b, on=keys, suffixes=("_a", "_b"))
    paired = {}
    for column, _ in PAIRED_COLUMNS:
        if f"{column}_a" in pairs and f"{column}_b" in pairs:
            diff = _numeric(pairs[f"{column}_b"]) - _numeric(pairs[f"{column}_a"])
            paired[column] = bootstrap_ci(
                diff.to_numpy(dtype=float),
                n_boot=config.n_boot,
                confidence=config.confidence,
                seed=config.seed,
            )
    return paired, int(len(pairs))


def to_markdown(result: CompareResult) -> str:
    a, b = result.arms["A"], result.arms["B"]
    lines = [
        f"# Head to head: {result.subject}",
        "",
        f"- **A**: `{a['run']}` — identity **{a['identity']}** ({a['adapter']}), {a['n_images']} images",
        f"- **B**: `{b['run']}` — identity **{b['identity']}** ({b['adapter']}), {b['n_images']} images",
        "",
        "## Each arm (95% CI)",
        "",
        "| metric | A | B | better |",
        "|---|---|---|---|",
    ]
    for label, _, _, lower in ARM_METRICS:
        ea, eb = a["estimates"].get(label), b["estimates"].get(label)
        lines.append(f"| {label} | {_fmt(ea)} | {_fmt(eb)} | {'lower' if lower else 'higher'} |")
    lines += [
        "",
        f"## Paired difference B - A ({result.n_pairs} pairs sharing seed and presets; bootstrap 95% CI)",
        "",
    ]
    if not result.paired:
        lines.append("No images share a seed and presets: only the unpaired intervals above apply.")
    else:
        lines += ["| measure | mean B - A | CI | pairs measured |", "|---|---|---|---|"]
        for column, label in PAIRED_COLUMNS:
            if column in result.paired:
                e = result.paired[column]
                ci = "—" if math.isnan(e.lo) else f"[{e.lo:.3g}, {e.hi:.3g}]"
                value = "—" if math.isnan(e.est) else f"{e.est:+.3g}"
                lines.append(f"| {label} | {value} | {ci} | {e.n} |")
        lines += [
            "",
            "A CI that excludes 0 is a difference between the two methods that these pairs support.",
        ]
    return "\n".join(lines) + "\n"


def _numeric(column: pd.Series) -> pd.Series:
    """Floats (0/1 for booleans such as ``usable``; NaN where nothing was measured)."""
    return pd.to_numeric(column, errors="coerce").astype(float)


def _identity(run: Any) -> dict[str, Any]:
    """The identity method of a run, as its first image recorded it (older runs: LoRA or base model)."""
    records = run.records()
    params = records[0].params if records else {}
    identity = params.get("identity") or {}
    method = identity.get("method") or ("lora" if params.get("lora") else "none")
    return {"identity": method, "adapter": identity.get("adapter") or params.get("lora"),
            "model": params.get("model")}  # fmt: skip


def _get(summary: dict[str, Any], section: str, key: str) -> Estimate | None:
    value = (summary.get(section) or {}).get(key)
    return value if isinstance(value, Estimate) else None


def _est(e: Estimate | None) -> dict[str, Any] | None:
    if e is None:
        return None
    return {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in e.to_dict().items()}


def _fmt(e: Estimate | None) -> str:
    if e is None or (isinstance(e.est, float) and np.isnan(e.est)):
        return "—"
    return f"{e.est:.3g} [{e.lo:.3g}, {e.hi:.3g}] (n={e.n})"
