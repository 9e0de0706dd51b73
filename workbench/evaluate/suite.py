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
from workbench.evaluate.analyse import FaceAnalysis, analyse, backend_for, list_images
from workbench.evaluate.config import EvalConfig
from workbench.evaluate.groups import group_table
from workbench.evaluate.items import Item, items_from_dataset, items_from_folder
from workbench.evaluate.likeness import (
    References,
    likeness,
    read_intake_embeddings,
    references_from_embeddings,
)
from workbench.evaluate.ranking import rank
from workbench.evaluate.skin import mst_band, pooled_skin, skin_shift
from workbench.evaluate.stats import Estimate, bootstrap_ci, wilson_interval
from workbench.intake.dataset import accepted_originals
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
    holdout = list_images(ws.holdout_dir(subject)) if subject and ws.holdout_dir(subject).is_dir() else []
    source = {"images": str(folder), "subject": subject, "holdout_photos": len(holdout)}
    return items_from_folder(folder, subject, references, holdout), source


def _evaluate(items, config: EvalConfig, ws: Workspace, subject, events: StageEvents, run_id: str, out: Path):
    started = time.perf_counter()
    analyses, spectra, crops, provenance = _analyse_all(items, config, events)
    table, summary = _measure(items, analyses, config, ws, subject)
    if "ranking" in config.metrics:
        table, summary["ranking"] = _rank(table, config)
    if "detect" in config.metrics:
        summary["detect"] = _run_detector(items, spectra, crops, config)
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


def _analyse_all(items: list[Item], config: EvalConfig, events: StageEvents):
    analyses: list[FaceAnalysis] = []
    spectra, crops, provenance = [], [], []
    want_faces = bool({"likeness", "skin", "ranking"} & set(config.metrics))
    for done, item in enumerate(items, 1):
        events.raise_if_stopped()
        image = item.load()
        if want_faces:
            analyses.append(analyse(image, config.face_backend, analysis_size=config.analysis_size,
                                    retry_upsample=config.retry_upsample,
                                    embed="likeness" in config.metrics or "ranking" in config.metrics,
                                    skin="skin" in config.metrics))  # fmt: skip
        else:
            analyses.append(FaceAnalysis(face_found=False))
        if "detect" in config.metrics:
            if config.detector == "spectral":
                spectra.append(_detect.azimuthal_spectrum(image, config.spectrum_size))
            else:
                crops.append(_detect._clip_crop(image, 224))
        if "provenance" in config.metrics and item.path is not None and item.output:
            # The generate stage's own reader: one definition of the mark for writing and for checking.
            from workbench.generate.provenance import read_provenance

            provenance.append(read_provenance(item.path))
        events.progress(Progress("eval", done, len(items), unit="img", message=item.id))
    return analyses, spectra, crops, provenance


def _measure(items, analyses, config: EvalConfig, ws: Workspace, subject: str | None):
    """One row per output image (likeness and skin shift against its subject's references) and the summary."""
    refs_by_subject, ref_skin = _references(items, analyses, config, ws, subject)
    backend = backend_for(config.face_backend)
    rows = [_row(item, a, config, backend, refs_by_subject.get(str(item.meta["subject_id"])),
                 ref_skin.get(str(item.meta["subject_id"])))
            for item, a in zip(items, analyses, strict=True) if item.output]  # fmt: skip
    table = pd.DataFrame(rows)
    for col in ("face_found", "verified"):
        if col in table:
            table[col] = table[col].astype(float)
    summary: dict[str, Any] = {"n_images": len(table), "n_references": sum(it.reference for it in items),
                               "n_holdout": sum(it.holdout for it in items)}  # fmt: skip
    if "likeness" in config.metrics:
        summary["likeness"] = _likeness_summary(table, refs_by_subject, config, backend)
    if "skin" in config.metrics:
        summary["skin"] = _skin_summary(table, ref_skin, config)
    return table, summary


def _references(items, analyses, config: EvalConfig, ws: Workspace, subject: str | None):
    """Each subject's likeness references (intake's embeddings when present) and pooled reference skin."""
    refs_by_subject: dict[str, References | None] = {}
    ref_skin: dict[str, Any] = {}
    for sid in sorted({str(it.meta["subject_id"]) for it in items}):
        ref_idx = [i for i, it in enumerate(items) if it.reference and str(it.meta["subject_id"]) == sid]
        found = [i for i in ref_idx if analyses[i].face_found]
        refs = (
            read_intake_embeddings(ws, subject, config.face_backend) if subject and sid == subject else None
        )
        if refs is None and found and "likeness" in config.metrics:
            refs = references_from_embeddings([analyses[i].embedding for i in found],
                                              [items[i].id for i in found], config.face_backend)  # fmt: skip
        refs_by_subject[sid] = refs
        ref_skin[sid] = pooled_skin([analyses[i].skin for i in found]) if found else None
    return refs_by_subject, ref_skin


def _row(item: Item, a: FaceAnalysis, config: EvalConfig, backend, refs, reference_skin) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": item.id,
        "file": str(item.path) if item.path else "",
        **_scalar_meta(item.meta),
    }
    row.update(face_found=a.face_found, n_faces=a.n_faces, face_px=a.face_px, sharpness=a.sharpness,
               exposure=a.exposure, clipped=a.clipped)  # fmt: skip
    if "likeness" in config.metrics and refs is not None:
        row.update(likeness(a.embedding, refs, backend))
    if a.skin is not None:
        row.update(skin_L=a.skin.L, skin_a=a.skin.a, skin_b=a.skin.b, skin_hue=a.skin.hue,
                   skin_ita=a.skin.ita, mst_measured=a.skin.mst)  # fmt: skip
        if reference_skin is not None:
            shift = skin_shift(a.skin, reference_skin)
            row.update(shift, abs_delta_L=abs(shift["delta_L"]), mst_abs_steps=abs(shift["mst_steps"]),
                       lighter=float(shift["delta_L"] > config.lightening_threshold))  # fmt: skip
        if _is_number(row.get("mst")):
            row["mst_abs_error"] = float(abs(a.skin.mst - int(row["mst"])))
    # The subject's own tone (label when the test set has one, else measured on their photos) as a group.
    if not _is_number(row.get("mst")) and reference_skin is not None:
        row["mst"] = reference_skin.mst
    if _is_number(row.get("mst")) and not row.get("mst_band"):
        row["mst_band"] = mst_band(int(row["mst"]))
    return row


