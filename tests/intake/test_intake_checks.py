"""Each per-photo check fires on a degraded copy of a real face and stays quiet on the good photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from workbench.faces import Face
from workbench.intake import IntakeConfig, assess_image, assess_set
from workbench.intake.checks import duplicate_check, perceptual_hash
from workbench.intake.measures import eye_aspect_ratio, mouth_aspect_ratio, pose_label, yaw_degrees

CONFIG = IntakeConfig()


def _rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)


def _sunglasses(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    image = image.copy()
    for eye in (landmarks[36:42], landmarks[42:48]):
        cx, cy = eye.mean(0)
        width = eye[:, 0].max() - eye[:, 0].min()
        cv2.ellipse(
            image, (int(cx), int(cy)), (int(width * 0.95), int(width * 0.7)), 0, 0, 360, (20, 20, 25), -1
        )
    cv2.line(image, tuple(map(int, landmarks[39])), tuple(map(int, landmarks[42])), (20, 20, 25), 3)
    return image


def _side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two people in one frame, faces of similar size (as in a couple's or a group photo)."""
    column = np.full((left.shape[0], right.shape[1], 3), 128, np.uint8)
    column[60 : 60 + right.shape[0]] = right
    return np.concatenate([left, column], axis=1)


@pytest.fixture(scope="module")
def cases(astronaut, grace_hopper, dlib_backend) -> dict[str, np.ndarray]:
    landmarks = dlib_backend.detect(astronaut)[0].landmarks
    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    return {
        "astronaut": astronaut,
        "grace_hopper": grace_hopper,
        "blurred": cv2.GaussianBlur(astronaut, (0, 0), 2.5),
        "darkened": (astronaut * 0.25).astype(np.uint8),
        "overexposed": np.clip(astronaut * 1.9, 0, 255).astype(np.uint8),
        "sunglasses": _sunglasses(astronaut, landmarks),
        "sepia_filter": np.clip(np.stack([gray] * 3, -1) * np.array([1.18, 0.81, 0.47]), 0, 255).astype(
            np.uint8
        ),
        "blue_light": np.clip(astronaut * np.array([0.75, 0.9, 1.15]), 0, 255).astype(np.uint8),
        "black_and_white": np.stack([gray] * 3, -1),
        "tilted": _rotate(astronaut, 28),
        "two_people": _side_by_side(
            astronaut, cv2.resize(grace_hopper, (282, 330), interpolation=cv2.INTER_AREA)
        ),
        "tiny_face": cv2.resize(astronaut, (200, 200), interpolation=cv2.INTER_AREA),
        "no_face": data.coffee(),
    }


@pytest.fixture(scope="module")
def assessed(cases, dlib_backend):
    return {name: assess_image(image, dlib_backend, CONFIG) for name, image in cases.items()}


def _failed(assessment) -> set[str]:
    return {c.name for c in assessment.failed}


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_good_photos_pass_every_check(assessed, name):
    assessment = assessed[name]
    assert _failed(assessment) == set(), [c.to_dict() for c in assessment.failed]
    assert assessment.accepted and assessment.reasons == []
    assert {c.name for c in assessment.checks} >= {"no_face", "blur", "occluded_eyes", "colour_cast", "tilt"}
    for check in assessment.checks:
        assert isinstance(check.score, float | int) and isinstance(check.threshold, float | int)


@pytest.mark.parametrize(
    "case, check",
    [
        ("blurred", "blur"),
        ("darkened", "underexposed"),
        ("overexposed", "overexposed"),
        ("overexposed", "clipped_highlights"),
        ("sunglasses", "occluded_eyes"),
        ("sepia_filter", "colour_cast"),
        ("blue_light", "skin_hue"),
        ("black_and_white", "monochrome"),
        ("tilted", "tilt"),
        ("two_people", "multiple_faces"),
        ("tiny_face", "face_too_small"),
        ("no_face", "no_face"),
    ],
)
def test_check_fires_on_degraded_photo(assessed, case, check):
    assessment = assessed[case]
    assert check in _failed(assessment), {c.name: round(c.score, 3) for c in assessment.checks}
    result = next(c for c in assessment.checks if c.name == check)
    assert result.advice and result.advice.endswith(".")  # a sentence the user can act on


def test_degraded_photos_fail_only_for_their_own_reasons(assessed):
    # A check that fires on everything would pass the test above: make sure each degradation is specific.
    assert _failed(assessed["blurred"]) == {"blur"}
    assert _failed(assessed["darkened"]) == {"underexposed"}
    assert _failed(assessed["sunglasses"]) == {"occluded_eyes"}
    assert _failed(assessed["black_and_white"]) == {"monochrome"}
    assert _failed(assessed["two_people"]) == {"multiple_faces"}


def test_tilt_only_warns_by_default_and_blocks_when_configured(assessed, cases, dlib_backend):
    assert assessed["tilted"].accepted and assessed["tilted"].warnings
    strict = assess_image(cases["tilted"], dlib_backend, CONFIG.replace(warn_only=[]))
    assert not strict.accepted and any("tilted" in r for r in strict.reasons)


def test_thresholds_come_from_the_config(cases, dlib_backend):
    lenient = CONFIG.replace(min_sharpness=0.01)
    assert "blur" not in _failed(assess_image(cases["blurred"], dlib_backend, lenient))


