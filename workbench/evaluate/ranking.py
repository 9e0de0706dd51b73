"""Rank a batch so the usable 5-15 of 40-100 generated headshots come first.

An image is *usable* when a face was found, it is verified as the subject, the face is sharp enough, well
exposed and not clipped. Within usable and unusable alike, images are ordered by a score that is mostly
likeness (how far inside the verification threshold the face is) and partly quality (sharpness, exposure).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.evaluate.config import EvalConfig

WEIGHTS = {"likeness": 0.6, "sharpness": 0.2, "exposure": 0.2}


def rank(table: pd.DataFrame, config: EvalConfig, threshold: float | None) -> pd.DataFrame:
    """The per-image table with ``score``, ``usable``, ``reasons`` and ``rank`` (1 = best) added, best first."""
    t = table.copy()
    low, high = config.exposure_range
    sharp = t.get("sharpness", pd.Series(np.nan, index=t.index)).astype(float)
    expo = t.get("exposure", pd.Series(np.nan, index=t.index)).astype(float)
    clipped = t.get("clipped", pd.Series(np.nan, index=t.index)).astype(float)
    if "median_distance" in t and threshold:
        # 1 at distance 0, 0 at the threshold, negative beyond it.
        like = 1.0 - t["median_distance"].astype(float) / threshold
    else:
        like = pd.Series(0.0, index=t.index)
    sharp_term = np.clip(sharp / (2 * config.min_sharpness), 0, 1)
    mid, half = (low + high) / 2, (high - low) / 2
    expo_term = np.clip(1 - np.abs(expo - mid) / half, 0, 1)
    score = (
        WEIGHTS["likeness"] * like.fillna(-1.0)
        + WEIGHTS["sharpness"] * sharp_term.fillna(0.0)
        + WEIGHTS["exposure"] * expo_term.fillna(0.0)
    )
    reasons = []
    for i in t.index:
        r = []
        if not bool(t.at[i, "face_found"]):
            r.append("no face found")
        else:
            if "verified" in t and not bool(t.at[i, "verified"]):
                r.append("does not look like the subject")
            if not sharp[i] >= config.min_sharpness:
                r.append("face not sharp")
            if not low <= expo[i] <= high:
                r.append("face under-exposed" if expo[i] < low else "face over-exposed")
            if clipped[i] > config.max_clipped:
                r.append("clipped highlights or shadows")
        reasons.append("; ".join(r))
    t["score"] = score.astype(float)
    t["reasons"] = reasons
    t["usable"] = t["reasons"] == ""
    t = t.sort_values(["usable", "score"], ascending=[False, False], kind="stable")
    t["rank"] = np.arange(1, len(t) + 1)
    return t


def usable_yield(ranked: pd.DataFrame) -> tuple[int, int]:
    return int(ranked["usable"].sum()), int(len(ranked))
