"""Two likeness backends (dlib, ArcFace ONNX), how well they agree, and the copy-paste check, on real faces.

Real faces: the 9 distinct people that ship in packages (astronaut, grace_hopper, the 6 faces of insightface's
t1.jpg, Tom Hanks), as 384 px head crops. Only ONE photo per person ships offline, so "same person" pairs are
two views of one photo (re-framed, rescaled, mirrored, relit): an easier case than two different photos of a
person, which no package provides. No ArcFace weights ship either: the backend is driven here by a tiny
random IResNet exported to ONNX, and the real-weights check is marked ``weights`` (run with ``-m weights``; it
fails, not skips, when the file is missing).
"""

from __future__ import annotations

import hashlib
import importlib.resources
import io
import itertools
import socket
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from PIL import Image

from workbench.errors import ModelNotAvailableError, WorkbenchError
from workbench.evaluate.likeness import (
    COPY_PASTE_BOUNDS,
    calibrate_copy_paste,
    copy_paste,
    rank_agreement,
)  # fmt: skip
from workbench.evaluate.stats import too_few
from workbench.faces import compare, get_backend
from workbench.faces.arcface_backend import ENV_VAR, THRESHOLD_SOURCE, five_points
from workbench.faces.tiny_arcface import build_tiny_arcface

DLIB_THRESHOLD = 0.6  # dlib's published same-person L2 threshold (99.38% on LFW)
CALIBRATION = [
    "t1_0",
    "t1_1",
    "t1_2",
    "t1_3",
    "t1_4",
    "t1_5",
    "tom_hanks",
]  # the copy-paste bounds come from these
HELD_OUT = ["astronaut", "grace_hopper"]  # ...and are judged on these


# -- real faces and their views ------------------------------------------------------------------------------------
def _head_crop(image: np.ndarray, box, size: int = 384, margin: float = 2.2) -> np.ndarray:
    """A square crop ``margin`` face-widths wide around a detected face box, edges replicated (no fake faces)."""
    x0, y0, x1, y1 = box
    side = int(margin * max(x1 - x0, y1 - y0))
    padded = cv2.copyMakeBorder(image, side, side, side, side, cv2.BORDER_REPLICATE)
    left, top = int((x0 + x1) / 2 - side / 2) + side, int((y0 + y1) / 2 - side / 2) + side
    return cv2.resize(
        padded[top : top + side, left : left + side], (size, size), interpolation=cv2.INTER_AREA
    )


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    side = int(image.shape[0] * scale)
    return cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)


def _relight(image: np.ndarray) -> np.ndarray:
    return np.clip(255 * (image / 255.0) ** 0.6 * 0.9 + 10, 0, 255).astype(np.uint8)


def _jpeg(image: np.ndarray, quality: int = 90) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def _mirror(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[:, ::-1])


VIEWS = {  # same photo, same person: re-framed, rescaled, mirrored, relit
    "crop": lambda im: cv2.resize(im[46:353, 19:326], im.shape[:2][::-1], interpolation=cv2.INTER_AREA),
    "scale": lambda im: _resize(im, 0.6),
    "mirror": _mirror,
    "relight": _relight,
}


def _copy(image: np.ndarray) -> np.ndarray:
    """A training photo re-saved: JPEG q90 of a 0.8x resize (what copy-paste must catch)."""
    return _jpeg(_resize(image, 0.8), 90)


def _new_view(image: np.ndarray) -> np.ndarray:
    """The face itself changed (its asymmetries swapped, lit differently): mirrored, relit, 0.7x."""
    return _resize(_relight(_mirror(image)), 0.7)


@pytest.fixture(scope="module")
def bundled_faces(astronaut: np.ndarray, grace_hopper: np.ndarray) -> dict[str, np.ndarray]:
    """One 384 px head crop per person (9 people), faces found with dlib."""
    detector = get_backend("dlib", upsample=1)
    images = importlib.resources.files("insightface") / "data" / "images"
    group = np.asarray(Image.open(images / "t1.jpg").convert("RGB"))
    hanks = np.asarray(Image.open(images / "Tom_Hanks_54745.png").convert("RGB"))
    # Tom Hanks ships as a tight 112 px aligned crop: enlarge and pad it so HOG sees a face with context.
    hanks = cv2.copyMakeBorder(cv2.resize(hanks, (224, 224), interpolation=cv2.INTER_CUBIC), 56, 56, 56, 56,
                               cv2.BORDER_REPLICATE)  # fmt: skip
    faces = {name: _head_crop(im, detector.detect(im)[0].box)
             for name, im in (("astronaut", astronaut), ("grace_hopper", grace_hopper), ("tom_hanks", hanks))}  # fmt: skip
    found = sorted(detector.detect(group), key=lambda f: f.box[0])
    assert len(found) == 6, f"t1.jpg should show 6 faces, dlib found {len(found)}"
    faces.update({f"t1_{i}": _head_crop(group, f.box) for i, f in enumerate(found)})
    return faces


