"""From per-image analyses to the per-image table and the headline summary.

Each subject's reference photos (the ones training saw) are pooled once into :class:`SubjectRefs`; every output
image becomes one row of measurements against its subject's references; each section of the summary turns the
table's columns into :class:`~workbench.evaluate.stats.Estimate` objects (Wilson for 0/1 rates, bootstrap for
means), or says why it has none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.evaluate.analyse import FaceAnalysis, backend_for
from workbench.evaluate.config import EvalConfig
from workbench.evaluate.geometry import RATIOS, YAW_LIMIT, geometry_report
from workbench.evaluate.illumination import CompensatedSkin, compensated_shift, pooled_compensated
from workbench.evaluate.items import Item
from workbench.evaluate.likeness import (
    COPY_PASTE_BOUNDS,
    References,
    copy_paste,
    likeness,
    rank_agreement,
    read_intake_embeddings,
    references_from_embeddings,
)
from workbench.evaluate.retouch import retouch_ratio
from workbench.evaluate.skin import SkinColour, mst_band, pooled_skin, skin_shift
from workbench.evaluate.stats import bootstrap_ci, wilson_interval
from workbench.workspace import Workspace

# An output whose skin texture index is below this share of the subject's own photos counts as smoothed: the
# lower end of the no-change band (skin tone alone moved the ratio by up to 12-15% on the bundled faces), and
# about what a 1 px Gaussian blur at the analysis scale does (0.78-0.84; tests/evaluate/test_eval_retouch.py).
SMOOTHED_BELOW = 0.85


@dataclass
class SubjectRefs:
    """What one subject's own photos give the measurements: pooled once, compared with every output."""

    likeness: References | None = None
    skin: SkinColour | None = None
    skin_compensated: CompensatedSkin | None = None
    photos: list[FaceAnalysis] = field(default_factory=list)  # reference photos with a face
    holdout: list[FaceAnalysis] = field(default_factory=list)  # held-out photos with a face
    likeness2: References | None = None  # the same photos in the second backend's embedding


@dataclass
class Backends:
    """The likeness backends of a run: the primary one, and the second one (None with ``info["skipped"]``)."""

    primary: Any
    second: Any = None
    info: dict[str, Any] = field(default_factory=dict)


def measure(items: list[Item], analyses: list[FaceAnalysis], config: EvalConfig, ws: Workspace,
            subject: str | None, second: tuple[Any, dict] = (None, {})) -> tuple[pd.DataFrame, dict[str, Any]]:  # fmt: skip
    """One row per output image (measured against its subject's references) and the summary."""
    refs = subject_references(items, analyses, config, ws, subject)
    backends = Backends(backend_for(config.face_backend), *second)
    rows = [image_row(item, a, config, backends, refs.get(str(item.meta["subject_id"])) or SubjectRefs())
            for item, a in zip(items, analyses, strict=True) if item.output]  # fmt: skip
    table = pd.DataFrame(rows)
    for col in ("face_found", "verified"):
        if col in table:
            table[col] = table[col].astype(float)
    summary: dict[str, Any] = {"n_images": len(table), "n_references": sum(it.reference for it in items),
                               "n_holdout": sum(it.holdout for it in items)}  # fmt: skip
    if "likeness" in config.metrics:
        summary["likeness"] = likeness_summary(table, refs, config, backends.primary)
        summary["backends"] = backends_summary(table, config, backends)
        summary["copy_paste"] = copy_paste_summary(table, refs, config)
    if "skin" in config.metrics:
        summary["skin"] = skin_summary(table, refs, config)
    if "geometry" in config.metrics:
        summary["geometry"] = geometry_summary(table, config)
    if "retouch" in config.metrics:
        summary["retouch"] = retouch_summary(table, config)
    return table, summary


