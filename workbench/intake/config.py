"""The intake stage's config: every check's threshold lives here, so a run's verdicts can be replayed."""

from __future__ import annotations

import dataclasses
from typing import Literal

from workbench.config import StageConfig, check_ranges, check_template, field
from workbench.errors import WorkbenchError

DEFAULT_RETENTION_DAYS = 30
CHECK_NAMES = (
    "no_face", "multiple_faces", "face_too_small", "blur", "underexposed", "overexposed",
    "clipped_highlights", "occluded_eyes", "mouth_open", "eyes_closed", "colour_cast", "skin_hue",
    "monochrome", "duplicate", "tilt", "same_person",
)  # fmt: skip


@dataclasses.dataclass
class IntakeConfig(StageConfig):
    # -- the training set ---------------------------------------------------------------------------------------
    resolution: int = field(
        512, help="Side of the aligned square crops in pixels (512 for SD 1.5, 1024 for SDXL)."
    )
    token: str = field("ohwx", help="Rare identifier token that stands for the subject in captions.")
    class_word: str = field("person", help="Class noun after the token (person, man, woman, ...).")
    caption_template: str = field(
        "a photo of {token} {class_word}",
        help="Caption of every crop; must contain {token} and {class_word}.",
    )
    crop_scale: float = field(
        1.3, help="Crop side as a multiple of FFHQ's face framing (1.0 = tight face; larger adds hair, neck)."
    )
    face_backend: Literal["dlib", "mediapipe", "insightface"] = field(
        "dlib", help="Face detector/landmarks/embedding backend (dlib ships in packages and works offline)."
    )
    detect_max_side: int = field(800, help="Photos are downscaled to this long side for face detection.")
    holdout: int = field(
        0,
        help="Keep the last N accepted photos (in the order given) out of training: the evaluation's unseen "
        "real photos of the subject (copy-paste check, the detector's real side).",
    )
    max_megapixels: float = field(80.0, help="Larger images are refused as possible decompression bombs.")
    # -- privacy ------------------------------------------------------------------------------------------------
    retention_days: int | None = field(
        None,
        help=f"Days after the subject's first intake when its data expires; 0 keeps it until forgotten; "
        f"unset keeps the subject's current setting ({DEFAULT_RETENTION_DAYS} for a new subject).",
    )
    log_originals: bool = field(
        False, help="Also copy raw photos and aligned crops (biometric data) into the MLflow run's artifacts."
    )
    # -- which failed checks only warn instead of rejecting the photo ------------------------------------------
    warn_only: list[str] = field(
        default_factory=lambda: ["tilt"],
        help="Checks that warn without rejecting (tilt is undone by alignment).",
    )
    # -- per-photo thresholds -----------------------------------------------------------------------------------
    other_face_min_score: float = field(
        0.3, help="Detector score from which a second face counts as a person."
    )
    other_face_ratio: float = field(
        0.5, help="A second face at least this fraction of the main face's size means 'more than one person'."
    )
    max_upscale: float = field(3.0, help="Reject when the face crop must be enlarged more than this to fit.")
    min_sharpness: float = field(
        0.15, help="Minimum face sharpness (Laplacian std / intensity std at 128 px)."
    )
    min_brightness: float = field(0.28, help="Minimum mean face lightness (CIELAB L / 100).")
    max_brightness: float = field(0.85, help="Maximum mean face lightness (CIELAB L / 100).")
    max_clipped: float = field(0.05, help="Maximum fraction of face pixels blown out (luma 250 or more).")
    min_eye_contrast: float = field(
        0.4, help="Minimum eye-region to cheek lightness ratio (sunglasses, hair or hands make it low)."
    )
    max_mouth_open: float = field(
        0.45, help="Maximum inner-mouth aspect ratio (open mouth, shouting, yawning)."
    )
    min_eye_open: float = field(0.14, help="Minimum eye aspect ratio (closed eyes, squinting).")
    max_colour_cast: float = field(
        20.0, help="Maximum distance of the image's median a*, b* from neutral grey."
    )
    min_skin_hue: float = field(
        20.0, help="Lowest natural CIELAB hue angle of skin in degrees (below: magenta)."
    )
    max_skin_hue: float = field(
        80.0, help="Highest natural CIELAB hue angle of skin in degrees (above: green/blue)."
    )
    min_colourfulness: float = field(4.0, help="Minimum mean face chroma (black-and-white or faded filters).")
    max_duplicate_distance: int = field(
        6, help="Perceptual-hash Hamming distance at or below which two photos are near-duplicates."
    )
    max_tilt: float = field(20.0, help="Maximum roll of the eye line in degrees.")
    # -- set-level thresholds -----------------------------------------------------------------------------------
    min_photos: int = field(15, help="Lower end of the sweet spot for the number of accepted photos.")
    max_photos: int = field(20, help="Upper end of the sweet spot for the number of accepted photos.")
    front_yaw: float = field(15.0, help="Yaw in degrees below which a face counts as frontal.")
    profile_yaw: float = field(45.0, help="Yaw in degrees above which a face counts as profile.")
    max_capture_spread_days: int = field(
        730, help="Warn when the photos' EXIF capture dates span more days than this."
    )

    def __post_init__(self) -> None:
        if not 64 <= self.resolution <= 4096 or self.resolution % 8:
            raise WorkbenchError(
                f"resolution={self.resolution} must be a multiple of 8 between 64 and 4096 (512 or 1024)."
            )
        if "{token}" not in self.caption_template:
            raise WorkbenchError(
                "caption_template must contain {token}, or the captions cannot name the subject."
            )
        if not self.token.strip() or " " in self.token.strip():
            raise WorkbenchError(f"token={self.token!r} must be one word (a rare token such as 'ohwx').")
        unknown = sorted(set(self.warn_only) - set(CHECK_NAMES))
        if unknown:
            raise WorkbenchError(
                f"warn_only names unknown checks {unknown}: choose from {', '.join(CHECK_NAMES)}."
            )
        if self.retention_days is not None and self.retention_days < 0:
            raise WorkbenchError(
                "retention_days must be 0 (keep until forgotten) or a positive number of days."
            )
        if self.crop_scale < 0.8:
            raise WorkbenchError("crop_scale below 0.8 would cut into the face; use 1.0 or more.")
        check_template(
            "caption_template", self.caption_template, token=self.token, class_word=self.class_word
        )
        check_ranges(
            self, crop_scale=(0.8, 4.0), detect_max_side=(64, 10_000), max_megapixels=(0.01, 1000.0),
            retention_days=(0, 36_500), holdout=(0, 100), other_face_min_score=(0.0, 1.0), other_face_ratio=(0.0, 10.0),
            max_upscale=(0.01, 100.0), min_sharpness=(0.0, None), min_brightness=(0.0, 1.0),
            max_brightness=(0.0, 1.0), max_clipped=(0.0, 1.0), min_eye_contrast=(0.0, None),
            max_mouth_open=(0.0, None), min_eye_open=(0.0, None), max_colour_cast=(0.0, None),
            min_skin_hue=(-180.0, 360.0), max_skin_hue=(-180.0, 360.0), min_colourfulness=(0.0, None),
            max_duplicate_distance=(0, 64), max_tilt=(0.0, 180.0), min_photos=(1, 10_000),
            max_photos=(1, 10_000), front_yaw=(0.0, 90.0), profile_yaw=(0.0, 90.0),
            max_capture_spread_days=(0, None),
        )  # fmt: skip
        for low, high in (("min_brightness", "max_brightness"), ("min_skin_hue", "max_skin_hue"),
                          ("min_photos", "max_photos"), ("front_yaw", "profile_yaw")):  # fmt: skip
            if getattr(self, low) > getattr(self, high):
                raise WorkbenchError(
                    f"Option {low}={getattr(self, low)!r} must not be above {high}={getattr(self, high)!r}."
                )

    def caption(self) -> str:
        return self.caption_template.format(token=self.token, class_word=self.class_word).strip()
