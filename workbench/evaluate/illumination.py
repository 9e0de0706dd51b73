"""Illumination-compensated skin colour: the same robust skin measurement after a per-face white balance.

Raw skin colour (``skin.measure_skin``) moves with the light: a warm key light or a dimmer exposure changes
the measured L*, ITA and hue with the skin itself unchanged. This module measures the skin a second way,
beside the raw one, after undoing the light with a reference white found in the same face:

1. **Reference white.** The sclera (whites of the eyes, inside the landmark eye polygons 36-41 and 42-47) is
   close to a neutral reflector, so its colour in the photo is the colour of the light falling on the face
   (the sclera as a calibration target for skin colour: K. Choi, "The human sclera and pupil as the
   calibration targets", IS&T Electronic Imaging 2017). Sclera pixels are told from the iris, pupil, lashes
   and lid by tests that do not depend on the light (``sclera_mask``). When fewer than
   ``min_white_pixels`` sclera pixels are found (closed or squinting eyes, small faces, glare on glasses)
   the white is the grey-world estimate (Buchsbaum 1980, "A spatial processor model for object colour
   perception") over the whole image minus the face: the face is left out because grey-world over the skin
   would cancel the very skin colour being measured. It is the weaker estimate: it assumes the backdrop,
   clothes and hair average to grey, so a coloured backdrop (or a changed one between two photos) moves it
   while the sclera estimate does not; and it gives the light's colour but not its level, so it does not
   normalise exposure. Which estimate was used, and on how many pixels, is returned with the result.
2. **Compensation.** A von Kries diagonal transform (von Kries 1902): in linear sRGB each channel is
   multiplied by ``REFERENCE_WHITE / white``, which maps the estimated white to one fixed neutral white and
   so also normalises exposure. Under the diagonal model of a change of light (each channel scaled) the
   transform undoes the light exactly.
3. **Measurement.** Specular highlights are dropped by their colour (``specular_mask``: brighter than the
   skin median, bluer than it by a light-independent margin, and far from it); then the compensated pixels
   of the same landmark skin mask go through the same robust colour as the raw measurement
   (``skin.robust_lab_pixels``: colour outliers, then the shadow tail below the 10th and the highlight tail
   above the 90th percentile of L*), so compensated and raw numbers differ by the light and the highlights.

Method context: "True to Tone? Quantifying Skin Tone Fidelity and Bias in Photographic-to-Virtual Human
Pipelines" (Schneider et al., 2026, arXiv 2604.02055) reports skin tone with ITA and CIELAB ΔE with and
without lighting isolation (there a learned one, TRUST), and finds larger errors for darker skin; here the
lighting isolation is a measured reference white instead of a learned model, so it runs offline and its
assumptions can be stated.

Compensated figures are on the scale of ``REFERENCE_WHITE`` (a neutral of L* 80, near where the bright part
of a well-exposed sclera falls in the bundled portraits: 80.5 on the astronaut), so for a well-lit photo they
stay close to the raw ones; what is read is the difference between compensated measurements (an output vs the
subject's photos), as for the raw ones. A real sclera is slightly yellow (a* 4, b* 6 on the astronaut), so
mapping it to a neutral makes compensated skin a little less yellow than raw (b* 14.6 vs 19.4 there): an
offset that cancels in differences. Limit: an edit that brightens the eye whites along with the skin reads
partly as a brighter light, so the compensated figure under-reports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import colour
import cv2
import numpy as np

from workbench.errors import WorkbenchError
from workbench.evaluate.skin import (
    SkinColour,
    pooled_skin,
    robust_lab_pixels,
    skin_colour_from_lab,
    skin_mask,
    skin_shift,
    srgb_to_lab,
)  # fmt: skip
from workbench.faces.base import eye_aspect

# The neutral every estimated white is mapped to: linear sRGB grey of L* 80 (Y = 0.567). A convention that
# fixes the scale of compensated figures; chosen near a well-exposed sclera so they stay close to raw ones.
REFERENCE_WHITE_L = 80.0
REFERENCE_WHITE = np.full(3, float(colour.Lab_to_XYZ(np.array([REFERENCE_WHITE_L, 0.0, 0.0]))[1]))
# An eye whose aspect ratio (Soukupova & Cech 2016, "Real-Time Eye Blink Detection using Facial Landmarks")
# is below this is closed: no sclera is visible between the lids.
CLOSED_EYE_RATIO = 0.15
# A sclera pixel's log(B/R) must exceed the skin's by this much (the skin is redder than the eye white).
SCLERA_BLUE_MARGIN = 0.2
# ... and its luminance must reach this share of the brightest sclera candidates (drops iris, pupil, lashes).
SCLERA_BRIGHT_SHARE = 0.6
# A skin pixel whose log(B/R) exceeds the skin median's by this much, and is brighter, is a highlight.
SPECULAR_BLUE_MARGIN = 0.3
SPECULAR_DISTANCE = 15.0  # ... and lies this many ΔE*ab from the white-balanced skin median
LUMINANCE = np.array([0.2126, 0.7152, 0.0722])  # Y of linear sRGB (IEC 61966-2-1)
CLIPPED = 250  # an 8-bit channel at or above this is (near) clipped: its true value is unknown


@dataclass(frozen=True)
class WhiteEstimate:
    """The colour of the light on one face: linear sRGB of a neutral reflector there, and how it was found."""

    rgb: np.ndarray  # linear sRGB, shape (3,)
    method: Literal["sclera", "grey_world"]
    n_pixels: int


@dataclass(frozen=True)
class CompensatedSkin:
    """Skin colour of one face after mapping its estimated white to ``REFERENCE_WHITE``."""

    colour: SkinColour
    method: Literal["sclera", "grey_world", "mixed"]  # "mixed": pooled over photos whose methods differ
    n_white_pixels: int
    white_rgb: tuple[float, float, float]  # the estimated white, linear sRGB
    gains: tuple[float, float, float]  # the von Kries gains applied to linear R, G, B
    clipped_share: float  # share of the skin mask with a clipped channel (> ~0.1: the highlight trim is full)

    def to_dict(self) -> dict[str, float | int | str]:
        out: dict[str, float | int | str] = {f"comp_{k}": v for k, v in self.colour.to_dict().items()}
        out.update(
            white_method=self.method, n_white_pixels=self.n_white_pixels, clipped_share=self.clipped_share
        )
        out.update({f"white_{c}": v for c, v in zip("rgb", self.white_rgb, strict=True)})
        return out


def to_linear(image: np.ndarray) -> np.ndarray:
    """8-bit sRGB to linear sRGB floats in 0-1 (the IEC 61966-2-1 decoding, via colour-science)."""
    return colour.cctf_decoding(np.asarray(image, dtype=np.float64) / 255.0, function="sRGB")


def linear_to_lab(linear: np.ndarray) -> np.ndarray:
    """Linear sRGB (any scale; values above 1 are kept) to CIELAB D65, as ``skin.srgb_to_lab``."""
    return srgb_to_lab(colour.cctf_encoding(np.asarray(linear, dtype=np.float64), function="sRGB"))


def _check(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image, lm = np.asarray(image), np.asarray(landmarks, dtype=np.float64)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise WorkbenchError(
            f"Expected an 8-bit RGB image (H, W, 3) uint8, got {image.dtype} {image.shape}: convert it with "
            "workbench.faces.as_rgb_uint8 first."
        )
    if lm.shape != (68, 2):
        raise WorkbenchError(
            f"Expected 68 iBUG landmarks of shape (68, 2), got {lm.shape}: use the dlib backend's landmarks."
        )
    return image, lm


def sclera_mask(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Boolean (H, W) mask of sclera pixels: bright, skin-unlike, unclipped pixels inside the open eyes.

    Inside each open eye's polygon (lid landmarks pulled 15% toward the centre, off lashes and lid margins;
    an eye with aspect ratio below ``CLOSED_EYE_RATIO`` is shut and skipped), a pixel is sclera when

    (a) no channel is clipped (>= 250: glints on the cornea, whose true colour is unknown);
    (b) its log(B/R) exceeds the skin's (``_skin_log_blue_red``) by ``SCLERA_BLUE_MARGIN``: the
        light-independent form of "low chroma", because a diagonal change of light adds the same constant
        to every pixel's log(B/R), so the difference to the skin is the same under any light; this drops
        lid skin, the pink caruncle and brown irises;
    (c) its luminance reaches ``SCLERA_BRIGHT_SHARE`` of the 95th percentile of (a)+(b) pixels in both
        eyes: a ratio, so again independent of exposure; this drops the pupil, blue or grey irises and
        shaded lashes (the 95th percentile, not the maximum, so the few glint pixels that escape (a) in a
        dimmer photo do not set the bar).
    """
    image, lm = _check(image, landmarks)
    eyes = np.zeros(image.shape[:2], np.uint8)
    for eye in (lm[36:42], lm[42:48]):
        if eye_aspect(eye) >= CLOSED_EYE_RATIO:
            inner = eye.mean(0) + (eye - eye.mean(0)) * 0.85
            cv2.fillPoly(eyes, [np.round(inner).astype(np.int32).reshape(-1, 1, 2)], 1)
    mask = np.zeros(image.shape[:2], bool)
    skin = skin_mask(lm, image.shape)
    if not eyes.any() or not skin.any():
        return mask
    skin_blue = _skin_log_blue_red(to_linear(image[skin]))
    ys, xs = np.nonzero(eyes)
    pixels = image[ys, xs]
    linear = to_linear(pixels)
    blue = log_blue_red(linear)
    candidate = (pixels.max(1) < CLIPPED) & (blue >= skin_blue + SCLERA_BLUE_MARGIN)
    if not candidate.any():
        return mask
    luminance = linear @ LUMINANCE
    bright = luminance >= SCLERA_BRIGHT_SHARE * np.percentile(luminance[candidate], 95)
    keep = candidate & bright
    mask[ys[keep], xs[keep]] = True
    return mask