def subject_references(items: list[Item], analyses: list[FaceAnalysis], config: EvalConfig, ws: Workspace,
                       subject: str | None) -> dict[str, SubjectRefs]:  # fmt: skip
    """Each subject's likeness references (intake's embeddings when present), pooled skin and photos."""
    out: dict[str, SubjectRefs] = {}
    for sid in sorted({str(it.meta["subject_id"]) for it in items}):
        mine = [i for i, it in enumerate(items) if str(it.meta["subject_id"]) == sid]
        found = [i for i in mine if items[i].reference and analyses[i].face_found]
        refs = SubjectRefs(photos=[analyses[i] for i in found],
                           holdout=[analyses[i] for i in mine if items[i].holdout and analyses[i].face_found])  # fmt: skip
        if subject and sid == subject:
            refs.likeness = read_intake_embeddings(ws, subject, config.face_backend)
        if refs.likeness is None and found and "likeness" in config.metrics:
            refs.likeness = references_from_embeddings([analyses[i].embedding for i in found],
                                                        [items[i].id for i in found], config.face_backend)  # fmt: skip
        second = [analyses[i].embedding2 for i in found if analyses[i].embedding2 is not None]
        if second:
            refs.likeness2 = References(np.stack(second), [items[i].id for i in found], str(config.second_face_backend),
                                        "originals")  # fmt: skip
        if found:
            refs.skin = pooled_skin([analyses[i].skin for i in found])
            refs.skin_compensated = pooled_compensated([analyses[i].skin_compensated for i in found])
        out[sid] = refs
    return out


def image_row(item: Item, a: FaceAnalysis, config: EvalConfig, backends: Backends, refs: SubjectRefs) -> dict:
    row: dict[str, Any] = {"id": item.id, "file": str(item.path) if item.path else ""}
    row.update(_scalar_meta(item.meta))
    row.update(face_found=a.face_found, n_faces=a.n_faces, face_px=a.face_px, sharpness=a.sharpness,
               exposure=a.exposure, clipped=a.clipped)  # fmt: skip
    if "likeness" in config.metrics:
        row.update(_likeness_columns(a, refs, backends))
    ref_geometry = [p.geometry_landmarks for p in refs.photos if p.geometry_landmarks is not None]
    if "geometry" in config.metrics and a.geometry_landmarks is not None and ref_geometry:
        row.update(geometry_report(a.geometry_landmarks, ref_geometry))
    if "retouch" in config.metrics and refs.photos:
        row.update(
            retouch=a.retouch, retouch_ratio=retouch_ratio(a.retouch, [p.retouch for p in refs.photos])
        )
    if a.skin is not None:
        row.update(_skin_columns(a, refs, config))
        if _is_number(row.get("mst")):
            row["mst_abs_error"] = float(abs(a.skin.mst - int(row["mst"])))
    # The subject's own tone (label when the test set has one, else measured on their photos) as a group.
    if not _is_number(row.get("mst")) and refs.skin is not None:
        row["mst"] = refs.skin.mst
    if _is_number(row.get("mst")) and not row.get("mst_band"):
        row["mst_band"] = mst_band(int(row["mst"]))
    return row


def _likeness_columns(a: FaceAnalysis, refs: SubjectRefs, backends: Backends) -> dict[str, Any]:
    """Distances to the subject in the primary embedding; the second backend's (``b2_*``); the copy-paste
    comparison (nearest training photo vs nearest held-out photo, primary embedding)."""
    cols: dict[str, Any] = {}
    if refs.likeness is not None:
        cols.update(likeness(a.embedding, refs.likeness, backends.primary))
    if backends.second is not None and refs.likeness2 is not None:
        second = likeness(a.embedding2, refs.likeness2, backends.second)
        cols.update({f"b2_{k}": v for k, v in second.items()})
    train = [p.embedding for p in refs.photos if p.embedding is not None]
    held = [p.embedding for p in refs.holdout if p.embedding is not None]
    if train and held and backends.primary.name in COPY_PASTE_BOUNDS:
        found = copy_paste(a.embedding, np.stack(train), np.stack(held), backends.primary)
        # No face: no verdict (NaN), so the image leaves the rate's denominator instead of counting as "not copied".
        copied = float(found["copied"]) if math.isfinite(found["gap"]) else float("nan")
        cols.update({f"cp_{k}": v for k, v in found.items() if k != "copied"}, copied=copied)
    return cols


def _skin_columns(a: FaceAnalysis, refs: SubjectRefs, config: EvalConfig) -> dict[str, Any]:
    """Raw skin colour and its shift; the same after each face's white balance (``comp_*``)."""
    cols: dict[str, Any] = dict(skin_L=a.skin.L, skin_a=a.skin.a, skin_b=a.skin.b, skin_hue=a.skin.hue,
                                skin_ita=a.skin.ita, mst_measured=a.skin.mst)  # fmt: skip
    if refs.skin is not None:
        shift = skin_shift(a.skin, refs.skin)
        cols.update(shift, abs_delta_L=abs(shift["delta_L"]), mst_abs_steps=abs(shift["mst_steps"]),
                    lighter=float(shift["delta_L"] > config.lightening_threshold))  # fmt: skip
    comp = a.skin_compensated
    if comp is not None:
        cols.update(comp_skin_L=comp.colour.L, comp_skin_ita=comp.colour.ita, white_method=comp.method)
        if refs.skin_compensated is not None:
            shift = compensated_shift(comp, refs.skin_compensated)
            cols.update(shift, comp_abs_delta_L=abs(float(shift["comp_delta_L"])),
                        comp_lighter=float(float(shift["comp_delta_L"]) > config.lightening_threshold))  # fmt: skip
    return cols