def _embed(backend, image: np.ndarray) -> np.ndarray:
    faces = backend.detect(image)
    assert faces, f"{backend.name} found no face in a {image.shape} view"
    return backend.embed(image, faces[0])


def _embed_views(backend, faces: dict[str, np.ndarray]) -> dict[tuple[str, str], np.ndarray]:
    """Each person's photo ('original'), its four views, a re-saved copy and a new view, embedded."""
    out = {}
    for name, image in faces.items():
        variants = {"original": image, **{v: f(image) for v, f in VIEWS.items()}, "copy": _copy(image),
                    "new_view": _new_view(image)}  # fmt: skip
        out.update({(name, v): _embed(backend, im) for v, im in variants.items()})
    return out


@pytest.fixture(scope="module")
def dlib_embeddings(bundled_faces) -> dict[tuple[str, str], np.ndarray]:
    return _embed_views(get_backend("dlib", upsample=0), bundled_faces)


def _same_and_different(embeddings, metric: str) -> tuple[dict, dict]:
    people = sorted({name for name, _ in embeddings})
    different = {(a, b): compare(embeddings[a, "original"], embeddings[b, "original"], metric)
                 for a, b in itertools.combinations(people, 2)}  # fmt: skip
    same = {
        (p, v): compare(embeddings[p, "original"], embeddings[p, v], metric) for p in people for v in VIEWS
    }
    return same, different


# -- same person vs different people ------------------------------------------------------------------------------
def test_dlib_separates_different_people_from_views_of_one_photo(dlib_embeddings):
    """All 36 pairs of different people are beyond 0.6 and all 36 views of one photo within it."""
    same, different = _same_and_different(dlib_embeddings, "l2")
    assert len(different) == 36 and len(same) == 36
    # The published threshold is the tolerance: every pair on the right side of it, none excused.
    assert min(different.values()) > DLIB_THRESHOLD, min(different.items(), key=lambda kv: kv[1])
    assert max(same.values()) < DLIB_THRESHOLD, max(same.items(), key=lambda kv: kv[1])


@pytest.mark.weights
def test_arcface_separates_different_people_from_views_of_one_photo(bundled_faces, dlib_embeddings):
    """The same check with real ArcFace weights; and dlib and ArcFace rank likeness to a subject alike."""
    try:
        backend = get_backend("arcface", upsample=0)
    except ModelNotAvailableError as e:  # selected with -m weights: a missing file is a failure, not a skip
        pytest.fail(f"-m weights needs the ArcFace model: {e}")
    embeddings = _embed_views(backend, bundled_faces)
    same, different = _same_and_different(embeddings, "cosine")
    print(
        backend.describe(), f"different max {max(different.values()):.3f}, same min {min(same.values()):.3f}"
    )
    assert max(different.values()) < backend.threshold, max(different.items(), key=lambda kv: kv[1])
    assert min(same.values()) > backend.threshold, min(same.items(), key=lambda kv: kv[1])
    # Every image against the astronaut's photo: both backends must put her views above the other 8 people.
    keys = sorted(embeddings)
    arc = [compare(embeddings["astronaut", "original"], embeddings[k], "cosine") for k in keys]
    dl = [compare(dlib_embeddings["astronaut", "original"], dlib_embeddings[k], "l2") for k in keys]
    agreement = rank_agreement(dl, arc, metric_a="l2", metric_b="cosine", n_boot=200)
    print(f"dlib vs ArcFace rank agreement: {agreement}")
    assert agreement.est > 0.5 and agreement.n == len(keys)


# -- the ArcFace backend on a tiny random model -------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    return str(build_tiny_arcface(tmp_path_factory.mktemp("arcface") / "tiny_arcface.onnx", seed=0))


def test_tiny_arcface_runs_through_the_backend(tiny_model, astronaut, tmp_path):
    """512-d unit embeddings, identical across calls and rebuilds, hash and threshold source on record."""
    backend = get_backend("arcface", model=tiny_model, upsample=0)
    record = backend.describe()
    assert record["model_sha256"] == hashlib.sha256(open(tiny_model, "rb").read()).hexdigest()
    assert record["threshold"] == 0.32 and record["threshold_source"] == THRESHOLD_SOURCE
    assert backend.metric == "cosine" and backend.input_size == 112
    face = backend.detect(astronaut)[0]
    embedding = backend.embed(astronaut, face)
    assert embedding.shape == (512,) and embedding.dtype == np.float32
    assert abs(float(np.linalg.norm(embedding)) - 1.0) < 1e-5  # float32 rounding
    np.testing.assert_array_equal(backend.embed(astronaut, face), embedding)  # same session: bit-identical
    rebuilt = build_tiny_arcface(tmp_path / "again.onnx", seed=0)  # same seed: same file, same embedding
    again = get_backend("arcface", model=str(rebuilt), upsample=0)
    assert again.model_sha256 == backend.model_sha256
    np.testing.assert_allclose(again.embed(astronaut, face), embedding, atol=1e-6)
    other = get_backend("arcface", model=str(build_tiny_arcface(tmp_path / "seed1.onnx", seed=1)), upsample=0)
    assert other.model_sha256 != backend.model_sha256
    assert float(other.embed(astronaut, face) @ embedding) < 0.99  # other weights: another embedding


