"""The Evaluate tab: a suite fills the measurements; results as a headline, per-group CIs, plots, a ranking."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.ui import forms
from workbench.ui.handlers.common import StageJob, message_frame, stopped_text
from workbench.ui.jobs import Tick
from workbench.ui.sessions import Viewer
from workbench.workspace import Workspace

DEFAULT_SUITE = "default"
NOT_STARTED = "No evaluation yet: pick a generation run and press Evaluate."
NO_GROUPS = (
    "No evaluation yet",
    "Pick a generation run and press Evaluate: per-group estimates with 95% CIs appear here.",
)
GROUP_COLUMNS = ["by", "metric", "group", "estimate", "95% CI", "n", "method", "worst"]


def generation_runs(workspace: Workspace, viewer: Viewer, subject: str | None) -> list[tuple[str, str]]:
    """(label, run name) of the subject's generation runs that recorded images, newest first."""
    from workbench.workspace.generations import generation_runs as runs

    if not subject or not viewer.can_see(workspace, subject):
        return []
    return [(f"{run.name} ({len(run.records())} images)", run.name) for run in runs(workspace, subject)]


def suite_config(suite: str | None) -> Any:
    from workbench.evaluate import EvalConfig, load_suite

    return load_suite(suite) if suite else EvalConfig()


def fill(suite: str | None) -> dict[str, Any]:
    return forms.form_values(suite_config(suite), forms.EVAL_FIELDS)


def start_eval(
    workspace: Workspace, viewer: Viewer, subject: str | None, run: str | None, suite: str | None,
    values: dict[str, Any],
) -> StageJob:  # fmt: skip
    from workbench.errors import WorkbenchError
    from workbench.evaluate import run_eval
    from workbench.ui.blindtest import answers_path

    subject = viewer.require(workspace, subject)
    if not run or run not in dict(generation_runs(workspace, viewer, subject)).values():
        raise WorkbenchError("Pick a generation run of this subject (generate some images first).")
    config = forms.apply(suite_config(suite), values)
    if not config.metrics:
        raise WorkbenchError("Tick at least one measurement to evaluate.")
    answers = answers_path(workspace, subject)
    if "human" in config.metrics and not config.human_answers and answers.is_file():
        config = config.replace(human_answers=str(answers))  # the Blind test tab's answers
    call = lambda events: run_eval(subject, config, workspace=workspace, events=events, images=run)  # noqa: E731
    return StageJob(subject, config, call)


def _ci(estimate: Any) -> tuple[float, float, float]:
    """(est, lo, hi) of an ``Estimate`` (or of its dict form, as a report stores it)."""
    if isinstance(estimate, dict):
        return estimate["est"], estimate["lo"], estimate["hi"]
    return estimate.est, estimate.lo, estimate.hi


def headline(summary: dict[str, Any], metrics: dict[str, float]) -> str:
    lines = [
        f"**{summary.get('n_images', '?')} images** evaluated against {summary.get('n_references', 0)} photos."
    ]
    ranking = summary.get("ranking")
    if ranking:
        est, lo, hi = _ci(ranking["usable_yield"])
        lines.append(
            f"Usable: **{ranking['usable']} of {ranking['total']}** (yield {est:.0%}, 95% CI {lo:.0%}-{hi:.0%})."
        )
    detect = summary.get("detect") or {}
    if "too_few" in detect:
        lines.append(f"Detector: {detect['too_few']}.")
    if "auc" in detect:
        est, lo, hi = _ci(detect["auc"])
        p = detect.get("p_value")
        lines.append(f"Detector ({detect.get('backend', '?')}) AUC on content-matched held-out photos vs outputs: "
                     f"{est:.2f} [{lo:.2f}, {hi:.2f}] (0.5 = cannot tell){'' if p is None else f', p = {p:.3f}'}.")  # fmt: skip
    for section in ("backends", "copy_paste", "skin", "geometry", "retouch"):
        block = summary.get(section) or {}
        why = block.get("skipped") or (block.get("why_missing") if not _has_figures(block) else None)
        if why:
            lines.append(f"{section.replace('_', '-').capitalize()}: {why}.")
    rows = []
    for key in sorted(metrics):
        if key.startswith(("timing", "groups.")) or key.endswith((".lo", ".hi")):
            continue
        rows.append(_headline_row(key, metrics, summary))
    lines.append("| metric | estimate | 95% CI | n | CI method |\n|---|---|---|---|---|\n" + "\n".join(rows))
    return "\n\n".join(lines)


