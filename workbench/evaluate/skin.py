"""Skin-tone measurement: a landmark skin mask, robust CIELAB colour, ITA, hue and the Monk Skin Tone swatch.

The mask covers both cheeks, the nose bridge and a forehead band, built from the iBUG 68 landmarks; eyes,
brows, lips (and, by keeping the forehead band low, most hair) are left out. Colour conversions go through
colour-science (sRGB D65 -> XYZ -> CIELAB), never hand-written formulas. The robust colour is the
per-channel median of the mask's pixels after dropping colour outliers (hat brims, glasses rims, hair) and
then the darkest and brightest 10% by L* (shadows, nostrils, specular highlights); ``robust_lab_pixels``
states the rules exactly. Raw colour moves with the light; ``illumination`` measures the same statistic
after a per-face white balance.

The subject's own photos and the generated images go through this same code, so a shift between them is
a shift in the images, not in the measurement.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import colour
import cv2
import numpy as np

# Monk Skin Tone scale, the published sRGB hex values of swatches 1 (lightest) to 10 (darkest)
# (Monk 2019; Google, https://skintone.google/get-started).
MST_HEX = (
    "#f6ede4", "#f3e7db", "#f7ead0", "#eadaba", "#d7bd96",
    "#a07e56", "#825c43", "#604134", "#3a312a", "#292420",
)  # fmt: skip
# Bands used for per-group reporting (a reporting convention of this workbench, not part of the scale).
MST_BANDS = {"MST 1-3": range(1, 4), "MST 4-6": range(4, 7), "MST 7-10": range(7, 11)}
# Chardon's ITA skin categories (degrees) mapped to Fitzpatrick types as in Del Bino & Bernerd 2013.
ITA_FITZPATRICK = ((55.0, "I"), (41.0, "II"), (28.0, "III"), (10.0, "IV"), (-30.0, "V"), (-1e9, "VI"))
TRIM = (10.0, 90.0)  # L* percentiles kept for the robust colour


def hex_to_rgb(hex_value: str) -> np.ndarray:
    h = hex_value.lstrip("#")
    return np.array([int(h[i : i + 2], 16) for i in (0, 2, 4)], dtype=np.uint8)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (uint8 0-255 or float 0-1, shape (..., 3)) to CIELAB (D65, 2 degree observer)."""
    rgb = np.asarray(rgb)
    rgb = rgb.astype(np.float64) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float64)
    return colour.XYZ_to_Lab(colour.sRGB_to_XYZ(rgb))


def lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """CIELAB to sRGB uint8, out-of-gamut values clipped."""
    rgb = colour.XYZ_to_sRGB(colour.Lab_to_XYZ(np.asarray(lab, dtype=np.float64)))
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)


MST_LAB = srgb_to_lab(np.stack([hex_to_rgb(h) for h in MST_HEX]))


def ita(lab: np.ndarray) -> np.ndarray | float:
    """Individual Typology Angle in degrees: atan((L* - 50) / b*)."""
    lab = np.asarray(lab, dtype=float)
    return np.degrees(np.arctan2(lab[..., 0] - 50.0, lab[..., 2]))


def hue_angle(lab: np.ndarray) -> np.ndarray | float:
    """CIELAB hue angle h*ab in degrees, 0-360."""
    return colour.Lab_to_LCHab(np.asarray(lab, dtype=float))[..., 2]


def delta_e2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray | float:
    return colour.delta_E(np.asarray(lab1, dtype=float), np.asarray(lab2, dtype=float), method="CIE 2000")


def nearest_mst(lab: np.ndarray) -> tuple[int, float]:
    """The closest Monk swatch (1-10) by CIEDE2000 and the distance to it."""
    d = delta_e2000(np.broadcast_to(np.asarray(lab, dtype=float), MST_LAB.shape), MST_LAB)
    i = int(np.argmin(d))
    return i + 1, float(d[i])


def mst_band(mst: int | None) -> str | None:
    if mst is None or (isinstance(mst, float) and np.isnan(mst)):
        return None
    return next(name for name, levels in MST_BANDS.items() if int(mst) in levels)


