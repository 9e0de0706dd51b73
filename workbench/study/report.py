"""The study report: per method x group, with CIs over identities, paired method differences, worst group.

Each identity is one unit: its cells (seeds) are averaged first, then identities are bootstrapped
(:func:`workbench.evaluate.stats.bootstrap_ci`), so an identity with many images does not count as many
independent samples. A group with fewer than ``min_identities`` identities that have the metric is reported
as "too few" instead of a number.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from workbench.evaluate.stats import bootstrap_ci

METRICS: dict[str, str] = {  # name -> what it means (higher is better unless said)
    "likeness_distance": "median face distance to the identity's references (lower = more alike)",
    "verification_rate": "share of images verified as the identity",
    "face_found_rate": "share of images with a face",
    "delta_L": "skin L* of outputs minus references (positive = lighter)",
    "delta_e2000": "CIEDE2000 skin colour difference to the references",
    "lightening_rate": "share of images whose skin is lighter than the threshold",
    "usable_yield": "share of usable images",
    "detect_auc": "AI-detectability AUC (0.5 = indistinguishable)",
    "train_loss": "final training loss (diagnostic)",
}
LOWER_IS_WORSE = {"verification_rate", "face_found_rate", "usable_yield"}  # for "worst group"
TOO_FEW = "too few"


def identity_values(cells: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, float]]:
    """(method, identity) -> metric -> mean over that identity's cells (seeds), NaNs ignored."""
    pooled: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for cell in cells:
        for name, value in cell["metrics"].items():
            if value is not None and math.isfinite(value):
                pooled[(cell["method"], cell["identity"])][name].append(float(value))
    return {key: {m: float(np.mean(v)) for m, v in values.items()} for key, values in pooled.items()}


def build_report(
    cells: list[dict[str, Any]], *, group_by: list[str], min_identities: int, n_boot: int, seed: int = 0
) -> dict[str, Any]:
    per_identity = identity_values(cells)
    methods = sorted({c["method"] for c in cells})
    groups_of = {c["identity"]: c["groups"] for c in cells}
    present = sorted({m for values in per_identity.values() for m in values}, key=list(METRICS).index)
    report: dict[str, Any] = {
        "n_cells": len(cells), "n_identities": len(groups_of), "methods": methods,
        "min_identities": min_identities, "ci": f"95% percentile bootstrap over identities ({n_boot} resamples)",
        "metrics": {m: METRICS[m] for m in present}, "overall": {}, "groups": {}, "paired": {}, "worst": {},
    }  # fmt: skip

    def estimate(identities: list[str], method: str, metric: str) -> dict[str, Any]:
        values = [per_identity.get((method, i), {}).get(metric) for i in identities]
        values = [v for v in values if v is not None]
        if len(values) < min_identities:
            return {"est": TOO_FEW, "n": len(values)}
        return bootstrap_ci(values, n_boot=n_boot, seed=seed).to_dict()

    everyone = sorted(groups_of)
    for method in methods:
        report["overall"][method] = {m: estimate(everyone, method, m) for m in present}
    for column in group_by:
        members: dict[str, list[str]] = defaultdict(list)
        for identity, groups in groups_of.items():
            members[str(groups.get(column, "unknown"))].append(identity)
        table = {
            method: {g: {m: estimate(sorted(ids), method, m) for m in present} for g, ids in _sorted(members)}
            for method in methods
        }
        report["groups"][column] = table
        report["worst"][column] = {method: _worst(table[method], present) for method in methods}
    for a, b in ((a, b) for i, a in enumerate(methods) for b in methods[i + 1 :]):
        report["paired"][f"{b} - {a}"] = {m: _paired(per_identity, everyone, a, b, m, min_identities, n_boot, seed)
                                          for m in present}  # fmt: skip
    return report


def _sorted(members: dict[str, list[str]]) -> list[tuple[str, list[str]]]:
    """Groups in natural order (MST 1-3 before MST 10; numbers numerically)."""
    import re

    def key(name: str):
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]

    return sorted(members.items(), key=lambda kv: key(kv[0]))


def _paired(per_identity, identities, a, b, metric, min_identities, n_boot, seed) -> dict[str, Any]:
    """Mean over identities of (b - a) on the same identity, with a bootstrap CI over identities."""
    diffs = [
        per_identity[(b, i)][metric] - per_identity[(a, i)][metric]
        for i in identities
        if metric in per_identity.get((a, i), {}) and metric in per_identity.get((b, i), {})
    ]
    if len(diffs) < min_identities:
        return {"est": TOO_FEW, "n": len(diffs)}
    return bootstrap_ci(diffs, n_boot=n_boot, seed=seed).to_dict()


