"""A counterfactual skin-tone ladder: real faces, their skin recoloured to each Monk swatch, labels by construction.

No demographically labelled face set can be downloaded here, and the bundled faces are few and unlabelled, so
the ladder builds its ground truth: each real face's skin (the face region minus eyes, brows and lips, with a
feathered edge) is moved in CIELAB so that its robust skin colour -- the statistic ``skin.measure_skin``
reports -- lands on the target swatch, while every pixel keeps its deviation from that centre (texture,
shading, pores). The MST label is then true by construction; the Fitzpatrick label follows from the swatch's
ITA (Chardon categories, Del Bino & Bernerd 2013).

This isolates the *measurement* and the *face models* from everything else: how well the suite recovers a
known tone, and whether the face detector and embedding work equally well across tones for the same person.
It does not replace a real labelled set such as MST-E (see ``testsets``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import matplotlib
import numpy as np
from PIL import Image

from workbench.errors import WorkbenchError
from workbench.evaluate.skin import (
    MST_LAB,
    excluded_regions,
    fitzpatrick_from_ita,
    ita,
    lab_to_srgb,
    mst_band,
    robust_lab,
    skin_mask,
    srgb_to_lab,
)  # fmt: skip
from workbench.faces import as_rgb_uint8, get_backend

# Bump when the subjects or the way the ladder is built change: cached ladders are keyed by it.
LADDER_VERSION = 2

INSIGHTFACE_TERMS = (
    "sample image inside the insightface package; copyright of its owners; read from the installed package "
    "at build time, never redistributed"
)

# The five faces of insightface's t1.jpg used here (a TV promotional still of six people, who are not named):
# (id, dlib HOG box at upsample 0 as (left, top, right, bottom), apparent gender, apparent age band). Gender
# and age band are our annotations from the photo, not self-reported. The sixth face, (275, 179) woman, is
# left out: her head is tilted and half turned, and the set is balanced at two women and three men from t1.
T1_FACES = (
    ("insightface-t1-a", (65, 284, 169, 388), "female", "18-29"),
    ("insightface-t1-b", (452, 300, 577, 424), "male", "18-29"),
    ("insightface-t1-c", (734, 365, 837, 469), "male", "18-29"),
    ("insightface-t1-d", (883, 89, 987, 192), "male", "18-29"),
    ("insightface-t1-e", (1114, 284, 1217, 388), "female", "18-29"),
)


@dataclass(frozen=True)
class LadderSubject:
    subject_id: str
    image: np.ndarray
    age_band: str  # apparent, annotated by us (see bundled_subjects)
    gender: str  # apparent, annotated by us: "female" | "male"
    source: str  # where the photo comes from and its licence


def bundled_subjects() -> list[LadderSubject]:
    """Eight real faces that ship inside installed packages: four women, four men (apparent gender).

    Apparent gender and age band are annotations made by looking at each photo, not self-reports; the two
    public-domain portraits agree with their documented subjects. One photo per person: every other view of
    a person (holdout, recoloured variants) is derived from it.
    """
    from skimage import data

    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    images = _insightface_images()
    subjects = [
        LadderSubject("astronaut", data.astronaut(), "30-49", "female",
                      "scikit-image data.astronaut(): Eileen Collins, NASA portrait, public domain"),
        LadderSubject("grace_hopper", np.asarray(Image.open(hopper).convert("RGB")), "70+", "female",
                      "matplotlib sample_data/grace_hopper.jpg: US Navy portrait, public domain"),
        # A 112 px greyscale aligned face crop: the recoloured skin sits against grey hair and background.
        LadderSubject("tom_hanks", np.asarray(Image.open(images / "Tom_Hanks_54745.png").convert("RGB")),
                      "30-49", "male", f"insightface data/images/Tom_Hanks_54745.png: {INSIGHTFACE_TERMS}"),
    ]  # fmt: skip
    t1 = np.asarray(Image.open(images / "t1.jpg").convert("RGB"))
    for subject_id, box, gender, age_band in T1_FACES:
        source = f"insightface data/images/t1.jpg, face at {box[:2]}: {INSIGHTFACE_TERMS}"
        subjects.append(LadderSubject(subject_id, _around(t1, box), age_band, gender, source))
    return subjects


def _insightface_images() -> Path:
    from importlib.resources import files

    try:
        folder = Path(str(files("insightface") / "data" / "images"))
    except ModuleNotFoundError as exc:
        raise WorkbenchError(
            "The ladder reads sample faces from the insightface package, which is not installed: "
            "pip install insightface (its sample images ship inside the wheel)."
        ) from exc
    if not (folder / "t1.jpg").is_file():
        raise WorkbenchError(f"insightface's sample images are missing from {folder}: reinstall insightface.")
    return folder


def _around(image: np.ndarray, box: tuple[int, int, int, int], scale: float = 3.0) -> np.ndarray:
    """A square cut of ``scale`` face widths around ``box``: one face of a group photo, the others cut off."""
    x0, y0, x1, y1 = box
    half = scale * max(x1 - x0, y1 - y0) / 2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    h, w = image.shape[:2]
    left, top = max(0, int(cx - half)), max(0, int(cy - half))
    return np.ascontiguousarray(image[top : min(h, int(cy + half)), left : min(w, int(cx + half))])


def _landmarks(image: np.ndarray) -> tuple[tuple[float, ...], np.ndarray]:
    """The face nearest the image centre (a cut from a group photo can hold parts of the neighbours)."""
    faces = [f for f in get_backend("dlib", upsample=1).detect(image) if f.landmarks is not None]
    if not faces:
        raise WorkbenchError(
            "No face with landmarks found in a ladder source photo: use a clear frontal portrait."
        )
    h, w = np.asarray(image).shape[:2]

    def off_centre(face) -> float:
        x0, y0, x1, y1 = face.box
        return float(np.hypot((x0 + x1) / 2 - w / 2, (y0 + y1) / 2 - h / 2))

    face = min(faces, key=off_centre)
    return face.box, face.landmarks


def crop_portrait(image: np.ndarray, size: int = 384, margin: float = 2.6) -> np.ndarray:
    """A square head-and-shoulders crop, ``margin`` face widths wide, resized to ``size`` px."""
    image = as_rgb_uint8(image)
    (x0, y0, x1, y1), _ = _landmarks(image)
    side = margin * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + 0.1 * (y1 - y0)
    h, w = image.shape[:2]
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    pad = max(0, -left, -top, left + int(side) - w, top + int(side) - h)
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    crop = padded[top + pad : top + pad + int(side), left + pad : left + pad + int(side)]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_CUBIC)


def recolour_region(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Float (H, W) weights of the skin to recolour: face, forehead, ears and neck, minus eyes/brows/lips.

    A geometric region (jaw hull widened to the ears, up the forehead, down the neck) gated by colour: only
    pixels close in CIELAB to the measured skin centre are moved, so hair, hats, glasses and background keep
    their colour. The measurement mask itself always gets full weight, so the label holds exactly there.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    shape = image.shape
    iod = float(np.linalg.norm(lm[42:48].mean(0) - lm[36:42].mean(0)))
    centre_x = lm[27:31, 0].mean()
    wide = lm[0:17].copy()
    wide[:, 0] = centre_x + (wide[:, 0] - centre_x) * 1.25  # out to the ears
    forehead = lm[17:27] + np.array([0.0, -0.6 * iod])
    neck = lm[[4, 8, 12]] + np.array([0.0, 1.6 * iod])
    region = np.zeros(shape[:2], np.uint8)
    hull = cv2.convexHull(np.round(np.vstack([wide, forehead, neck])).astype(np.int32))
    cv2.fillPoly(region, [hull], 1)
    cut = np.zeros_like(region)
    for polygon in excluded_regions(lm).values():
        cv2.fillPoly(cut, [cv2.convexHull(np.round(polygon).astype(np.int32))], 1)
    k = max(3, int(0.08 * iod) | 1)
    cut = cv2.dilate(cut, np.ones((k, k), np.uint8))
    mask = skin_mask(lm, shape)
    lab = srgb_to_lab(image)
    centre, _ = robust_lab(image, mask)
    distance = np.linalg.norm(lab - centre, axis=-1)
    near = float(np.percentile(distance[mask], 95))
    similarity = np.clip((1.8 * near - distance) / (0.8 * near), 0.0, 1.0)
    weights = ((region > 0) & (cut == 0)).astype(np.float32) * similarity.astype(np.float32)
    weights = cv2.GaussianBlur(weights, (0, 0), max(1.0, 0.04 * iod))
    weights[mask] = 1.0
    return weights


def recolour_skin(image: np.ndarray, landmarks: np.ndarray, target_lab: np.ndarray) -> np.ndarray:
    """Move the skin's robust CIELAB centre to ``target_lab``, keeping each pixel's deviation from it."""
    image = as_rgb_uint8(image)
    centre, n = robust_lab(image, skin_mask(landmarks, image.shape))
    if n == 0:
        raise WorkbenchError("The face has no visible skin to recolour.")
    weights = recolour_region(image, landmarks)[..., None]
    lab = srgb_to_lab(image)
    shifted = lab + weights * (np.asarray(target_lab, dtype=float) - centre)
    shifted[..., 0] = np.clip(shifted[..., 0], 0.0, 100.0)
    return lab_to_srgb(shifted)


def shift_lightness(image: np.ndarray, landmarks: np.ndarray, delta_l: float) -> np.ndarray:
    """Lighten (or darken) the skin by ``delta_l`` L* inside the same region: a known lightening."""
    centre, _ = robust_lab(as_rgb_uint8(image), skin_mask(landmarks, np.asarray(image).shape))
    return recolour_skin(image, landmarks, centre + np.array([delta_l, 0.0, 0.0]))


def holdout_view(image: np.ndarray, size: int = 384) -> np.ndarray:
    """Another view of a subject's own photo, for ``role: holdout``: closer crop, 5 degree tilt, side light.

    Offline there is one photo per person, so the holdout is derived from the same photo as the reference:
    a tighter crop (2.1 instead of 2.6 face widths, so every pixel is resampled differently), rotated 5
    degrees and relit by a warm left-to-right light ramp (x1.12 to x0.88). It is never pixel-identical to the
    reference, but it is the same moment, expression and camera: a much easier match than a second real photo,
    so likeness figures on it are an upper bound.
    """
    closer = crop_portrait(image, size, margin=2.1)
    turn = cv2.getRotationMatrix2D((size / 2, size / 2), 5.0, 1.0)
    tilted = cv2.warpAffine(
        closer, turn, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    light = np.linspace(1.12, 0.88, size)[None, :, None] * np.array([1.04, 1.0, 0.94])  # warm, from the left
    return np.clip(tilted.astype(np.float64) * light, 0, 255).round().astype(np.uint8)


def build_ladder(
    out_dir: str | Path,
    subjects: list[LadderSubject] | None = None,
    levels: tuple[int, ...] = tuple(range(1, 11)),
    size: int = 384,
    flips: bool = False,
    holdout: bool = True,
) -> Path:
    """Write the ladder as an HF ``datasets`` imagefolder: PNGs and ``metadata.jsonl`` (docs/testsets.md).

    Per subject: the untouched portrait (``role: reference``, the subject's own photo for likeness and skin
    shift), a derived other view (``role: holdout``, see :func:`holdout_view`) and one recoloured portrait
    per Monk level (``role: variant``, labels by construction). Columns: ``file_name, subject_id, role, mst,
    mst_band, fitzpatrick, age_band, gender, target_L/a/b``. ``flips`` adds mirrored variants.
    """
    levels = tuple(sorted(set(levels)))
    if not levels or any(not 1 <= int(v) <= 10 for v in levels):
        raise WorkbenchError(f"Ladder levels {list(levels)} must be Monk levels 1-10, e.g. [1, 4, 7, 10].")
    subjects = subjects or bundled_subjects()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    unlabelled = {"mst": None, "mst_band": None, "fitzpatrick": None, "target_L": None, "target_a": None,
                  "target_b": None}  # fmt: skip
    for subject in subjects:
        portrait = crop_portrait(subject.image, size)
        _, lm = _landmarks(portrait)
        base = {"subject_id": subject.subject_id, "age_band": subject.age_band, "gender": subject.gender}
        views = [("reference", portrait)] + (
            [("holdout", holdout_view(subject.image, size))] if holdout else []
        )
        for role, view in views:
            name = f"{subject.subject_id}_{role}.png"
            Image.fromarray(view).save(out / name)
            records.append({"file_name": name, **base, "role": role, **unlabelled})
        for level in levels:
            target = MST_LAB[level - 1]
            variant = recolour_skin(portrait, lm, target)
            label = {"mst": level, "mst_band": mst_band(level), "fitzpatrick": fitzpatrick_from_ita(float(ita(target))),
                     "role": "variant", "target_L": float(target[0]), "target_a": float(target[1]),
                     "target_b": float(target[2])}  # fmt: skip
            for flipped in (False, True) if flips else (False,):
                name = f"{subject.subject_id}_mst{level:02d}{'_flip' if flipped else ''}.png"
                Image.fromarray(variant[:, ::-1] if flipped else variant).save(out / name)
                records.append({"file_name": name, **base, **label})
    (out / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    sources = "\n".join(f"- `{s.subject_id}` ({s.gender}, {s.age_band}; apparent, our annotation): {s.source}"
                        for s in subjects)  # fmt: skip
    (out / "README.md").write_text(
        "# Counterfactual Monk Skin Tone ladder\n\nBuilt by `workbench.evaluate.ladder.build_ladder` "
        f"(version {LADDER_VERSION}): each real portrait's skin recoloured to MST levels {list(levels)} in "
        "CIELAB, texture kept; labels by construction. Holdouts are derived views of the same photo.\n\n"
        f"Sources:\n{sources}\n"
    )
    return out
