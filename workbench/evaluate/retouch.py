"""Retouching: how much smoother a face's skin is than in the subject's own photos.

AI headshot services are reported to smooth skin (pores, wrinkles and blemishes airbrushed away) as well as
lighten it. This module measures the fine texture left on the skin, on the same skin mask as the colour
measurement (``skin.skin_mask``), so that a generated image can be compared with the subject's references.

The measurement, and why each step is there:

1. **Scale.** The face is resampled to a fixed inter-ocular distance (``ANALYSIS_IOD`` px, eye centres) and
   rotated so the eyes are level, after a Gaussian anti-alias filter sized so that every image reaches the
   analysis scale with the same blur (``ANTIALIAS_SIGMA`` analysis px): a 4000 px phone photo and a 512 px
   generated image are then compared on the same grid. A face whose eyes are closer than
   ``MIN_NATIVE_SCALE * ANALYSIS_IOD`` px in the image would have to be upsampled (interpolation looks smooth),
   so it is not measured (NaN).
2. **Tone and exposure.** Work on CIELAB L* (via colour-science, as ``skin.py``), and report a *ratio of two
   bands* of the same skin: the fine band (L* minus its Gaussian low-pass at ``FINE_SIGMA``) over the coarse
   band (the low-pass at ``FINE_SIGMA`` minus that at ``COARSE_SIGMA``). Any local gain on the skin --
   an exposure change, which scales L* + 16 by the cube root of the gain, or a darker or lighter skin with the
   same relative texture -- scales both bands alike and cancels; a tone shift in L* cancels too, because both
   bands are zero-mean. Smoothing removes the fine band first, so the ratio falls. This is the spectral-slope
   idea of no-reference sharpness measures (e.g. S3, Vu, Phan & Chandler 2012), restricted to the skin.
3. **Only skin.** The low-passes are normalised convolutions (Knutsson & Westin 1993) over the mask, so eyes,
   nostrils, hair and background never leak into the bands; pixels whose (low-passed) colour is an outlier of
   the skin -- hat brims, glasses rims, hair strands; the rule of ``skin.robust_lab`` -- are removed from the
   mask first. Band energies are means of squares without their largest 5% (specular glints, stray hairs).

Measured on the bundled faces (tests/evaluate/test_eval_retouch.py): a known Gaussian blur of 0.5-1.5
analysis px (of the whole image or of the skin alone) is recovered within 0.25 px, and 2 px within 0.45 px;
JPEG q95, exposure and offset changes, mirroring and a lower resolution move the index by <= 3.5%; recolouring the same skin to MST 2 or MST 9 moves
it by up to ~12% (the ladder's recolour clips a third of the skin pixels at MST 2), about what a 0.5-0.7 px
blur does, so read ratios within 0.85-1.15 as unchanged.

Limits. The index has a floor: on any smooth patch both bands approach Laplacians and their ratio tends to
``FINE_SIGMA**2 / (COARSE_SIGMA**2 - FINE_SIGMA**2)`` (~0.1); sensitivity fades beyond a blur of about 2
analysis px, and ``equivalent_blur_sigma`` stops at ``CALIBRATION_SIGMAS[-1]``. Lighting changes the coarse
band (strong directional light deepens shading), so the index compares like with like best when references
are lit like the generated images. Blown-out skin has lost its texture and reads smooth. An image that was
upsampled before it got here reads smoother than its pixel size suggests (the check uses the eye distance
in the image as given).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from workbench.errors import WorkbenchError
from workbench.evaluate.skin import skin_mask, srgb_to_lab
from workbench.faces import as_rgb_uint8
from workbench.faces.base import as_landmarks68

ANALYSIS_IOD = 40.0  # px between eye centres at the analysis scale (~1.5 mm per px on an adult face)
ANTIALIAS_SIGMA = 0.6  # Gaussian blur every image carries at the analysis scale (analysis px)
NATIVE_SIGMA = 0.5  # blur assumed already present in any image (native px: optics, demosaicing, resizing)
FINE_SIGMA = 1.5  # fine band = L* - G(FINE_SIGMA)
COARSE_SIGMA = 5.0  # coarse band = G(FINE_SIGMA) - G(COARSE_SIGMA)
OUTLIER_SIGMA = 1.5  # colour outliers are judged on this low-pass, so texture itself never defines the mask
TRIM = 0.05  # share of the largest squared band values dropped (specular glints, stray hairs)
MIN_NATIVE_SCALE = 0.9  # faces below 0.9 * ANALYSIS_IOD px between the eyes are not measured
MIN_SKIN_PIXELS = 300  # at the analysis scale; the full mask of a frontal face has ~2000
CROP_IODS = 3.4  # side of the aligned crop, in inter-ocular distances (forehead band to chin)
# Blurs of the calibration grid (analysis px). No 0.25: a sampled Gaussian that narrow is the identity.
CALIBRATION_SIGMAS = (0.0, *(float(s) for s in np.arange(0.5, 3.01, 0.25)))


@dataclass(frozen=True)
class SkinTexture:
    """Fine texture of one face's skin at the analysis scale."""

    index: float  # fine-band RMS / coarse-band RMS (robust); lower = smoother
    fine: float  # robust RMS of the fine band, L* units
    coarse: float  # robust RMS of the coarse band, L* units
    n_pixels: int  # skin pixels measured at the analysis scale
    native_iod: float  # eye-centre distance in the image as given, px