def _kw(config: EvalConfig) -> dict[str, Any]:
    return {"n_boot": config.n_boot, "confidence": config.confidence, "seed": config.seed}


def likeness_summary(table: pd.DataFrame, refs: dict[str, SubjectRefs], config: EvalConfig, backend) -> dict:
    conf = config.confidence
    n_found = int(table["face_found"].sum()) if len(table) else 0
    like: dict[str, Any] = {
        "backend": config.face_backend, "metric": backend.metric, "threshold": backend.threshold,
        "references_from": {sid: (r.likeness.source if r.likeness else None) for sid, r in refs.items()},
        "faces_found": n_found, "faces_missing": len(table) - n_found,  # missing faces count as failures
        "face_found_rate": wilson_interval(n_found, len(table), conf),
    }  # fmt: skip
    if "verified" in table:
        like["verification_rate"] = wilson_interval(int(table["verified"].sum()), len(table), conf)
        for col in ("centroid_distance", "nearest_distance", "median_distance", "pair_match_rate"):
            like[col] = bootstrap_ci(table[col], **_kw(config))
    missing = [s for s, r in refs.items() if r.likeness is None]
    if missing:
        like["no_references"] = missing
    # What the report prints in place of an estimate that has no values (never "nan").
    if n_found == 0:
        like["why_missing"] = "no face found in any image"
    elif len(missing) == len(refs):
        like["why_missing"] = "no reference photo with a face (nothing to compare against)"
    return like


def backends_summary(table: pd.DataFrame, config: EvalConfig, backends: Backends) -> dict[str, Any]:
    """The second backend's verification rate and distances, and its rank agreement with the primary one."""
    primary = backends.primary
    out: dict[str, Any] = {"primary": {"backend": primary.name, "metric": primary.metric,
                                       "threshold": primary.threshold}, "second": backends.info}  # fmt: skip
    if backends.second is None:
        out["skipped"] = f"second backend not used: {backends.info.get('skipped', 'none configured')}"
        return out
    if "b2_verified" not in table:
        out["why_missing"] = "no reference photo with a face in the second backend"
        return out
    measured = table["b2_median_distance"].notna()
    out["second_verification_rate"] = wilson_interval(int(table["b2_verified"].astype(float).sum()), len(table),
                                                      config.confidence)  # fmt: skip
    out["second_median_similarity"] = bootstrap_ci(table.loc[measured, "b2_median_distance"], **_kw(config))
    # Per image, both backends' median closeness to the subject's photos: do they rank the images alike?
    out["rank_agreement"] = rank_agreement(table["median_distance"], table["b2_median_distance"],
                                           metric_a=primary.metric, metric_b=backends.second.metric, **_kw(config))  # fmt: skip
    both = table[["verified", "b2_verified"]].dropna().astype(bool)
    out["verdict_agreement"] = wilson_interval(int((both["verified"] == both["b2_verified"]).sum()), len(both),
                                               config.confidence)  # fmt: skip
    return out


def copy_paste_summary(
    table: pd.DataFrame, refs: dict[str, SubjectRefs], config: EvalConfig
) -> dict[str, Any]:
    """Share of outputs that copy one training photo (closer to it than a re-save, and closer than to any
    held-out photo), and the mean gap; needs held-out photos of the subject."""
    if "copied" not in table:
        if not any(r.holdout for r in refs.values()):
            return {"skipped": "no held-out photos of the subject (run intake with holdout=N, or give the test set "
                               "role: holdout rows)"}  # fmt: skip
        return {"skipped": f"no calibrated copy-paste bounds for the {config.face_backend} backend"}
    measured = table["cp_gap"].notna()
    bounds = COPY_PASTE_BOUNDS[config.face_backend]
    why = {} if measured.any() else {"why_missing": "no face found in any image"}
    return {
        **why,
        "copy_rate": wilson_interval(int(table.loc[measured, "copied"].sum()), int(measured.sum()),
                                     config.confidence),  # fmt: skip
        "gap": bootstrap_ci(table.loc[measured, "cp_gap"], **_kw(config)),
        "train_nearest": bootstrap_ci(table.loc[measured, "cp_train_nearest"], **_kw(config)),
        "holdout_nearest": bootstrap_ci(table.loc[measured, "cp_holdout_nearest"], **_kw(config)),
        "near_duplicate_bound": bounds.near_duplicate, "margin": bounds.margin,
        "n_holdout": sum(len(r.holdout) for r in refs.values()),
    }  # fmt: skip