def _worst(groups: dict[str, dict[str, Any]], metrics: list[str]) -> dict[str, Any]:
    """Per metric: the worst group with a number, and its gap to the best (None when < 2 groups qualify)."""
    out = {}
    for metric in metrics:
        numbers = {g: v[metric]["est"] for g, v in groups.items() if isinstance(v[metric]["est"], float)}
        if len(numbers) < 2:
            out[metric] = {"group": None, "gap": None, "why": "fewer than two groups with enough identities"}
            continue
        if metric in LOWER_IS_WORSE:
            worst, best = min(numbers, key=numbers.get), max(numbers, key=numbers.get)
        elif metric in ("delta_L", "detect_auc"):  # far from 0 (or 0.5) is worse
            centre = 0.5 if metric == "detect_auc" else 0.0
            worst = max(numbers, key=lambda g: abs(numbers[g] - centre))
            best = min(numbers, key=lambda g: abs(numbers[g] - centre))
        else:
            worst, best = max(numbers, key=numbers.get), min(numbers, key=numbers.get)
        out[metric] = {"group": worst, "gap": abs(numbers[worst] - numbers[best]), "best": best}
    return out


def _fmt(entry: dict[str, Any]) -> str:
    if not isinstance(entry.get("est"), float):
        return f"{TOO_FEW} (n={entry['n']})"
    return f"{entry['est']:.3g} [{entry['lo']:.3g}, {entry['hi']:.3g}] n={entry['n']}"


def to_markdown(report: dict[str, Any], title: str) -> str:
    lines = [f"# Study report: {title}", "",
             f"{report['n_identities']} identities, {report['n_cells']} cells; {report['ci']}; groups with fewer "
             f"than {report['min_identities']} identities say '{TOO_FEW}'.", ""]  # fmt: skip
    metrics = list(report["metrics"])
    lines += ["## Overall", "", "| method | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for method, values in report["overall"].items():
        lines.append(f"| {method} | " + " | ".join(_fmt(values[m]) for m in metrics) + " |")
    for column, table in report["groups"].items():
        lines += ["", f"## By {column}", "", "| method | group | " + " | ".join(metrics) + " |",
                  "|---" * (len(metrics) + 2) + "|"]  # fmt: skip
        for method, groups in table.items():
            for group, values in groups.items():
                lines.append(f"| {method} | {group} | " + " | ".join(_fmt(values[m]) for m in metrics) + " |")
        lines += ["", f"Worst {column} group per metric (gap to the best):", ""]
        for method, worst in report["worst"][column].items():
            parts = [f"{m}: {w['group']} (gap {w['gap']:.3g})" for m, w in worst.items() if w["group"]]
            lines.append(
                f"- {method}: " + ("; ".join(parts) or "no metric has two groups with enough identities")
            )
    if report["paired"]:
        lines += ["", "## Paired differences (same identity)", "", "| pair | " + " | ".join(metrics) + " |",
                  "|---" * (len(metrics) + 1) + "|"]  # fmt: skip
        for pair, values in report["paired"].items():
            lines.append(f"| {pair} | " + " | ".join(_fmt(values[m]) for m in metrics) + " |")
    for name, meaning in report["metrics"].items():
        lines.append(f"\n- `{name}`: {meaning}")
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], column: str, path: Path) -> Path:
    """Per metric, one panel: method x group estimates with CI bars (groups with too few identities left out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = list(report["metrics"])
    cols = min(3, len(metrics)) or 1
    rows = -(-len(metrics) // cols) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    table = report["groups"].get(column, {})
    for ax, metric in zip(axes.flat, metrics, strict=False):
        for k, (method, groups) in enumerate(table.items()):
            xs, ys, err = [], [], [[], []]
            for j, (_, values) in enumerate(groups.items()):
                e = values[metric]
                if isinstance(e.get("est"), float):
                    xs.append(j + 0.15 * k)
                    ys.append(e["est"])
                    err[0].append(e["est"] - e["lo"])
                    err[1].append(e["hi"] - e["est"])
            ax.errorbar(xs, ys, yerr=err, fmt="o", capsize=3, label=method)
            ax.set_xticks(range(len(groups)), list(groups), fontsize=8)
        ax.set_title(metric, fontsize=9)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def write_report(report: dict[str, Any], out_dir: Path, title: str) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"json": out_dir / "study_report.json", "markdown": out_dir / "study_report.md"}
    files["json"].write_text(json.dumps(report, indent=2, default=str))
    files["markdown"].write_text(to_markdown(report, title))
    for column in report["groups"]:
        files[f"plot_{column}"] = plot(report, column, out_dir / f"study_{column}.png")
    return files