def _check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    return as_landmarks68(landmarks, "Retouch measurement")


def inter_ocular(landmarks: np.ndarray) -> float:
    """Distance between the eye centres (mean of each eye's six landmarks), px."""
    lm = np.asarray(landmarks, dtype=np.float64)
    return float(np.linalg.norm(lm[42:48].mean(0) - lm[36:42].mean(0)))


def aligned_face(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The face resampled to ``ANALYSIS_IOD`` with level eyes: (RGB crop, landmarks in the crop)."""
    image, lm = as_rgb_uint8(image), _check_landmarks(landmarks)
    left, right = lm[36:42].mean(0), lm[42:48].mean(0)
    scale = ANALYSIS_IOD / max(inter_ocular(lm), 1e-6)
    angle = np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0]))
    side = int(round(CROP_IODS * ANALYSIS_IOD))
    centre = (left + right) / 2
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(angle), float(scale))
    matrix[:, 2] += np.array([side / 2, 0.38 * side]) - centre  # eyes 38% down: forehead band to chin fit
    # Anti-alias so that every image arrives with the same blur at the analysis scale (variances add); warpAffine
    # itself does not filter, and Lanczos keeps the sub-pixel shift from blurring more at some offsets than others.
    pre = np.sqrt(max(0.0, (ANTIALIAS_SIGMA / scale) ** 2 - NATIVE_SIGMA**2))
    source = cv2.GaussianBlur(image, (0, 0), pre) if pre > 0.2 else image
    crop = cv2.warpAffine(
        source, matrix, (side, side), flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT
    )
    return crop, lm @ matrix[:, :2].T + matrix[:, 2]


def _skin_pixels(lab: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The skin mask minus colour outliers (the rule of ``skin.robust_lab``), their edges dilated away.

    Outliers are judged on a low-passed colour: on the raw pixels the limit would tighten as the skin gets
    smoother and cut away the very texture being measured.
    """
    mask = skin_mask(landmarks, lab.shape)
    if not mask.any():
        return mask
    smooth = cv2.GaussianBlur(lab, (0, 0), OUTLIER_SIGMA)
    dist = np.linalg.norm(smooth - np.median(smooth[mask], axis=0), axis=-1)
    d = dist[mask]
    limit = np.median(d) + 3 * 1.4826 * np.median(np.abs(d - np.median(d))) + 1e-6
    outlier = cv2.dilate((dist > limit).astype(np.uint8), np.ones((3, 3), np.uint8))
    return mask & (outlier == 0)


def _lowpass(values: np.ndarray, weights: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised convolution: a Gaussian low-pass that only averages pixels with weight."""
    num = cv2.GaussianBlur(values * weights, (0, 0), sigma)
    return num / np.maximum(cv2.GaussianBlur(weights, (0, 0), sigma), 1e-6)


def _energy(band: np.ndarray) -> float:
    """Mean square of a band after dropping its largest ``TRIM`` share (robust to a few glints and hairs)."""
    squares = np.sort(band**2)
    return float(np.mean(squares[: max(1, int(round((1.0 - TRIM) * squares.size)))]))


def _texture(lightness: np.ndarray, mask: np.ndarray, native_iod: float) -> SkinTexture:
    w = mask.astype(np.float64)
    fine_low, coarse_low = _lowpass(lightness, w, FINE_SIGMA), _lowpass(lightness, w, COARSE_SIGMA)
    fine = np.sqrt(_energy((lightness - fine_low)[mask]))
    coarse = np.sqrt(_energy((fine_low - coarse_low)[mask]))
    index = float(fine / coarse) if coarse > 0 else float("nan")
    return SkinTexture(index, float(fine), float(coarse), int(mask.sum()), native_iod)


def _prepare(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(aligned RGB crop, its skin mask, native IOD), or None when the face cannot be measured."""
    native = inter_ocular(_check_landmarks(landmarks))
    if native < MIN_NATIVE_SCALE * ANALYSIS_IOD:
        return None
    crop, lm = aligned_face(image, landmarks)
    mask = _skin_pixels(srgb_to_lab(crop), lm)
    if mask.sum() < MIN_SKIN_PIXELS:
        return None
    return crop, mask, native


def _lightness(crop: np.ndarray, blur_sigma: float = 0.0) -> np.ndarray:
    """CIELAB L* of the crop, optionally Gaussian-blurred first and re-quantised to 8 bits as a real image is."""
    if blur_sigma > 0:
        crop = np.clip(np.round(cv2.GaussianBlur(crop.astype(np.float64), (0, 0), blur_sigma)), 0, 255)
        crop = crop.astype(np.uint8)
    return srgb_to_lab(crop)[..., 0]


def skin_texture(image: np.ndarray, landmarks: np.ndarray) -> SkinTexture | None:
    """The skin texture of the face with these landmarks, or None when too small or too little skin shows."""
    prepared = _prepare(image, landmarks)
    if prepared is None:
        return None
    crop, mask, native = prepared
    return _texture(_lightness(crop), mask, native)


def retouch_index(image: np.ndarray, landmarks: np.ndarray) -> float:
    """Fine/coarse texture ratio of the skin (lower = smoother); NaN when the face is too small to measure."""
    texture = skin_texture(image, landmarks)
    return float("nan") if texture is None else texture.index


def retouch_ratio(index: float, reference_indices: list[float] | np.ndarray) -> float:
    """The image's index over the median of the subject's references: < 1 smoother, > 1 sharper."""
    refs = np.asarray(reference_indices, dtype=float)
    refs = refs[np.isfinite(refs)]
    if refs.size == 0 or not np.isfinite(index):
        return float("nan")
    return float(index / np.median(refs))


@dataclass(frozen=True)
class BlurCalibration:
    """How the subject's own references lose texture under known Gaussian blurs (analysis px)."""

    sigmas: tuple[float, ...]
    ratios: tuple[float, ...]  # median over references of index(blurred) / index(unblurred), non-increasing
    reference_index: float  # median unblurred index of the references


def calibrate_blur(
    ref_images: list[np.ndarray],
    ref_landmarks: list[np.ndarray],
    sigmas: tuple[float, ...] = CALIBRATION_SIGMAS,
) -> BlurCalibration:
    """Blur each reference by every sigma at the analysis scale and record the index ratio (once per subject).

    The whole aligned crop is blurred (not the skin alone), so the skin's edges mix with their surroundings
    exactly as in a blurred photo; the mask stays the one found on the unblurred reference.
    """
    if len(ref_images) != len(ref_landmarks) or not ref_images:
        raise WorkbenchError(
            f"Got {len(ref_images)} reference images and {len(ref_landmarks)} landmark sets: pass one landmark "
            "set per reference photo, and at least one photo."
        )
    curves, bases = [], []
    for image, landmarks in zip(ref_images, ref_landmarks, strict=True):
        prepared = _prepare(image, landmarks)
        if prepared is None:
            continue
        crop, mask, native = prepared
        indices = np.array([_texture(_lightness(crop, s), mask, native).index for s in sigmas])
        bases.append(indices[0])
        curves.append(indices / indices[0])
    if not curves:
        raise WorkbenchError(
            "None of the reference photos has a measurable face (eyes at least "
            f"{MIN_NATIVE_SCALE * ANALYSIS_IOD:.0f} px apart, skin visible): add larger, frontal reference photos."
        )
    ratios = np.minimum.accumulate(np.median(np.stack(curves), axis=0))  # non-increasing, so invertible
    return BlurCalibration(tuple(map(float, sigmas)), tuple(map(float, ratios)), float(np.median(bases)))


def sigma_from_ratio(ratio: float, calibration: BlurCalibration) -> float:
    """The blur (analysis px) that takes the references to this index ratio.

    0 when the image is at least as textured as the references; the last calibrated sigma when it is smoother
    than even that blur (read it as "at least"); NaN when the ratio is NaN.
    """
    if not np.isfinite(ratio):
        return float("nan")
    sigmas, ratios = np.asarray(calibration.sigmas), np.asarray(calibration.ratios)
    if ratio >= ratios[0]:
        return 0.0
    if ratio <= ratios[-1]:
        return float(sigmas[-1])
    # np.interp needs increasing x: the curve is non-increasing, so interpolate on the reversed arrays.
    return float(np.interp(ratio, ratios[::-1], sigmas[::-1]))


def equivalent_blur_sigma(
    image: np.ndarray, landmarks: np.ndarray, ref_images: list[np.ndarray], ref_landmarks: list[np.ndarray]
) -> float:
    """The Gaussian blur (analysis px, ~1.5 mm on the face) of the subject's own photos that this skin matches.

    For many images of one subject, call ``calibrate_blur`` once and ``sigma_from_ratio`` per image.
    """
    calibration = calibrate_blur(ref_images, ref_landmarks)
    return sigma_from_ratio(retouch_index(image, landmarks) / calibration.reference_index, calibration)