@pytest.mark.filterwarnings("ignore:.*`estimate` is deprecated:FutureWarning")  # skimage, inside insightface
def test_arcface_input_is_aligned_rgb_scaled_as_insightface_does(tiny_model, astronaut, bundled_faces):
    """The network sees the 5-point-aligned face, RGB, (x - 127.5) / 127.5 -- checked against a bare session."""
    import onnxruntime
    from insightface.utils.face_align import arcface_dst, estimate_norm

    backend = get_backend("arcface", model=tiny_model, upsample=0)
    face = backend.detect(astronaut)[0]
    aligned = backend.align(astronaut, face)
    session = onnxruntime.InferenceSession(tiny_model, providers=["CPUExecutionProvider"])

    def bare(rgb: np.ndarray) -> np.ndarray:
        blob = ((rgb.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)[None]
        out = session.run(None, {session.get_inputs()[0].name: blob})[0].ravel()
        return out / np.linalg.norm(out)

    np.testing.assert_allclose(backend.embed(astronaut, face), bare(aligned), atol=1e-5)
    assert (
        float(bare(aligned[..., ::-1].copy()) @ bare(aligned)) < 0.9999
    )  # channel order does reach the output
    # The five points land on the ArcFace template, in order (a swapped or mirrored point set lands tens of px
    # off). A similarity transform cannot fit one face to the mean template exactly: eyes within 4 px of 112,
    # every point within 8 px (her smile widens and lifts the mouth corners: measured 3.1-4.0 and 6.6-6.8 px).
    points = five_points(face.landmarks)
    matrix = estimate_norm(points, 112)
    error = np.linalg.norm(points @ matrix[:, :2].T + matrix[:, 2] - arcface_dst, axis=1)
    assert error[:2].max() < 4.0 and error.max() < 8.0, error
    # Alignment undoes framing and scale: her 384 px head crop at 0.6x gives the crop of the full photo again,
    # up to resampling and landmark jitter (mean error < 8 of 255; another person's crop differs by far more).
    small = _resize(bundled_faces["astronaut"], 0.6)
    error = np.abs(backend.align(small, backend.detect(small)[0]).astype(float) - aligned).mean()
    hopper = bundled_faces["grace_hopper"]
    other = np.abs(backend.align(hopper, backend.detect(hopper)[0]).astype(float) - aligned).mean()
    assert error < 8.0 < other, (error, other)


def test_a_missing_model_says_where_to_put_it_and_never_downloads(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the arcface backend tried to open a network connection")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(ModelNotAvailableError, match=r"\.insightface/models/buffalo_l/w600k_r50\.onnx") as e:
        get_backend("arcface", upsample=3)  # an option no other test uses, so nothing is cached
    assert "non-commercial research" in str(e.value) and ENV_VAR in str(e.value)
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "elsewhere.onnx"))
    with pytest.raises(ModelNotAvailableError, match="elsewhere.onnx"):
        get_backend("arcface", upsample=3)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(WorkbenchError, match="not a loadable ONNX model"):
        get_backend("arcface", model=str(broken))


# -- agreement between backends -----------------------------------------------------------------------------------
def test_rank_agreement_recovers_known_relations():
    rng = np.random.default_rng(0)
    distance = rng.uniform(0.0, 2.0, 200)
    similarity = (
        1 - distance**2 / 2
    )  # unit vectors: cosine = 1 - L2^2 / 2, strictly decreasing in the distance
    exact = rank_agreement(distance, similarity, metric_a="l2", metric_b="cosine", n_boot=200)
    assert exact.est == pytest.approx(1.0, abs=1e-12) and exact.lo == pytest.approx(1.0, abs=1e-12)
    assert exact.n == 200
    # Without the sign alignment the same relation reads as total disagreement.
    flipped = rank_agreement(distance, similarity, metric_a="cosine", metric_b="cosine", n_boot=0)
    assert flipped.est == pytest.approx(-1.0, abs=1e-12)
    # Shuffled: independent, true rho 0. Its SE is 1/sqrt(n-1) = 0.071; 0.25 is 3.5 SE.
    shuffled = rank_agreement(
        distance, rng.permutation(similarity), metric_a="l2", metric_b="cosine", n_boot=500
    )
    assert abs(shuffled.est) < 0.25 and shuffled.lo < 0 < shuffled.hi
    # Bivariate normal with Pearson r = 0.6: Spearman's rho is (6 / pi) asin(r / 2) = 0.582 (the normal-case result).
    # n = 2000 gives SE ~0.016; 0.05 is 3 SE.
    x = rng.standard_normal((2000, 2)) @ np.linalg.cholesky([[1.0, 0.6], [0.6, 1.0]]).T
    truth = 6 / np.pi * np.arcsin(0.3)
    noisy = rank_agreement(-x[:, 0], x[:, 1], metric_a="l2", metric_b="cosine", n_boot=300, seed=1)
    assert abs(noisy.est - truth) < 0.05 and noisy.lo <= truth <= noisy.hi