def log_blue_red(linear: np.ndarray) -> np.ndarray:
    """log(B / R) of linear RGB pixels (..., 3): a diagonal change of light adds one constant to it."""
    linear = np.asarray(linear, dtype=np.float64)
    return np.log(np.maximum(linear[..., 2], 1e-4) / np.maximum(linear[..., 0], 1e-4))


def _skin_log_blue_red(linear: np.ndarray) -> float:
    """The skin's log(B/R): the median over the mask less its brightest 20%, where highlights are (10% of the
    mask in glints would otherwise move a pale skin's median toward the sclera's)."""
    luminance = linear @ LUMINANCE
    return float(np.median(log_blue_red(linear[luminance <= np.percentile(luminance, 80)])))


def specular_mask(linear: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Boolean (N,) mask of highlights among linear-RGB skin pixels (N, 3); ``gains``: the white balance.

    Under the dichromatic reflection model (Shafer 1985, "Using color to separate reflection components") a
    skin pixel is diffuse skin colour plus some of the light's own colour reflected off the surface. Skin
    reflects red more than blue, so the reflected light is bluer than the skin by that same ratio under any
    light. A pixel is specular when it is (a) brighter than the mask's median luminance, (b) bluer: its
    log(B/R) exceeds the skin's (``_skin_log_blue_red``) by ``SPECULAR_BLUE_MARGIN``, a difference a
    diagonal change of light leaves alone, and (c) far: more than ``SPECULAR_DISTANCE`` ΔE*ab from the
    median skin colour after the white balance, beyond skin texture and soft shading (deep skin's texture
    alone has a robust SD of ~0.7 in log(B/R), so (b) on its own flags a quarter of its mask).
    Measured: 7-9% of the mask on the bundled face and its Monk 5/8/10 recolours (its shine on forehead and
    nose). On very pale skin (Monk 1-3) a highlight is hardly bluer or farther than the skin and is not
    found; the 90th-percentile trim is then all that removes it.
    """
    linear = np.asarray(linear, dtype=np.float64).reshape(-1, 3)
    if len(linear) == 0:
        return np.zeros(0, bool)
    luminance = linear @ LUMINANCE
    bluer = log_blue_red(linear) > _skin_log_blue_red(linear) + SPECULAR_BLUE_MARGIN
    lab = linear_to_lab(linear * np.asarray(gains, dtype=np.float64))
    far = np.linalg.norm(lab - np.median(lab, axis=0), axis=1) > SPECULAR_DISTANCE
    return (luminance > np.median(luminance)) & bluer & far


def background_mask(landmarks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Boolean (H, W) mask of the grey-world region: the whole image minus the face (jaw hull to the brows,
    raised by one inter-ocular distance for the forehead, then dilated by a quarter of it)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    iod = float(np.linalg.norm(lm[42:48].mean(0) - lm[36:42].mean(0))) or 1.0
    face = np.zeros(shape[:2], np.uint8)
    hull = cv2.convexHull(np.round(np.vstack([lm[0:17], lm[17:27] - [0.0, iod]])).astype(np.int32))
    cv2.fillPoly(face, [hull], 1)
    k = max(3, int(0.25 * iod) | 1)
    return cv2.dilate(face, np.ones((k, k), np.uint8)) == 0


def sclera_white(image: np.ndarray, landmarks: np.ndarray) -> WhiteEstimate:
    """The light's colour from the sclera: the mean linear RGB of ``sclera_mask`` (its pixels are already the
    bright, even part of the eye white, so a mean is steadier than a per-channel median on ~20-100 pixels)."""
    image, lm = _check(image, landmarks)
    sclera = sclera_mask(image, lm)
    n = int(sclera.sum())
    rgb = to_linear(image[sclera]).mean(0) if n else np.full(3, np.nan)
    return WhiteEstimate(rgb, "sclera", n)


def grey_world_white(image: np.ndarray, landmarks: np.ndarray) -> WhiteEstimate:
    """The light's colour by grey-world (Buchsbaum 1980) over ``background_mask``, at the reference luminance.

    Grey-world gives the light's chromaticity (the scene mean, assumed grey), not its level: the mean
    brightness is set by the backdrop as much as by the exposure. So the estimate is rescaled to the
    luminance of ``REFERENCE_WHITE``; compensation then removes the colour cast while the mean colour keeps
    its luminance (exposure is *not* normalised on this path). Unclipped, not-black pixels only.
    """
    image, lm = _check(image, landmarks)
    region = background_mask(lm, image.shape) & (image.max(-1) < CLIPPED) & (image.max(-1) > 5)
    n = int(region.sum())
    if n == 0:
        return WhiteEstimate(np.full(3, np.nan), "grey_world", 0)
    mean = to_linear(image[region]).mean(0)
    return WhiteEstimate(mean * REFERENCE_WHITE[1] / max(float(mean @ LUMINANCE), 1e-6), "grey_world", n)


def _check_method(method: str) -> None:
    if method not in ("auto", "sclera", "grey_world"):
        raise WorkbenchError(f"Unknown white method '{method}': choose auto, sclera or grey_world.")


def estimate_white(
    image: np.ndarray,
    landmarks: np.ndarray,
    min_white_pixels: int = 20,
    method: Literal["auto", "sclera", "grey_world"] = "auto",
) -> WhiteEstimate:
    """The light's colour on this face: ``"auto"`` takes the sclera when ``min_white_pixels`` of it are
    found, else grey-world; ``"sclera"`` or ``"grey_world"`` forces one (for comparisons). Raises when the
    chosen estimate has too few pixels.

    20 sclera pixels (both eyes) is what open eyes give at an inter-ocular distance of ~35 px. Small eyes
    are a few pixels high and their whites blur into lids and iris, so the estimate darkens with face size
    (the bundled face downscaled from 71 px inter-ocular: white luminance -5% at 57 px, -7% at 35-42 px,
    i.e. compensated L* +1.1 to +1.9; -16% at 28 px, where the sclera is no longer trusted).
    """
    _check_method(method)
    if method != "grey_world":
        white = sclera_white(image, landmarks)
        if white.n_pixels >= min_white_pixels:
            return white
        if method == "sclera":
            raise WorkbenchError(
                f"Only {white.n_pixels} sclera pixels (need {min_white_pixels}): the eyes are closed or too "
                "small; use method='auto' to fall back to grey-world."
            )
    white = grey_world_white(image, landmarks)
    if white.n_pixels < min_white_pixels:
        raise WorkbenchError(
            "Neither sclera nor background pixels to estimate the light from: pass the whole photo, not a "
            "tight face crop."
        )
    return white


def von_kries_gains(white_rgb: np.ndarray) -> np.ndarray:
    """Per-channel gains on linear sRGB that map ``white_rgb`` to ``REFERENCE_WHITE`` (von Kries 1902)."""
    white = np.asarray(white_rgb, dtype=np.float64)
    if white.shape != (3,) or not np.all(np.isfinite(white)) or white.min() <= 0:
        raise WorkbenchError(
            f"The estimated white {white} is not a positive RGB triple: the face is too dark."
        )
    return REFERENCE_WHITE / white


def measure_skin_compensated(
    image: np.ndarray,
    landmarks: np.ndarray,
    min_pixels: int = 50,
    min_white_pixels: int = 20,
    method: Literal["auto", "sclera", "grey_world"] = "auto",
) -> CompensatedSkin | None:
    """Skin colour after the per-face white balance, or None when too little skin is visible (as raw) or
    nothing to estimate the light from (``method`` as in ``estimate_white``).

    Same mask and robust statistic as ``skin.measure_skin``, after ``specular_mask`` drops highlights.
    Clipped pixels are not dropped for being clipped (on very light or over-exposed skin that would drop
    genuine skin and bias it darker; clipped highlights are bluer than the skin and go by the specular
    rule), but their share is returned, so a caller can flag a face whose skin is mostly blown.
    """
    image, lm = _check(image, landmarks)
    _check_method(method)
    mask = skin_mask(lm, image.shape)
    if mask.sum() < min_pixels:
        return None
    try:
        white = estimate_white(image, lm, min_white_pixels, method)
    except WorkbenchError:  # too few white pixels (a tight crop; closed eyes with method="sclera")
        return None
    gains = von_kries_gains(white.rgb)
    pixels = image[mask]
    linear = to_linear(pixels)
    specular = specular_mask(linear, gains)
    lab, n = robust_lab_pixels(linear_to_lab(linear[~specular] * gains))
    if n < min_pixels:
        return None
    return CompensatedSkin(
        colour=skin_colour_from_lab(lab, n),
        method=white.method,
        n_white_pixels=white.n_pixels,
        white_rgb=tuple(float(v) for v in white.rgb),
        gains=tuple(float(v) for v in gains),
        clipped_share=float(np.mean(pixels.max(1) >= CLIPPED)),
    )


def pooled_compensated(measured: list[CompensatedSkin | None]) -> CompensatedSkin | None:
    """The subject's compensated skin over several photos: ``skin.pooled_skin`` of the colours (per-channel
    median), the median white and gains, and the method (``"mixed"`` when the photos used different ones)."""
    found = [c for c in measured if c is not None]
    if not found:
        return None
    methods = {c.method for c in found}
    colour_ = pooled_skin([c.colour for c in found])
    return CompensatedSkin(
        colour=colour_,
        method=methods.pop() if len(methods) == 1 else "mixed",
        n_white_pixels=sum(c.n_white_pixels for c in found),
        white_rgb=tuple(float(v) for v in np.median([c.white_rgb for c in found], axis=0)),
        gains=tuple(float(v) for v in np.median([c.gains for c in found], axis=0)),
        clipped_share=float(np.median([c.clipped_share for c in found])),
    )


def compensated_shift(image: CompensatedSkin, reference: CompensatedSkin) -> dict[str, float | str]:
    """``skin.skin_shift`` of compensated colours (keys ``comp_delta_L``, ``comp_delta_ita``,
    ``comp_delta_e2000``, ``comp_delta_hue``, ``comp_mst_steps``), with both white methods.

    Report it beside the raw ``skin_shift``. A row whose methods differ compares a sclera white with a
    grey-world one (different exposure handling): count such rows and read them with care.
    """
    out: dict[str, float | str] = {
        f"comp_{k}": v for k, v in skin_shift(image.colour, reference.colour).items()
    }
    out["white_method"] = image.method
    out["reference_white_method"] = reference.method
    return out