def fitzpatrick_from_ita(ita_degrees: float) -> str:
    return next(kind for bound, kind in ITA_FITZPATRICK if ita_degrees > bound)


# -- the mask --------------------------------------------------------------------------------------------------
def _shrink(points: np.ndarray, factor: float) -> np.ndarray:
    """Pull a polygon toward its centroid (keeps it off jaw lines, beard edges and background)."""
    c = points.mean(0)
    return c + (points - c) * factor


def skin_regions(landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """Polygons (in pixels) of the measured skin: cheeks, nose, forehead; from iBUG 68 landmarks."""
    lm = np.asarray(landmarks, dtype=np.float64)
    eye_l, eye_r = lm[36:42].mean(0), lm[42:48].mean(0)
    iod = float(np.linalg.norm(eye_r - eye_l)) or 1.0  # inter-ocular distance: the face's scale
    down = np.array([0.0, 0.18 * iod])  # keep the cheek top below the lower eyelid
    cheek_l = np.vstack([lm[[1, 2, 3, 4]], lm[48], lm[31], lm[[40, 41, 36]] + down])
    cheek_r = np.vstack([lm[[15, 14, 13, 12]], lm[54], lm[35], lm[[47, 46, 45]] + down])
    nose = lm[[27, 35, 30, 31]]
    brows = lm[17:27]
    up = np.array([0.0, -0.12 * iod])
    top = np.array([0.0, -0.38 * iod])  # a low band: hair rarely reaches this close to the brows
    forehead = np.vstack([brows[[1, 2, 3, 4, 5, 6, 7, 8]] + up, brows[[8, 7, 6, 5, 4, 3, 2, 1]] + top])
    return {
        "cheek_left": _shrink(cheek_l, 0.85),
        "cheek_right": _shrink(cheek_r, 0.85),
        "nose": _shrink(nose, 0.8),
        "forehead": _shrink(forehead, 0.9),
    }


def excluded_regions(landmarks: np.ndarray) -> dict[str, np.ndarray]:
    lm = np.asarray(landmarks, dtype=np.float64)
    return {
        "eye_left": lm[36:42], "eye_right": lm[42:48], "brow_left": lm[17:22], "brow_right": lm[22:27],
        "lips": lm[48:60], "nostrils": lm[31:36],
    }  # fmt: skip


def _fill(mask: np.ndarray, polygon: np.ndarray, value: int, hull: bool = False) -> None:
    pts = np.round(polygon).astype(np.int32)
    if hull:
        pts = cv2.convexHull(pts)
    cv2.fillPoly(mask, [pts.reshape(-1, 1, 2)], value)


def skin_mask(landmarks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Boolean (H, W) mask of measurable skin: cheeks + nose + forehead, minus dilated eyes/brows/lips."""
    mask = np.zeros(shape[:2], np.uint8)
    for polygon in skin_regions(landmarks).values():
        _fill(mask, polygon, 1)
    lm = np.asarray(landmarks, dtype=np.float64)
    iod = float(np.linalg.norm(lm[42:48].mean(0) - lm[36:42].mean(0))) or 1.0
    cut = np.zeros_like(mask)
    for polygon in excluded_regions(landmarks).values():
        _fill(cut, polygon, 1, hull=True)
    k = max(3, int(0.12 * iod) | 1)
    cut = cv2.dilate(cut, np.ones((k, k), np.uint8))
    return (mask > 0) & (cut == 0)


# -- the measurement -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SkinColour:
    """Robust skin colour of one face (or the subject's set of photos)."""

    L: float
    a: float
    b: float
    chroma: float
    hue: float
    ita: float
    mst: int
    mst_delta_e: float
    n_pixels: int

    @property
    def lab(self) -> np.ndarray:
        return np.array([self.L, self.a, self.b])

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def skin_colour_from_lab(lab: np.ndarray, n_pixels: int = 0) -> SkinColour:
    lab = np.asarray(lab, dtype=float)
    lch = colour.Lab_to_LCHab(lab)
    mst, d = nearest_mst(lab)
    return SkinColour(
        float(lab[0]),
        float(lab[1]),
        float(lab[2]),
        float(lch[1]),
        float(lch[2]),
        float(ita(lab)),
        mst,
        d,
        n_pixels,
    )


def robust_lab_pixels(pixels: np.ndarray) -> tuple[np.ndarray, int]:
    """Median CIELAB of skin pixels (N, 3) after dropping colour outliers, shadows and highlights; and how
    many pixels it used.

    The exclusion, in this order (every threshold is relative to this face's own pixels, so it reads alike on
    every skin tone and exposure):

    1. Colour outliers (a hat brim, a glasses rim, strands of hair): pixels whose CIELAB distance to the
       per-channel median exceeds the median distance plus 3 robust SDs (1.4826 * MAD) of the distances.
    2. Shadow: of the rest, pixels below the 10th percentile of L* (nostril and jaw shade, pores in shade).
    3. Specular: of the rest, pixels above the 90th percentile of L* (highlights on nose, forehead, cheeks).

    What this does not remove, measured on the bundled astronaut (512 px): skin in broad shade (a face lit
    from one side; robust SD of L* ~15 there), which is skin, not an outlier; and strong highlights covering
    more than ~10% of the mask (10% of it turned into near-white glints reads +3.4 L*). The white-balanced
    measurement drops highlights by their colour first (``illumination.specular_mask``); the raw one does not,
    because under a coloured light a highlight is not grey and the skin-tone ladder's labels are defined by
    these rules. Absolute clipping rules ("drop pixels with a channel >= 250") are not used: on very light or
    over-exposed skin they drop much genuine skin (19% of the mask has all channels >= 250 on the bundled
    face recoloured to Monk 1) and bias it darker.
    """
    pixels = np.asarray(pixels, dtype=np.float64).reshape(-1, 3)
    if len(pixels) == 0:
        return np.full(3, np.nan), 0
    dist = np.linalg.norm(pixels - np.median(pixels, axis=0), axis=1)
    limit = np.median(dist) + 3 * 1.4826 * np.median(np.abs(dist - np.median(dist))) + 1e-6
    kept = pixels[dist <= limit]
    lo, hi = np.percentile(kept[:, 0], TRIM)
    kept = kept[(kept[:, 0] >= lo) & (kept[:, 0] <= hi)]
    return np.median(kept, axis=0), int(len(kept))


def robust_lab(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Robust CIELAB of the mask's pixels (``robust_lab_pixels``): the statistic the ladder's labels use."""
    return robust_lab_pixels(srgb_to_lab(np.asarray(image)[mask]))


def measure_skin(image: np.ndarray, landmarks: np.ndarray, min_pixels: int = 50) -> SkinColour | None:
    """Skin colour of the face with these landmarks, or None when too little skin is visible."""
    mask = skin_mask(landmarks, np.asarray(image).shape)
    lab, n = robust_lab(image, mask)
    if n < min_pixels:
        return None
    return skin_colour_from_lab(lab, n)


def pooled_skin(colours: list[SkinColour | None]) -> SkinColour | None:
    """The subject's skin over several photos: the per-channel median of each photo's robust colour."""
    labs = [c.lab for c in colours if c is not None]
    if not labs:
        return None
    return skin_colour_from_lab(np.median(np.stack(labs), axis=0), sum(c.n_pixels for c in colours if c))


def skin_shift(image: SkinColour, reference: SkinColour) -> dict[str, float]:
    """How an image's skin differs from the reference: + dL = lighter; + mst_steps = darker swatch."""
    dh = (image.hue - reference.hue + 180.0) % 360.0 - 180.0
    return {
        "delta_L": image.L - reference.L,
        "delta_hue": dh,
        "delta_ita": image.ita - reference.ita,
        "delta_e2000": float(delta_e2000(image.lab, reference.lab)),
        "mst_steps": float(image.mst - reference.mst),
    }


def lightening_rate(delta_l: list[float] | np.ndarray, threshold: float) -> float:
    """Share of measured outputs whose skin is lighter than the reference by more than ``threshold`` L*."""
    d = np.asarray(delta_l, dtype=float)
    d = d[~np.isnan(d)]
    return float(np.mean(d > threshold)) if d.size else float("nan")
