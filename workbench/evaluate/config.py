"""EvalConfig: what one evaluation run measures, on what, and which thresholds it checks.

A suite in ``eval/suites/*.yaml`` is this config as YAML (``stage: eval``); the run logs it back to MLflow, so
``workbench eval --suite <that yaml>`` re-runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from workbench.config import SEED_RANGE, StageConfig, check_ranges, field
from workbench.errors import WorkbenchError

Metric = Literal["likeness", "skin", "geometry", "retouch", "detect", "provenance", "ranking", "human"]
METRICS: tuple[str, ...] = get_args(Metric)


@dataclass
class EvalConfig(StageConfig):
    suite: str = field("default", help="Name of the suite (eval/suites/<name>.yaml), recorded with the run.")
    description: str = field("", help="One line saying what the suite is for.")
    metrics: list[Metric] = field(
        default_factory=lambda: [m for m in METRICS if m != "human"],  # human needs an answers file
        help="Which measurements to run: likeness, skin, geometry, retouch, detect, provenance, ranking, human.",
    )
    testset: str | None = field(None, help="Test set name (eval/testsets/<name>.yaml), folder or hub id.")
    face_backend: str = field("dlib", help="Face backend for detection, landmarks and embeddings.")
    second_face_backend: str | None = field(
        "arcface",
        help="A second embedding for likeness beside face_backend (ArcFace when its ONNX file is on this machine; "
        "the report says why when not); the report shows both and their rank agreement. null: none.",
    )
    arcface_model: str | None = field(
        None, help="ArcFace ONNX file (default: $WORKBENCH_ARCFACE_MODEL, then insightface's buffalo_l)."
    )
    analysis_size: int = field(
        512, help="Longest image side (px) for face detection; larger images are shrunk."
    )
    retry_upsample: bool = field(True, help="Retry detection with 2x upsampling when no face is found.")
    group_by: list[str] = field(
        default_factory=lambda: ["mst_band"],
        help="Metadata columns to break results down by (missing ones are noted).",
    )
    lightening_threshold: float = field(
        3.0, help="An output counts as lightened when its skin L* is this much higher."
    )
    white_method: Literal["auto", "sclera", "grey_world"] = field(
        "auto",
        help="Reference white for the illumination-compensated skin figures: the sclera (auto falls back to "
        "grey-world over the background when the eyes show too little white).",
    )
    detector: Literal["spectral", "clip", "univfd", "commfor"] = field(
        "spectral",
        help="Detector plug-in: spectral or clip (cross-validated probes fitted here), univfd or commfor "
        "(published detectors, nothing fitted).",
    )
    clip_model: str | None = field(
        None, help="CLIP backbone (hub id or folder) for detector clip/univfd; openai/clip-vit-large-patch14."
    )
    detector_weights: str | None = field(
        None,
        help="Published detector weights: UnivFD's fc_weights.pth, or a Community Forensics folder, file or "
        "hub id (default OwensLab/commfor-model-384). Read from this machine only.",
    )
    detector_crop_size: int | None = field(
        None,
        help="Content-matched crop side (px); null: the plug-in's own (spectral 256, clip/univfd 224, "
        "commfor 440).",
    )
    detector_margin: float = field(2.0, help="Content-matched crop side in face widths, same on both sides.")
    detector_encoding: Literal["jpeg", "png"] = field(
        "jpeg", help="Encoding both sides pass through before the detector (masks real photos' JPEG origin)."
    )
    detector_jpeg_quality: int = field(90, help="JPEG quality of that shared encoding.")
    detector_folds: int = field(5, help="Cross-validation folds of the probe detectors (2-20).")
    detector_permutations: int = field(200, help="Label permutations for the probe's p-value (0: none).")
    min_sharpness: float = field(
        40.0, help="Least variance of the Laplacian (face crop at 128 px) for a usable image."
    )
    exposure_range: list[float] = field(
        # Wide on purpose: a face's mean L* also tracks its skin tone, and a narrow range would reject deep skin
        # (the ladder showed MST 9-10 flagged "under-exposed" at [25, 85]). Clipping catches real exposure faults.
        default_factory=lambda: [10.0, 95.0],
        help="Usable mean face L* range (under/over-exposure outside it).",
    )
    max_clipped: float = field(0.05, help="Most share of clipped face pixels for a usable image.")
    human_answers: str | None = field(None, help="Blind-test answers file (CSV/JSONL) to score.")
    n_boot: int = field(500, help="Bootstrap resamples for every CI.")
    confidence: float = field(0.95, help="Confidence level of the intervals.")
    seed: int = field(0, help="Seed for splits and bootstrap resamples.")
    thresholds: dict[str, dict[str, float]] = field(
        default_factory=dict,
        help="Checks: {metric: {min: x} | {max: y}} on the flat metrics; a failure exits 1.",
    )
    baseline: str | None = field(None, help="Baseline to compare with: eval/baselines/<name>.json or a path.")

    def __post_init__(self) -> None:
        unknown = sorted(set(self.metrics) - set(METRICS))
        if unknown:
            raise WorkbenchError(f"Unknown metric(s) {', '.join(unknown)}: choose from {', '.join(METRICS)}.")
        if not 0.5 <= self.confidence < 1.0:
            raise WorkbenchError(f"confidence={self.confidence} must be in [0.5, 1).")
        if self.analysis_size < 128:
            raise WorkbenchError(
                f"analysis_size={self.analysis_size} is too small to find faces: use >= 128."
            )
        if len(self.exposure_range) != 2 or self.exposure_range[0] >= self.exposure_range[1]:
            raise WorkbenchError("exposure_range must be two numbers, low < high (mean face L*).")
        for name, bounds in self.thresholds.items():
            if not isinstance(bounds, dict) or not set(bounds) <= {"min", "max"}:
                raise WorkbenchError(f"Threshold {name!r} must be a mapping with 'min' and/or 'max'.")
        check_ranges(
            self, analysis_size=(128, 8192), lightening_threshold=(0.0, 100.0),
            min_sharpness=(0.0, None), max_clipped=(0.0, 1.0), n_boot=(1, 100_000), seed=SEED_RANGE,
        )  # fmt: skip
        if not all(0.0 <= v <= 100.0 for v in self.exposure_range):
            raise WorkbenchError(f"exposure_range={self.exposure_range} must lie within 0-100 (CIELAB L*).")