def _likeness_summary(table: pd.DataFrame, refs_by_subject, config: EvalConfig, backend) -> dict[str, Any]:
    conf, kw = (
        config.confidence,
        {"n_boot": config.n_boot, "confidence": config.confidence, "seed": config.seed},
    )
    n_found = int(table["face_found"].sum()) if len(table) else 0
    like: dict[str, Any] = {
        "backend": config.face_backend, "metric": backend.metric, "threshold": backend.threshold,
        "references_from": {sid: (r.source if r else None) for sid, r in refs_by_subject.items()},
        "faces_found": n_found, "faces_missing": len(table) - n_found,  # missing faces count as failures
        "face_found_rate": wilson_interval(n_found, len(table), conf),
    }  # fmt: skip
    if "verified" in table:
        like["verification_rate"] = wilson_interval(int(table["verified"].sum()), len(table), conf)
        for col in ("centroid_distance", "nearest_distance", "median_distance", "pair_match_rate"):
            like[col] = bootstrap_ci(table[col], **kw)
    missing = [s for s, r in refs_by_subject.items() if r is None]
    if missing:
        like["no_references"] = missing
    # What the report prints in place of an estimate that has no values (never "nan").
    if n_found == 0:
        like["why_missing"] = "no face found in any image"
    elif len(missing) == len(refs_by_subject):
        like["why_missing"] = "no reference photo with a face (nothing to compare against)"
    return like


def _skin_summary(table: pd.DataFrame, ref_skin, config: EvalConfig) -> dict[str, Any]:
    conf, kw = (
        config.confidence,
        {"n_boot": config.n_boot, "confidence": config.confidence, "seed": config.seed},
    )
    skin: dict[str, Any] = {
        "reference": {s: (c.to_dict() if c else None) for s, c in ref_skin.items()},
        "n_measured": int(table["skin_L"].notna().sum()) if "skin_L" in table else 0,
        "lightening_threshold": config.lightening_threshold,
    }
    if "delta_L" in table:
        measured = table["delta_L"].dropna()
        lighter = int((measured > config.lightening_threshold).sum())
        skin["lightening_rate"] = wilson_interval(lighter, len(measured), conf)
        for col in ("delta_L", "delta_hue", "delta_ita", "delta_e2000", "mst_steps", "mst_abs_steps"):
            skin[col] = bootstrap_ci(table[col], **kw)
    if "mst_abs_error" in table:
        errors = table["mst_abs_error"].dropna()
        skin["mst_abs_error"] = bootstrap_ci(errors, **kw)
        skin["mst_exact_rate"] = wilson_interval(int((errors == 0).sum()), len(errors), conf)
    if skin["n_measured"] == 0:
        skin["why_missing"] = "no skin measured (no face found in any image)"
    elif not any(ref_skin.values()):
        skin["why_missing"] = "no reference skin measured (no face found in the subject's photos)"
    return skin


def _scalar_meta(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if v is None or isinstance(v, (str, int, float, bool))}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not (
        isinstance(value, float) and math.isnan(value)
    )


def _run_detector(items, spectra, crops, config: EvalConfig) -> dict[str, Any]:
    if any("label" in it.meta for it in items):
        labels = [str(it.meta.get("label", "")).lower() for it in items]
        keep = [i for i, lab in enumerate(labels) if lab in ("real", "ai")]
        y = [int(labels[i] == "ai") for i in keep]
    else:  # subject mode: held-out photos are the real class (never the training photos), outputs the generated
        keep = [i for i, it in enumerate(items) if not it.reference]
        y = [0 if items[i].holdout else 1 for i in keep]
    groups = np.array([str(items[i].meta.get("subject_id")) for i in keep])
    n_generated = int(sum(y))
    reason = _detect.too_few_reason(len(y) - n_generated, n_generated)
    if reason and "label" not in items[0].meta and len(y) == n_generated:
        reason += ("; the real side is the subject's held-out photos, never the training photos: run intake with "
                   "holdout=N to keep some out of training")  # fmt: skip
    if reason:  # no number at all: the flat detect.* metrics stay absent, and a threshold on them fails
        return {"too_few": reason, "n_real": len(y) - n_generated, "n_generated": n_generated,
                "min_per_side": _detect.MIN_PER_SIDE}  # fmt: skip
    try:
        if config.detector == "spectral":
            features = np.stack([spectra[i] for i in keep]) if keep else np.zeros((0, 1))
        else:
            model = _detect.load_clip_vision(config.clip_model)
            features = _detect.clip_features([crops[i] for i in keep], model)
        result = _detect.fit_and_score(
            features, y, [items[i].id for i in keep], backend=config.detector,
            groups=groups if len(set(groups)) >= 4 else None, test_size=config.detector_test_size,
            n_boot=config.n_boot, confidence=config.confidence, seed=config.seed,
        )  # fmt: skip
    except WorkbenchError as exc:
        return {"skipped": str(exc)}
    return result.summary()


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