def test_rank_agreement_counts_only_images_both_backends_scored():
    a = np.array([0.1, 0.2, np.nan, 0.4, 0.5, 0.6, 0.7])
    b = np.array([0.9, 0.8, 0.7, np.nan, 0.5, 0.4, 0.3])
    result = rank_agreement(a, b, metric_a="l2", metric_b="cosine", n_boot=100)
    assert result.n == 5 and result.est == pytest.approx(1.0)
    three = rank_agreement(a[:5], b[:5], metric_a="l2", metric_b="cosine")  # 3 usable images: too few
    assert three.n == 3 and too_few(three)
    assert np.isnan(rank_agreement([0.1, 0.2], [0.3, 0.4], metric_a="l2", metric_b="l2").est)
    assert np.isnan(rank_agreement([0.1, 0.2, 0.3], [0.5] * 3, metric_a="l2", metric_b="l2").est)
    with pytest.raises(WorkbenchError, match="same images"):
        rank_agreement([0.1, 0.2, 0.3], [0.1, 0.2], metric_a="l2", metric_b="l2")


# -- copy-paste -----------------------------------------------------------------------------------------------------
def test_copy_paste_bounds_separate_resaved_copies_from_new_views(dlib_embeddings):
    """The shipped dlib bound is the calibration on 7 faces: it still separates copies from new views there."""
    e = dlib_embeddings
    copies = [compare(e[p, "original"], e[p, "copy"], "l2") for p in CALIBRATION]
    views = [compare(e[p, "original"], e[p, v], "l2") for p in CALIBRATION for v in ("mirror", "new_view")]
    calibrated = calibrate_copy_paste(copies, views, metric="l2", margin=0.02)
    shipped = COPY_PASTE_BOUNDS["dlib"]
    assert max(copies) < shipped.near_duplicate < min(views)
    # Shipped: the midpoint over the detector at upsample 0 and 1 pooled; this is upsample 0 alone.
    assert abs(shipped.near_duplicate - calibrated.near_duplicate) < 0.01
    with pytest.raises(WorkbenchError, match="overlap"):
        calibrate_copy_paste([0.1, 0.3], [0.2, 0.4], metric="l2", margin=0.05)


def test_copy_paste_flags_a_resaved_training_photo_not_a_new_view(dlib_embeddings):
    """On the two faces the bounds were not calibrated on: train = the photo, held out = its mirror image."""
    backend = get_backend("dlib", upsample=0)
    e = dlib_embeddings
    for person, stranger in (("astronaut", "grace_hopper"), ("grace_hopper", "astronaut")):
        train, holdout = e[person, "original"][None], e[person, "mirror"][None]
        copied = copy_paste(e[person, "copy"], train, holdout, backend)
        assert copied["copied"] and copied["train_index"] == 0, copied
        assert copied["gap"] > COPY_PASTE_BOUNDS["dlib"].margin
        new_view = copy_paste(e[person, "new_view"], train, holdout, backend)
        assert not new_view["copied"] and new_view["train_nearest"] > COPY_PASTE_BOUNDS["dlib"].near_duplicate
        other = copy_paste(e[stranger, "original"], train, holdout, backend)
        assert not other["copied"] and other["train_nearest"] > DLIB_THRESHOLD
        assert copied["holdout_to_train"] == pytest.approx(compare(train[0], holdout[0], "l2"))
    missing = copy_paste(None, train, holdout, backend)
    assert not missing["copied"] and np.isnan(missing["gap"])
    with pytest.raises(WorkbenchError, match="held-out"):
        copy_paste(e["astronaut", "copy"], train, np.empty((0, 128)), backend)
    with pytest.raises(WorkbenchError, match="calibrate"):
        copy_paste(e["astronaut", "copy"], train, holdout, SimpleNamespace(name="arcface", metric="cosine"))