def geometry_summary(table: pd.DataFrame, config: EvalConfig) -> dict[str, Any]:
    """Percent change of each facial ratio vs the subject's photos, over frontal faces (turned ones are marked)."""
    if "geometry_index" not in table:
        return {"why_missing": "no face with landmarks in the images or the subject's photos"}
    frontal = table["frontal"].fillna(0).astype(bool)
    out: dict[str, Any] = {"n_frontal": int(frontal.sum()), "n_turned": int((~frontal).sum()),
                           "yaw_limit": YAW_LIMIT}  # fmt: skip
    out["geometry_index"] = bootstrap_ci(table.loc[frontal, "geometry_index"], **_kw(config))
    for name in RATIOS:
        out[f"{name}_pct"] = bootstrap_ci(table.loc[frontal, f"{name}_pct"], **_kw(config))
    if not frontal.any():
        out["why_missing"] = "no frontal face to compare (every face turned beyond the yaw limit)"
    return out


def retouch_summary(table: pd.DataFrame, config: EvalConfig) -> dict[str, Any]:
    """Skin texture of the outputs relative to the subject's photos (< 1 = smoother), and the share smoothed."""
    if "retouch_ratio" not in table:
        return {"why_missing": "no face with landmarks in the images or the subject's photos"}
    ratios = table["retouch_ratio"].dropna()
    out: dict[str, Any] = {"smoothing_threshold": SMOOTHED_BELOW}
    out["retouch_ratio"] = bootstrap_ci(ratios, **_kw(config))
    out["smoothed_rate"] = wilson_interval(
        int((ratios < SMOOTHED_BELOW).sum()), len(ratios), config.confidence
    )
    if ratios.empty:
        out["why_missing"] = (
            "no face large enough to measure skin texture (eyes < 36 px apart) or no reference"
        )
    return out


def skin_summary(table: pd.DataFrame, refs: dict[str, SubjectRefs], config: EvalConfig) -> dict[str, Any]:
    conf = config.confidence
    skin: dict[str, Any] = {
        "reference": {s: (r.skin.to_dict() if r.skin else None) for s, r in refs.items()},
        "n_measured": int(table["skin_L"].notna().sum()) if "skin_L" in table else 0,
        "lightening_threshold": config.lightening_threshold,
    }
    for prefix in ("", "comp_"):
        if f"{prefix}delta_L" not in table:
            continue
        measured = table[f"{prefix}delta_L"].dropna()
        lighter = int((measured > config.lightening_threshold).sum())
        skin[f"{prefix}lightening_rate"] = wilson_interval(lighter, len(measured), conf)
        for col in ("delta_L", "delta_hue", "delta_ita", "delta_e2000", "mst_steps"):
            skin[f"{prefix}{col}"] = bootstrap_ci(table[f"{prefix}{col}"], **_kw(config))
    if "mst_abs_steps" in table:
        skin["mst_abs_steps"] = bootstrap_ci(table["mst_abs_steps"], **_kw(config))
    if "white_method" in table:
        skin["white_methods"] = {str(k): int(v) for k, v in table["white_method"].value_counts().items()}
    if "mst_abs_error" in table:
        errors = table["mst_abs_error"].dropna()
        skin["mst_abs_error"] = bootstrap_ci(errors, **_kw(config))
        skin["mst_exact_rate"] = wilson_interval(int((errors == 0).sum()), len(errors), conf)
    if skin["n_measured"] == 0:
        skin["why_missing"] = "no skin measured (no face found in any image)"
    elif not any(r.skin for r in refs.values()):
        skin["why_missing"] = "no reference skin measured (no face found in the subject's photos)"
    return skin


def _scalar_meta(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if v is None or isinstance(v, (str, int, float, bool))}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not (
        isinstance(value, float) and math.isnan(value)
    )