def _has_figures(block: dict[str, Any]) -> bool:
    from workbench.evaluate.stats import Estimate

    return any(isinstance(v, Estimate) or (isinstance(v, dict) and "est" in v) for v in block.values())


def _headline_row(key: str, metrics: dict[str, float], summary: dict[str, Any]) -> str:
    """One metric with its CI, n and method; "too few (n=...)" or the reason instead of a number or a nan."""
    from workbench.evaluate.stats import Estimate, min_n, too_few

    value, lo, hi = metrics[key], metrics.get(f"{key}.lo"), metrics.get(f"{key}.hi")
    section, _, name = key.partition(".")
    block = summary.get(section) if isinstance(summary.get(section), dict) else {}
    e = block.get(name)
    if isinstance(e, dict) and {"est", "lo", "hi", "n"} <= set(e):  # a report read back from JSON
        e = Estimate(*(e[k] if e[k] is not None else float("nan") for k in ("est", "lo", "hi")), e["n"],
                     e.get("method", "bootstrap"))  # fmt: skip
    n, method = (str(e.n), e.method) if isinstance(e, Estimate) else ("", "")
    if not math.isfinite(value):
        return f"| {key} | {block.get('why_missing', 'not measured')} | — | {n} | {method} |"
    if isinstance(e, Estimate) and too_few(e):
        return f"| {key} | too few (n={e.n}; needs {min_n(e.method)}) | — | {n} | {method} |"
    ci = f"[{lo:.3g}, {hi:.3g}]" if lo is not None and hi is not None else ""
    return f"| {key} | {value:.3g} | {ci} | {n} | {method} |"


def group_rows(groups: dict[str, Any]) -> pd.DataFrame:
    """The per-group tables of the report, flattened: one row per (column, metric, group) with its CI."""
    rows = []
    for column, per_metric in groups.items():
        if "skipped" in per_metric:
            rows.append(
                {"by": column, "metric": "", "group": "", "estimate": "", "95% CI": per_metric["skipped"]}
            )
            continue
        for metric, summary in per_metric.items():
            for group, e in summary.get("groups", {}).items():
                # Below the minimum n (the report's too_few flag) a group shows no number, only its n.
                few = bool(e.get("too_few")) or e["est"] is None or not math.isfinite(e["est"])
                rows.append({
                    "by": column, "metric": summary.get("label", metric), "group": group,
                    "estimate": f"too few (n={e['n']})" if few else f"{e['est']:.3g}",
                    "95% CI": "—" if few else f"[{e['lo']:.3g}, {e['hi']:.3g}]", "n": e["n"],
                    "method": e.get("method", ""), "worst": "yes" if group == summary.get("worst_group") else "",
                })  # fmt: skip
    if not rows:
        return message_frame(
            "No groups", "The suite's group_by columns are not in this run's per-image table."
        )
    return pd.DataFrame(rows, columns=GROUP_COLUMNS)


def ranked(table: pd.DataFrame, publish: Callable[[Path], str]) -> list[tuple[str, str]]:
    """The outputs best first, each labelled with its rank, whether it is usable (or why not), and its score."""
    items = []
    for _, row in table.iterrows():
        if not row.get("file"):
            continue
        mark = "✓ usable" if bool(row.get("usable")) else "✗ " + str(row.get("reasons") or "")
        label = (
            f"#{int(row['rank'])} {mark} · score {float(row.get('score', 0)):.2f}" if "rank" in row else mark
        )
        items.append((publish(row["file"]), label))
    return items


@dataclass(frozen=True)
class EvalView:
    status: str
    groups: pd.DataFrame
    plots: list[tuple[str, str]] = field(default_factory=list)
    ranked: list[tuple[str, str]] = field(default_factory=list)


def view(workspace: Workspace, job: StageJob, tick: Tick, publish: Callable[[Path], str]) -> EvalView:
    if not tick.done:
        p = tick.progress
        step = f"{p.done} of {p.total} {p.unit}" if p else "loading the images and the face models"
        return EvalView(
            f"Evaluating `{job.subject}`: {step}…",
            message_frame("Running", "The report appears when the evaluation ends."),
        )
    if tick.stopped:
        return EvalView(
            stopped_text(workspace, tick, "Evaluation", "No report was written."), message_frame(*NO_GROUPS)
        )
    result = tick.outcome()
    plots = [(publish(path), name) for name, path in (result.files.plots if result.files else {}).items()]
    text = (
        headline(result.summary, result.metrics)
        + f"\n\nReport: `{result.out_dir}` (MLflow run `{result.run_id}`)."
    )
    return EvalView(text, group_rows(result.groups), plots, ranked(result.table, publish))