class _EditedLandmarks:
    """dlib, with the landmarks of the face it finds edited: expressions and poses we have no photo of."""

    name, metric, threshold = "edited", "l2", 0.6

    def __init__(self, backend, edit):
        self.backend, self.edit = backend, edit

    def detect(self, image):
        faces = self.backend.detect(image)
        return [Face(f.box, f.score, self.edit(f.landmarks.copy()), f.landmarks5) for f in faces]


def _open_mouth(points: np.ndarray) -> np.ndarray:
    width = np.linalg.norm(points[54] - points[48])
    points[[55, 56, 57, 58, 59, 65, 66, 67], 1] += 0.6 * width
    return points


def _close_eyes(points: np.ndarray) -> np.ndarray:
    for eye in (slice(36, 42), slice(42, 48)):
        points[eye, 1] = points[eye, 1].mean()
    return points


def test_expression_checks(astronaut, dlib_backend):
    real = dlib_backend.detect(astronaut)[0].landmarks
    assert mouth_aspect_ratio(real) < CONFIG.max_mouth_open and eye_aspect_ratio(real) > CONFIG.min_eye_open
    mouth = assess_image(astronaut, _EditedLandmarks(dlib_backend, _open_mouth), CONFIG)
    eyes = assess_image(astronaut, _EditedLandmarks(dlib_backend, _close_eyes), CONFIG)
    assert "mouth_open" in _failed(mouth) and "eyes_closed" not in _failed(mouth)
    assert "eyes_closed" in _failed(eyes) and "mouth_open" not in _failed(eyes)
    assert mouth.labels(CONFIG)["expression"] == "open_mouth"


def test_yaw_from_landmarks(astronaut, dlib_backend):
    points = dlib_backend.detect(astronaut)[0].landmarks.astype(np.float64)
    assert pose_label(yaw_degrees(points), CONFIG.front_yaw, CONFIG.profile_yaw) == "front"
    half_width = (points[16, 0] - points[0, 0]) / 2
    turned = points.copy()
    turned[27:36, 0] += 0.45 * half_width  # the nose moves toward one cheek as the head turns
    assert pose_label(yaw_degrees(turned), CONFIG.front_yaw, CONFIG.profile_yaw) == "three_quarter"
    turned[27:36, 0] += 0.6 * half_width
    assert pose_label(yaw_degrees(turned), CONFIG.front_yaw, CONFIG.profile_yaw) == "profile"
    mirrored = points.copy()
    mirrored[27:36, 0] -= 0.45 * half_width
    assert yaw_degrees(mirrored) < -CONFIG.front_yaw


def test_near_duplicate(astronaut, grace_hopper):
    original = perceptual_hash(astronaut)
    recompressed = cv2.resize(astronaut, (430, 430), interpolation=cv2.INTER_AREA)
    recompressed = cv2.imdecode(cv2.imencode(".jpg", recompressed, [cv2.IMWRITE_JPEG_QUALITY, 60])[1], 1)
    seen = {"a.jpg": original}
    assert not duplicate_check(perceptual_hash(recompressed), seen, CONFIG).passed
    assert duplicate_check(perceptual_hash(grace_hopper), seen, CONFIG).passed
    assert duplicate_check(perceptual_hash(astronaut[:, ::-1]), seen, CONFIG).passed  # a mirror is a new view


def _record(pose="front", expression="neutral", lighting="even", date=None):
    return {"pose": pose, "expression": expression, "lighting": lighting, "capture_date": date}


def test_set_findings():
    def by_name(records):
        return {f.name: f for f in assess_set(records, CONFIG)}

    few = by_name([_record()] * 5)
    assert not few["photo_count"].ok and "add 10 more" in few["photo_count"].message
    assert not few["pose_variety"].ok and "three-quarter" in few["pose_variety"].message
    assert not few["lighting_variety"].ok and not few["expression_variety"].ok
    too_many = by_name([_record()] * 25)
    assert not too_many["photo_count"].ok and "keep the 20" in too_many["photo_count"].message

    varied = [
        _record(pose, expression, lighting, f"2025-0{1 + i % 9}-01T10:00:00")
        for i, (pose, expression, lighting) in enumerate(
            [
                ("front", "neutral", "even"),
                ("three_quarter", "smile", "side"),
                ("profile", "neutral", "low_key"),
            ]
            * 6
        )
    ]
    good = by_name(varied)
    assert all(f.ok for f in good.values()), [f for f in good.values() if not f.ok]

    old = by_name([_record(date="2015-06-01T12:00:00"), _record(date="2025-06-01T12:00:00"), _record()])
    assert not old["capture_dates"].ok and "10.0 years" in old["capture_dates"].message


def test_optional_backends_say_what_is_missing(tmp_path):
    import importlib.util

    from workbench.errors import MissingDependencyError, ModelNotAvailableError
    from workbench.faces import get_backend

    # mediapipe is an extra the default set-up leaves out; insightface is installed (its code and sample faces
    # ship), but its model packs never are: each missing piece is named with where to get it.
    assert importlib.util.find_spec("mediapipe") is None, "the default set-up must not install mediapipe"
    with pytest.raises(MissingDependencyError, match="mediapipe"):
        get_backend("mediapipe")
    with pytest.raises(ModelNotAvailableError, match=r"buffalo_l.*not in .*copy it there"):
        get_backend("insightface", root=str(tmp_path))
