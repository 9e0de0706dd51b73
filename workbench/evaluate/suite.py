"""Run an evaluation suite: gather the images, analyse each once, measure, break down by group, report.

Two ways in:

* a subject's generated images (a generation run folder or any folder) judged against the subject's own
  photos (``originals/`` and, when intake wrote them, ``intake/embeddings.npy``);
* a test set (``testsets``) whose rows carry demographic metadata; rows with ``role: reference`` are each
  subject's own photos, and a ``label`` column (real | ai) feeds the detector.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import WorkbenchError
from workbench.evaluate import detect as _detect
from workbench.evaluate.analyse import FaceAnalysis, analyse, backend_for, second_backend
from workbench.evaluate.config import EvalConfig
from workbench.evaluate.groups import group_table
from workbench.evaluate.items import Item, items_from_dataset, items_from_folder
from workbench.evaluate.measure import measure
from workbench.evaluate.ranking import rank
from workbench.evaluate.stats import Estimate, wilson_interval
from workbench.intake.dataset import accepted_originals, holdout_photos
from workbench.stage import Progress, StageEvents, StageResult, tracked_stage
from workbench.workspace import Workspace
from workbench.workspace.generations import find_generation


@dataclass(frozen=True)
class Check:
    """One threshold of the suite against a flat metric."""

    metric: str
    value: float | None
    min: float | None
    max: float | None
    passed: bool
    reason: str = ""  # why it failed, in words (a missing metric says why it is missing)


@dataclass(frozen=True)
class ReportFiles:
    json: Path
    markdown: Path
    html: Path
    per_image: Path
    plots: dict[str, Path]  # plot name -> PNG


@dataclass(kw_only=True)
class EvalResult(StageResult):
    """``out_dir`` holds the report. ``summary`` keeps :class:`Estimate` objects; the report serialises them."""

    config: EvalConfig
    summary: dict[str, Any]
    metrics: dict[str, float]
    table: pd.DataFrame
    groups: dict[str, Any]
    checks: list[Check] = field(default_factory=list)
    files: ReportFiles | None = None

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)


# -- the run ---------------------------------------------------------------------------------------------------
def run_eval(
    subject: str | None,
    config: EvalConfig | None = None,
    *,
    workspace: Workspace,
    events: StageEvents | None = None,
    images: str | Path | None = None,
) -> EvalResult:
    """Evaluate a generation run of ``subject`` against the subject's photos, or the test set
    ``config.testset`` (``subject`` None); write the report and log it as one tracked run.

    ``images`` is a generation run name, its folder or any folder of images; without it, the subject's newest
    generation run.
    """
    config = config or EvalConfig()
    events = events or StageEvents()
    items, source = _gather(config, subject, images, workspace)
    run_name = workspace.new_run_name("eval")
    out = workspace.evaluation_dir(subject, run_name)
    tags = {"workbench.eval.suite": config.suite}
    with tracked_stage("eval", subject, config, workspace=workspace, events=events, run_name=run_name,
                       tags=tags) as run:  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
        result = _evaluate(items, config, workspace, subject, events, run.info.run_id, out)
        result.summary["source"] = source
        result.files = _report(result)
        _log_mlflow(result)
    return result


def _gather(
    config: EvalConfig, subject: str | None, images, ws: Workspace
) -> tuple[list[Item], dict[str, Any]]:
    if config.testset:
        from workbench.evaluate.testsets import load_testset

        ds, spec = load_testset(config.testset, ws)
        return items_from_dataset(ds), {"testset": spec.name, "source": spec.source, "licence": spec.licence}
    if images is not None and Path(images).is_dir():
        folder = Path(images)
    elif subject is not None:
        folder = find_generation(ws, subject, images).dir
    else:
        raise WorkbenchError("Nothing to evaluate: pass images (a folder or generation run) or a test set.")
    # The photos intake accepted, not every upload: rejected ones may show someone else, or be unreadable.
    references = accepted_originals(ws, subject) if subject else []
    holdout = holdout_photos(ws, subject) if subject else []
    source = {"images": str(folder), "subject": subject, "holdout_photos": len(holdout)}
    return items_from_folder(folder, subject, references, holdout), source


def _evaluate(items, config: EvalConfig, ws: Workspace, subject, events: StageEvents, run_id: str, out: Path):
    started = time.perf_counter()
    wants_second = "likeness" in config.metrics
    second = second_backend(config.second_face_backend, config.arcface_model) if wants_second else (None, {})
    plugin = _load_detector(config) if "detect" in config.metrics else None  # missing weights: fail now
    analyses, inputs, provenance = _analyse_all(items, config, events, second[0])
    table, summary = measure(items, analyses, config, ws, subject, second)
    if "ranking" in config.metrics:
        table, summary["ranking"] = _rank(table, config)
    if "detect" in config.metrics:
        summary["detect"] = _run_detector(items, inputs, config, plugin)
    if "provenance" in config.metrics:
        summary["provenance"] = _provenance_summary(items, provenance, config)
    if "human" in config.metrics and config.human_answers:
        from workbench.evaluate.human import read_answers, score_answers

        summary["human"] = score_answers(read_answers(config.human_answers), config.confidence)
    groups = group_table(table, list(config.group_by), n_boot=config.n_boot, confidence=config.confidence,
                         seed=config.seed)  # fmt: skip
    metrics = flat_metrics(summary, groups)
    elapsed = time.perf_counter() - started
    summary["timing"] = {"seconds": elapsed, "images": len(items), "faces_per_second": len(items) / elapsed}
    metrics["timing.faces_per_second"] = len(items) / elapsed
    return EvalResult(run_id=run_id, out_dir=out, config=config, summary=summary, metrics=metrics, table=table,
                      groups=groups, checks=run_checks(metrics, config.thresholds, _missing_reasons(summary)))  # fmt: skip


def _rank(table: pd.DataFrame, config: EvalConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    backend = backend_for(config.face_backend)
    table = rank(table, config, backend.threshold if "likeness" in config.metrics else None)
    usable = int(table["usable"].sum())
    return table, {
        "usable": usable, "total": len(table),
        "usable_yield": wilson_interval(usable, len(table), config.confidence),
        "top": table.head(15)[["id", "score", "usable", "reasons"]].to_dict("records"),
    }  # fmt: skip


def _report(result: EvalResult) -> ReportFiles:
    from workbench.evaluate.report import compare_baseline, write_report

    baseline = compare_baseline(result.metrics, result.config.baseline) if result.config.baseline else None
    return write_report(result, baseline)


def _analyse_all(items: list[Item], config: EvalConfig, events: StageEvents, second=None):
    """Load each image once: its face analysis, its content-matched detector input and its provenance."""
    analyses: list[FaceAnalysis] = []
    inputs: dict[str, _detect.DetectorInput] = {}
    provenance = []
    want_faces = bool({"likeness", "skin", "geometry", "retouch", "ranking", "detect"} & set(config.metrics))
    for done, item in enumerate(items, 1):
        events.raise_if_stopped()
        image = item.load()
        if want_faces:
            analyses.append(analyse(image, config.face_backend, analysis_size=config.analysis_size,
                                    retry_upsample=config.retry_upsample,
                                    embed=bool({"likeness", "ranking"} & set(config.metrics)),
                                    skin="skin" in config.metrics, white_method=config.white_method,
                                    second=second, texture="retouch" in config.metrics,
                                    geometry="geometry" in config.metrics))  # fmt: skip
        else:
            analyses.append(FaceAnalysis(face_found=False))
        if "detect" in config.metrics and not item.reference:  # training photos never enter the detector
            inputs[item.id] = _detector_input(item, image, analyses[-1], config)
        if "provenance" in config.metrics and item.path is not None and item.output:
            # The generate stage's own reader: one definition of the mark for writing and for checking.
            from workbench.generate.provenance import read_provenance

            provenance.append(read_provenance(item.path))
        events.progress(Progress("eval", done, len(items), unit="img", message=item.id))
    return analyses, inputs, provenance


def _load_detector(config: EvalConfig):
    from workbench.evaluate.detectors import load_detector

    return load_detector(config.detector, weights=config.detector_weights, clip_model=config.clip_model,
                         input_size=_crop_size(config))  # fmt: skip


def _crop_size(config: EvalConfig) -> int:
    from workbench.evaluate.detectors import DEFAULT_INPUT_SIZE

    return config.detector_crop_size or DEFAULT_INPUT_SIZE[config.detector]


def _detector_input(
    item: Item, image: np.ndarray, a: FaceAnalysis, config: EvalConfig
) -> _detect.DetectorInput:
    """The same face-centred crop, size and encoding for every image, real or generated (content matching)."""
    box = None if a.box is None else tuple(v / a.scale for v in a.box)
    meta = {k: v for k, v in item.meta.items() if k in config.group_by}
    return _detect.detector_input(item.id, image, box, size=_crop_size(config), margin=config.detector_margin,
                                  source=str(item.meta.get("subject_id")), meta=meta,
                                  encoding=config.detector_encoding, jpeg_quality=config.detector_jpeg_quality)  # fmt: skip


def _run_detector(items: list[Item], inputs: dict, config: EvalConfig, plugin=None) -> dict[str, Any]:
    """Real side: held-out photos (subject mode) or rows labelled real; generated side: outputs or rows labelled
    ai. Training photos never take part: they differ from the outputs in content, not only in being real."""
    labelled = any("label" in it.meta for it in items)
    if labelled:
        label = {it.id: str(it.meta.get("label", "")).lower() for it in items}
        real = [inputs[i] for i in inputs if label[i] == "real"]
        generated = [inputs[i] for i in inputs if label[i] == "ai"]
    else:
        role = {it.id: it.role for it in items}
        real = [inputs[i] for i in inputs if role[i] == "holdout"]
        generated = [inputs[i] for i in inputs if role[i] == "output"]
    summary = _detect.run_detectability(
        real, generated, detector=plugin or config.detector, weights=config.detector_weights,
        clip_model=config.clip_model, n_folds=config.detector_folds, n_permutations=config.detector_permutations,
        n_boot=config.n_boot, confidence=config.confidence, seed=config.seed,
        group_columns=[c for c in config.group_by if any(c in x.meta for x in real + generated)],
    )  # fmt: skip
    if "too_few" in summary and not labelled and not real:
        summary["too_few"] += ("; the real side is the subject's held-out photos, never the training photos: run "
                               "intake with holdout=N to keep some out of training")  # fmt: skip
    return summary


def _provenance_summary(items, provenance, config: EvalConfig) -> dict[str, Any]:
    if not provenance:
        return {"skipped": "no image files to read (test-set rows or no outputs)"}
    n = len(provenance)
    marked = sum(p["ai_generated"] for p in provenance)
    params = sum(p["parameters"] is not None or p["parameters_text"] is not None for p in provenance)
    summary = {
        "ai_mark_rate": wilson_interval(marked, n, config.confidence),
        "parameters_rate": wilson_interval(params, n, config.confidence),
        "n": n,
    }
    if all(p["watermark_checked"] for p in provenance):  # only when a watermark decoder is installed
        found = sum(p["watermark"] is not None for p in provenance)
        summary["watermark_rate"] = wilson_interval(found, n, config.confidence)
    return summary


# -- flat metrics, checks, MLflow ------------------------------------------------------------------------------
def flat_metrics(summary: dict[str, Any], groups: dict[str, Any]) -> dict[str, float]:
    """Every estimate as ``section.name`` (its CI as ``.lo`` / ``.hi``), plus group gaps and ratios."""
    flat: dict[str, float] = {"n_images": summary["n_images"], "n_references": summary["n_references"]}
    from workbench.evaluate.report import REPORT_SECTIONS

    for section in REPORT_SECTIONS:
        for key, value in (summary.get(section) or {}).items():
            if isinstance(value, int) and not isinstance(
                value, bool
            ):  # counts (faces found, images measured)
                flat[f"{section}.{key}"] = value
            elif isinstance(value, Estimate):
                flat[f"{section}.{key}"] = value.est
                flat[f"{section}.{key}.lo"] = value.lo
                flat[f"{section}.{key}.hi"] = value.hi
    detect = summary.get("detect") or {}
    if isinstance(detect.get("p_value"), float):
        flat["detect.p_value"] = detect["p_value"]
    for column, groups in (detect.get("groups") or {}).items():
        for name, g in groups.items():
            if "auc" in g:
                flat[f"detect.groups.{column}.{name}.auc"] = g["auc"].est
    for section in ("single", "2afc"):
        block = (summary.get("human") or {}).get(section)
        if block:
            flat[f"human.{section}.accuracy"] = block["accuracy"].est
            flat[f"human.{section}.dprime"] = block["dprime"]
    for col, per_metric in groups.items():
        for name, g in per_metric.items():
            if isinstance(g, dict) and "gap" in g:
                flat[f"groups.{col}.{name}.gap"] = g["gap"]
                flat[f"groups.{col}.{name}.ratio"] = g["ratio"]
    return {k: float(v) for k, v in flat.items() if v is not None}


def run_checks(
    metrics: dict[str, float], thresholds: dict[str, dict[str, float]], missing: dict[str, str] | None = None
) -> list[Check]:
    """Each threshold against its flat metric; a missing or NaN metric fails, with ``missing[section]`` as why."""
    checks = []
    for name, bounds in thresholds.items():
        value = metrics.get(name)
        ok = value is not None and not math.isnan(value)
        reason = ""
        if not ok:
            why = (missing or {}).get(name.split(".")[0], "not measured in this run")
            reason = f"no value for {name}: {why}"
        if ok and "min" in bounds and not value >= bounds["min"]:
            ok, reason = False, f"{value:.3g} is below the minimum {bounds['min']}"
        if ok and "max" in bounds and not value <= bounds["max"]:
            ok, reason = False, f"{value:.3g} is above the maximum {bounds['max']}"
        checks.append(Check(name, value, bounds.get("min"), bounds.get("max"), bool(ok), reason))
    return checks


def _missing_reasons(summary: dict[str, Any]) -> dict[str, str]:
    """Per section, why its figures may be absent (too few images, skipped, no face found)."""
    reasons = {}
    for section, block in summary.items():
        if isinstance(block, dict):
            why = block.get("too_few") or block.get("skipped") or block.get("why_missing")
            if why:
                reasons[section] = str(why)
    return reasons


def _log_mlflow(result: EvalResult) -> None:
    import mlflow

    mlflow.log_metrics({k: v for k, v in result.metrics.items() if math.isfinite(v)})
    mlflow.log_artifacts(str(result.out_dir), artifact_path="report")


def load_suite(name_or_path: str) -> EvalConfig:
    """``eval/suites/<name>.yaml`` (the current folder's, else built in) or a YAML path, as an EvalConfig."""
    from workbench import resources

    return EvalConfig.from_yaml(resources.find("suites", name_or_path))
