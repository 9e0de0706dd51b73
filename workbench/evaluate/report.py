"""The report: ``report.json`` (everything), ``report.md`` and ``report.html`` (readable), ``per_image.csv``
and plots (per-group bars with CIs, the skin-shift scatter, the likeness histogram)."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # files only; never opens a window
import matplotlib.pyplot as plt  # noqa: E402

from workbench.evaluate.detect import MIN_PER_SIDE  # noqa: E402
from workbench.evaluate.groups import natural_key  # noqa: E402
from workbench.evaluate.stats import MIN_N, Estimate, describe, min_n  # noqa: E402

if TYPE_CHECKING:
    from workbench.evaluate.suite import EvalResult, ReportFiles


def compare_baseline(metrics: dict[str, float], baseline: str) -> dict[str, Any]:
    """Current vs stored metrics: ``{name: {baseline, current, delta}}`` for every metric in both."""
    from workbench import resources

    path = resources.find("baselines", baseline)
    stored = json.loads(path.read_text())
    rows = {}
    for name, value in stored.get("metrics", {}).items():
        current = metrics.get(name)
        delta = None if current is None or value is None else current - value
        rows[name] = {"baseline": value, "current": current, "delta": delta}
    return {
        "name": stored.get("name", path.stem),
        "path": str(path),
        "notes": stored.get("notes", ""),
        "metrics": rows,
    }


def write_report(result: EvalResult, baseline: dict[str, Any] | None) -> ReportFiles:
    from dataclasses import asdict

    from workbench.evaluate.suite import ReportFiles
    from workbench.workspace.evaluations import REPORT_HTML, REPORT_JSON, REPORT_MARKDOWN

    out = result.out_dir
    (out / "plots").mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    files.update(plot_groups(result.groups, out / "plots"))
    if "delta_L" in result.table:
        files["skin_shift"] = plot_skin_shift(result, out / "plots" / "skin_shift.png")
    if "median_distance" in result.table:
        files["likeness_hist"] = plot_likeness(result, out / "plots" / "likeness_hist.png")
    result.table.drop(columns=["reasons"], errors="ignore").to_csv(out / "per_image.csv", index=False)
    files["per_image"] = out / "per_image.csv"
    data = {
        "suite": result.config.suite, "config": result.config.to_dict(), "summary": result.summary,
        "metrics": result.metrics, "groups": result.groups, "checks": [asdict(c) for c in result.checks],
        "baseline": baseline, "plots": {k: str(v.relative_to(out)) for k, v in files.items() if v.suffix == ".png"},
    }  # fmt: skip
    (out / REPORT_JSON).write_text(json.dumps(jsonable(data), indent=2, default=str))
    markdown = to_markdown(result, baseline, files)
    (out / REPORT_MARKDOWN).write_text(markdown)
    (out / REPORT_HTML).write_text(to_html(markdown))
    plots = {k: v for k, v in files.items() if v.suffix == ".png"}
    return ReportFiles(json=out / REPORT_JSON, markdown=out / REPORT_MARKDOWN, html=out / REPORT_HTML,
                       per_image=files["per_image"], plots=plots)  # fmt: skip


def jsonable(value: Any) -> Any:
    """JSON without NaN (not valid JSON): NaN becomes null; an :class:`Estimate` becomes its dict."""
    if isinstance(value, Estimate):
        return jsonable(value.to_dict())
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return jsonable(value.item())
    return value


# -- plots -----------------------------------------------------------------------------------------------------
# Panels per row: 3 x 3.6 in x 110 dpi = 1188 px, narrow enough for the app and the notebooks.
MAX_PLOT_COLUMNS = 3
PANEL_SIZE = (3.6, 3.2)  # inches
DPI = 110


def plot_groups(groups: dict[str, Any], folder: Path) -> dict[str, Path]:
    """One figure per grouping column: a panel per metric, wrapped in rows, a bar per group with its CI.

    A group below its minimum n gets no bar: its slot says "too few (n=...)".
    """
    files = {}
    for col, per_metric in groups.items():
        metrics = {k: v for k, v in per_metric.items() if isinstance(v, dict) and "groups" in v}
        if not metrics:
            continue
        ncols = min(len(metrics), MAX_PLOT_COLUMNS)
        nrows = math.ceil(len(metrics) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(PANEL_SIZE[0] * ncols, PANEL_SIZE[1] * nrows),
                                 squeeze=False)  # fmt: skip
        for ax, m in zip(axes.flat, metrics.values(), strict=False):
            _group_panel(ax, m)
        for ax in list(axes.flat)[len(metrics) :]:
            ax.remove()
        fig.suptitle(
            f"by {col} (bars: mean or rate, whiskers: CI; grey text: too few to estimate)", fontsize=9
        )
        fig.tight_layout()
        path = folder / f"groups_{col}.png"
        fig.savefig(path, dpi=DPI)
        plt.close(fig)
        files[f"groups_{col}"] = path
    return files


def _group_panel(ax, m: dict[str, Any]) -> None:
    names = list(m["groups"])
    shown = [g for g in names if not _too_few_group(m["groups"][g])]
    x = [names.index(g) for g in shown]
    est = [m["groups"][g]["est"] for g in shown]
    err = [[e - m["groups"][g]["lo"] for g, e in zip(shown, est, strict=True)],
           [m["groups"][g]["hi"] - e for g, e in zip(shown, est, strict=True)]]  # fmt: skip
    colours = ["#c0392b" if g == m["worst_group"] else "#4a78a8" for g in shown]
    if shown:
        ax.bar(x, est, yerr=err, capsize=3, color=colours)
    else:
        ax.set_yticks([])  # no group has a number: an empty scale would suggest zeros
    for i, g in enumerate(names):
        if g not in shown:
            ax.text(i, 0.5, f"too few\n(n={m['groups'][g]['n']})", transform=ax.get_xaxis_transform(),
                    ha="center", va="center", fontsize=6, color="grey", rotation=90)  # fmt: skip
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
    ax.set_title(f"{m['label']}\n({m['better']} is better; red = worst)", fontsize=8)


def _too_few_group(g: dict[str, Any]) -> bool:
    return bool(g.get("too_few")) or not math.isfinite(g["est"])


def plot_skin_shift(result: EvalResult, path: Path) -> Path:
    t = result.table.dropna(subset=["delta_L", "delta_hue"])
    fig, ax = plt.subplots(figsize=(5, 4))
    key = next((c for c in result.config.group_by if c in t and t[c].notna().any()), None)
    parts = sorted(t.groupby(t[key].astype(str)), key=lambda kv: natural_key(kv[0])) if key else [("all", t)]
    for name, part in parts:
        ax.scatter(part["delta_hue"], part["delta_L"], s=18, label=name, alpha=0.8)
    thr = result.config.lightening_threshold
    ax.axhline(thr, color="#c0392b", ls="--", lw=1, label=f"lightening threshold (+{thr} L*)")
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel("hue shift Δh* (degrees; + = yellower)")
    ax.set_ylabel("lightness shift ΔL* (+ = lighter)")
    ax.set_title("Skin shift of each image vs the subject's own photos", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_likeness(result: EvalResult, path: Path) -> Path:
    like = result.summary.get("likeness", {})
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for col, colour in (("median_distance", "#4a78a8"), ("centroid_distance", "#8e44ad")):
        values = result.table[col].dropna()
        if len(values):
            ax.hist(values, bins=20, alpha=0.6, color=colour, label=col.replace("_", " "))
    if "threshold" in like:
        ax.axvline(
            like["threshold"], color="#c0392b", ls="--", label=f"same-person threshold ({like['threshold']})"
        )
    missing = int((result.table["face_found"] == 0).sum())
    ax.set_xlabel(f"embedding distance to the subject ({like.get('metric', '')})")
    ax.set_ylabel("images")
    ax.set_title(
        f"Likeness ({missing} image(s) without a face not shown, counted as not verified)", fontsize=8
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# -- text ------------------------------------------------------------------------------------------------------
# The summary's sections in report order; each holds Estimates (and counts, notes) or says why it has none.
REPORT_SECTIONS = ("likeness", "backends", "copy_paste", "skin", "geometry", "retouch", "detect", "provenance",
                   "ranking")  # fmt: skip


def _fmt(e: Estimate | None, why_missing: str = "not measured") -> str:
    """An estimate with its CI, or the reason there is none ("too few (n=...)", "no face found in any image")."""
    return why_missing if e is None else describe(e, why_missing)


def _group_cells(v: dict[str, Any]) -> str:
    """``| n | estimate | CI | method |`` cells of one group (no number below the minimum n)."""
    method = v.get("method", "bootstrap")
    if _too_few_group(v):
        return f"| {v['n']} | too few (n={v['n']}; needs {min_n(method)}) | — | {method} |"
    return f"| {v['n']} | {v['est']:.3f} | [{v['lo']:.3f}, {v['hi']:.3f}] | {method} |"


def to_markdown(result: EvalResult, baseline: dict[str, Any] | None, files: dict[str, Path]) -> str:
    s, cfg = result.summary, result.config
    pct = int(round(cfg.confidence * 100))
    lines = [f"# Evaluation report: suite `{cfg.suite}`", "", cfg.description or "", "",
             f"Source: `{json.dumps(s.get('source', {}))}`  ", f"Images: {s['n_images']} evaluated, "
             f"{s['n_references']} reference photos. Intervals: {pct}% (Wilson for rates, bootstrap otherwise).  ",
             f"Below {MIN_N['wilson']} images for a rate, {MIN_N['bootstrap']} for a mean or "
             f"{MIN_PER_SIDE} per side for detectability, a figure reads \"too few (n=...)\" instead of a number.", ""]  # fmt: skip
    for section in REPORT_SECTIONS:
        if s.get(section):
            lines += _section_lines(section, s[section])
    if s.get("human"):
        human = json.dumps(jsonable(s["human"]), indent=2, default=str)[:4000]
        lines += ["## Human blind test", "", "```json", human, "```", ""]
    lines += _group_lines(result, files) + _check_lines(result) + _baseline_lines(baseline)
    timing = s.get("timing", {})
    if timing:
        lines.append(f"Timing: {timing['images']} images in {timing['seconds']:.1f} s "
                     f"({timing['faces_per_second']:.1f} faces/s).")  # fmt: skip
    return "\n".join(lines) + "\n"


def _section_lines(section: str, block: dict[str, Any]) -> list[str]:
    lines = [f"## {section.capitalize()}", ""]
    if "skipped" in block:
        return lines + [f"Skipped: {block['skipped']}", ""]
    if "too_few" in block:  # detectability below its minimum: a sentence, never a number
        return lines + [f"{block['too_few'][0].upper()}{block['too_few'][1:]}.", ""]
    why = block.get("why_missing", "not measured")
    if not any(isinstance(v, Estimate) for v in block.values()):
        return lines + [f"No figures: {why}.", ""]
    lines += ["| metric | estimate [CI] | n | CI method |", "|---|---|---|---|"]
    lines += [
        f"| {k} | {_fmt(v, why)} | {v.n} | {v.method} |" for k, v in block.items() if isinstance(v, Estimate)
    ]
    lines.append("")
    if section == "detect":
        lines += _detect_lines(block)
    if section == "skin":
        for sid, ref in (block.get("reference") or {}).items():
            if ref:
                lines.append(f"- reference skin of `{sid}`: L* {ref['L']:.1f}, h* {ref['hue']:.1f}°, "
                             f"ITA {ref['ita']:.1f}°, MST {ref['mst']}")  # fmt: skip
        lines.append("")
    if section == "ranking":
        lines += ["| rank | image | score | usable | why not |", "|---|---|---|---|---|"]
        lines += [f"| {i + 1} | {r['id']} | {r['score']:.3f} | {'yes' if r['usable'] else 'no'} | {r['reasons']} |"
                  for i, r in enumerate(block["top"])]  # fmt: skip
        lines.append("")
    return lines


def _detect_lines(block: dict[str, Any]) -> list[str]:
    """Which detector (source, licence, weights hash), the protocol, the p-value and the per-group AUCs."""
    info = block.get("detector", {})
    p = block.get("p_value")
    lines = [f"Detector: {info.get('name', block.get('backend'))} — {info.get('source', '')}; licence: "
             f"{info.get('licence', 'n/a')}; weights sha256: {str(info.get('sha256') or 'none (fitted here)')[:16]}.  ",
             f"Protocol: {block.get('protocol', '')}; {block.get('n_real')} real (held-out, content-matched) vs "
             f"{block.get('n_generated')} generated.  ",
             f"Permutation p-value (AUC above chance): {'n/a' if p is None else f'{p:.3f}'} "
             f"({block.get('n_permutations', 0)} permutations).", ""]  # fmt: skip
    if (block.get("content") or {}).get("note"):
        lines += [f"Content matching: {block['content']['note']}.", ""]
    for column, groups in (block.get("groups") or {}).items():
        lines += [f"AUC by `{column}`:", "", "| group | real | generated | AUC [CI] |", "|---|---|---|---|"]
        for name in sorted(groups, key=natural_key):
            g = groups[name]
            auc = f"too few (needs {MIN_PER_SIDE} per side)" if "too_few" in g else describe(g["auc"])
            lines.append(f"| {name} | {g['n_real']} | {g['n_generated']} | {auc} |")
        lines.append("")
    return lines


def _group_lines(result: EvalResult, files: dict[str, Path]) -> list[str]:
    lines = ["## By group", ""]
    for col, per_metric in result.groups.items():
        lines += [f"### {col}", ""]
        if "skipped" in per_metric:
            lines += [f"Skipped: {per_metric['skipped']}", ""]
            continue
        for m in per_metric.values():
            lines += [
                _group_heading(m),
                "",
                "| group | n | estimate | CI | CI method |",
                "|---|---|---|---|---|",
            ]
            lines += [f"| {g} {_group_cells(v)}" for g, v in m["groups"].items()]
            lines.append("")
        if f"groups_{col}" in files:
            lines += [f"![by {col}](plots/groups_{col}.png)", ""]
    for key in ("skin_shift", "likeness_hist"):
        if key in files:
            lines += [f"![{key}](plots/{files[key].name})", ""]
    return lines


def _check_lines(result: EvalResult) -> list[str]:
    if not result.checks:
        return []
    lines = ["## Checks", "", "| metric | value | min | max | passed |", "|---|---|---|---|---|"]
    lines += [f"| {c.metric} | {'absent' if c.value is None else c.value} | {'' if c.min is None else c.min} | "
              f"{'' if c.max is None else c.max} | {'yes' if c.passed else '**NO**: ' + c.reason} |"
              for c in result.checks]  # fmt: skip
    return lines + [""]


def _baseline_lines(baseline: dict[str, Any] | None) -> list[str]:
    if not baseline:
        return []
    lines = [f"## Against baseline `{baseline['name']}`", "", baseline.get("notes", ""), "",
             "| metric | baseline | current | delta |", "|---|---|---|---|"]  # fmt: skip
    for name, row in baseline["metrics"].items():
        cur = "n/a" if row["current"] is None else f"{row['current']:.3f}"
        delta = "n/a" if row["delta"] is None else f"{row['delta']:+.3f}"
        lines.append(f"| {name} | {row['baseline']} | {cur} | {delta} |")
    return lines + [""]


def _group_heading(m: dict[str, Any]) -> str:
    """The worst group and the gap/ratio, or why there are none: a gap needs two groups above the minimum n."""
    small = [g for g, v in m["groups"].items() if _too_few_group(v)]
    head = f"**{m['label']}** ({m['better']} is better) — "
    if len(m["groups"]) - len(small) < 2:
        method = next(iter(m["groups"].values()), {}).get("method", "bootstrap")
        return head + f"no worst group or gap: fewer than two groups have n ≥ {min_n(method)}"
    ratio = (
        f"ratio {m['ratio']:.3f}"
        if math.isfinite(m["ratio"])
        else f"ratio {m.get('ratio_note') or 'undefined'}"
    )
    text = head + (f"worst group `{m['worst_group']}`, gap {m['gap']:.3f} [{m['gap_ci'][0]:.3f}, "
                   f"{m['gap_ci'][1]:.3f}], {ratio}")  # fmt: skip
    if small:
        text += (
            f"; too few to estimate: {', '.join(f'`{g}`' for g in small)} (gap and worst group include them)"
        )
    return text


# -- tables for notebooks and the app (pandas, the same wording as the Markdown report) ---------------------------
def group_frame(groups: dict[str, Any], column: str):
    """One row per (metric, group) of ``groups[column]``: n and the CI method always; "too few (n=...)" instead of
    a number below the minimum n; groups in numeric order."""
    import pandas as pd

    per_metric = groups.get(column, {})
    if "skipped" in per_metric:
        return pd.DataFrame([{"metric": "(none)", "group": column, "estimate [CI]": per_metric["skipped"]}])
    rows = []
    for m in per_metric.values():
        if not isinstance(m, dict) or "groups" not in m:
            continue
        for group, e in m["groups"].items():
            method = e.get("method", "bootstrap")
            text = (f"too few (n={e['n']}; needs {min_n(method)})" if _too_few_group(e)
                    else f"{e['est']:.3f} [{e['lo']:.3f}, {e['hi']:.3f}]")  # fmt: skip
            rows.append({"metric": m["label"], "group": group, "n": e["n"], "CI method": method,
                         "estimate [CI]": text, "worst": group == m["worst_group"]})  # fmt: skip
    return pd.DataFrame(rows)


def summary_frame(summary: dict[str, Any], sections: tuple[str, ...] | None = None):
    """Every headline estimate as a row: section, metric, estimate [CI] (or why there is none), n, CI method."""
    import pandas as pd

    rows = []
    for section in sections or REPORT_SECTIONS:
        block = summary.get(section) or {}
        if "too_few" in block or "skipped" in block:
            rows.append({"section": section, "metric": "(all)", "estimate [CI]": block.get("too_few") or
                         f"skipped: {block['skipped']}", "n": None, "CI method": None})  # fmt: skip
            continue
        why = block.get("why_missing", "not measured")
        found = [{"section": section, "metric": k, "estimate [CI]": _fmt(v, why), "n": v.n, "CI method": v.method}
                 for k, v in block.items() if isinstance(v, Estimate)]  # fmt: skip
        rows += found or [
            {"section": section, "metric": "(all)", "estimate [CI]": why, "n": None, "CI method": None}
        ]
    return pd.DataFrame(rows)


def checks_frame(checks: list[Any]):
    import pandas as pd

    return pd.DataFrame([{"metric": c.metric, "value": c.value, "min": c.min, "max": c.max, "passed": c.passed,
                          "why not": c.reason} for c in checks])  # fmt: skip


def to_html(markdown: str) -> str:
    """A minimal, dependency-free rendering of the Markdown report (tables, headings, images, paragraphs)."""
    body, in_table = [], False
    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [html.escape(c.strip()).replace("**", "") for c in line.strip("|").split("|")]
            if set(line.replace("|", "").strip()) <= {"-"}:
                continue
            if not in_table:
                body.append("<table>")
                in_table = True
                body.append("<tr>" + "".join(f"<th>{c}</th>" for c in cells) + "</tr>")
            else:
                body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
            continue
        if in_table:
            body.append("</table>")
            in_table = False
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{html.escape(line[level:].strip())}</h{level}>")
        elif line.startswith("!["):
            alt, src = line[2:].split("](")
            body.append(
                f'<img alt="{html.escape(alt)}" src="{html.escape(src.rstrip(")"))}" style="max-width:100%">'
            )
        elif line.strip():
            body.append(f"<p>{html.escape(line).replace('**', '')}</p>")
    if in_table:
        body.append("</table>")
    style = "body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}"
    return f"<!doctype html><html><head><meta charset='utf-8'><title>Evaluation report</title><style>{style}</style></head><body>{''.join(body)}</body></html>"
