"""One selfie to headshots, tuning-free: intake of one photo -> IP-Adapter generation -> evaluation.

    from workbench.quick import QuickConfig, run_quick
    result = run_quick("selfie.jpg", QuickConfig(model="sdxl", presets=["executive"], count=8), workspace=ws)
    result.first_image_s, result.images

The CLI (``workbench quick``) and the app's One selfie tab both call :func:`run_quick`. The three stages are
the ordinary stage functions, nested under one parent MLflow run (``quick``); the photo goes through the same
checks as any intake, and a rejected selfie stops the flow with intake's own advice. The latency figure is the
user's: from the moment the photo is handed over to the moment the first headshot is on disk (model loading
included), then the time per image after it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from workbench.config import StageConfig
from workbench.config import field as option
from workbench.errors import WorkbenchError
from workbench.stage import Progress, StageEvents, StageResult
from workbench.workspace import Workspace


@dataclass
class QuickConfig(StageConfig):
    subject_id: str = option(
        "selfie", help="Subject id the selfie is filed under (re-running replaces its photo)."
    )
    model: str = option(
        "tiny", help="Model preset (tiny, tiny-sdxl, sd15, sdxl), hub id or local diffusers folder."
    )
    identity: Literal["ip-adapter-face", "ip-adapter-faceid"] = option(
        "ip-adapter-face",
        help="Tuning-free method: ip-adapter-face (the face crop through CLIP; needs no extra face model) or "
        "ip-adapter-faceid (a face-recognition embedding; the published weights need insightface).",
    )
    ip_adapter: str = option("auto", help="IP-Adapter weights (auto, tiny, hub id, file or folder).")
    ip_adapter_scale: float = option(0.7, help="Strength of the face adapter (0 = off, 1 = full).")
    presets: list[str] = option(default_factory=lambda: ["corporate"], help="Style presets or looks.")
    count: int = option(4, help="Number of headshots.")
    steps: int | None = option(None, help="Denoising steps; none = the preset's (tiny: 4).")
    seed: int = option(0, help="Base seed of the headshots.")
    controls: list[str] = option(default_factory=list, help="ControlNets as in `workbench generate`.")
    device: str = option("auto", help="auto (cuda when present), cpu, cuda...")
    face_backend: Literal["dlib", "mediapipe", "insightface"] = option(
        "dlib", help="Face backend of intake and evaluation (insightface for the published FaceID weights)."
    )
    evaluate: bool = option(True, help="Score the headshots (likeness, skin tone, yield) after generating.")


@dataclass(kw_only=True)
class QuickResult(StageResult):
    """``run_id`` is the parent run; ``out_dir`` the generation run folder."""

    subject: str
    runs: dict[str, str]  # stage -> run id
    images: list[Path]
    first_image_s: float  # photo handed over -> first headshot on disk
    per_image_s: float | None  # mean time of each headshot after the first
    timings_s: dict[str, float]
    metrics: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    report: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "parent_run_id": self.run_id, "subject": self.subject, "runs": self.runs, "out_dir": str(self.out_dir),
            "images": [str(p) for p in self.images], "first_image_s": round(self.first_image_s, 3),
            "per_image_s": None if self.per_image_s is None else round(self.per_image_s, 3),
            "timings_s": {k: round(v, 3) for k, v in self.timings_s.items()}, "metrics": self.metrics,
            "warnings": self.warnings, "report": str(self.report) if self.report else None,
        }  # fmt: skip


class _Clock(StageEvents):
    """Forwards every event to the caller's hooks and notes when each headshot is saved."""

    def __init__(self, inner: StageEvents) -> None:
        super().__init__()
        self.inner = inner
        self.saved_at: list[float] = []

    def run_started(self, stage: str, run_id: str) -> None:
        self.inner.run_started(stage, run_id)

    def progress(self, update: Progress) -> None:
        if update.stage == "generate" and update.item is not None:
            self.saved_at.append(time.perf_counter())
        self.inner.progress(update)

    def run_finished(self, stage: str, run_id: str, status: str) -> None:
        self.inner.run_finished(stage, run_id, status)

    def should_stop(self) -> bool:
        return self.inner.should_stop() or super().should_stop()


def run_quick(
    photo: str | Path,
    config: QuickConfig | None = None,
    *,
    workspace: Workspace,
    events: StageEvents | None = None,
) -> QuickResult:
    """One selfie in, ``config.count`` tuning-free headshots out (with scores), under one parent MLflow run."""
    from workbench.evaluate import EvalConfig, run_eval
    from workbench.generate import GenerateConfig, run_generate
    from workbench.intake import IntakeConfig, run_intake
    from workbench.models import resolve_model
    from workbench.tracking import stage_run

    started = time.perf_counter()
    config = config or QuickConfig()
    clock = _Clock(events or StageEvents())
    photo = Path(photo).expanduser()
    if not photo.is_file():
        raise WorkbenchError(f"No photo at {photo}: pass the path of one selfie (JPEG, PNG, HEIC...).")
    subject = config.subject_id
    source = resolve_model(config.model, workspace.cache_dir)
    generate = GenerateConfig(
        model=config.model, identity=config.identity, ip_adapter=config.ip_adapter,
        ip_adapter_scale=config.ip_adapter_scale, presets=list(config.presets), count=config.count,
        steps=config.steps or (4 if source.is_tiny else None), seed=config.seed, controls=list(config.controls),
        device=config.device, batch_size=1,  # one image per call: the first headshot is out as soon as possible
    )  # fmt: skip
    timings: dict[str, float] = {}
    runs: dict[str, str] = {}
    with stage_run(workspace, "quick", config, subject_id=subject, run_name="quick") as parent:
        import mlflow

        # One photo is the whole set: the set-size advice (15-20 photos for a LoRA) does not apply here.
        intake_config = IntakeConfig(
            resolution=source.resolution, face_backend=config.face_backend, min_photos=1
        )
        intake = run_intake(subject, intake_config, workspace=workspace, events=clock, photos=[photo])
        runs["intake"] = intake.run_id
        report = intake.photos[0]
        if not report.accepted:
            raise WorkbenchError(f"The selfie was not accepted: {' '.join(report.reasons)}")
        timings["intake"] = time.perf_counter() - started
        generated = run_generate(subject, generate, workspace=workspace, events=clock)
        runs["generate"] = generated.run_id
        timings["generate"] = time.perf_counter() - started - timings["intake"]
        first = clock.saved_at[0] - started if clock.saved_at else float("nan")
        saved = clock.saved_at
        per_image = (saved[-1] - saved[0]) / (len(saved) - 1) if len(saved) > 1 else None
        metrics: dict[str, float] = {"first_image_s": first, "load_s": generated.load_seconds}
        if per_image is not None:
            metrics["per_image_s"] = per_image
        report_path = None
        if config.evaluate:
            evaluated = run_eval(subject, EvalConfig(face_backend=config.face_backend), workspace=workspace,
                                 events=clock, images=generated.out_dir)  # fmt: skip
            runs["eval"] = evaluated.run_id
            timings["eval"] = time.perf_counter() - started - timings["intake"] - timings["generate"]
            report_path = evaluated.files.markdown if evaluated.files else None
            metrics.update({f"eval.{k}": v for k, v in evaluated.metrics.items() if v == v})
        timings["total"] = time.perf_counter() - started
        mlflow.log_metrics(
            {**{k: v for k, v in metrics.items() if v == v}, **{f"{k}_s": v for k, v in timings.items()}}
        )
    return QuickResult(
        run_id=parent.info.run_id, out_dir=generated.out_dir, subject=subject, runs=runs, images=generated.images,
        first_image_s=first, per_image_s=per_image, timings_s=timings, metrics=metrics,
        warnings=list(report.warnings), report=report_path,
    )  # fmt: skip


def format_quick(result: QuickResult, notice: str = "") -> str:
    """The terminal summary: latency first (what the user waited for), then the files and scores."""
    lines = [f"{len(result.images)} headshots of '{result.subject}' in {result.out_dir}", ""]
    lines.append(f"  first headshot   {result.first_image_s:.2f} s after the photo (model loading included)")
    if result.per_image_s is not None:
        lines.append(f"  each one after   {result.per_image_s:.2f} s")
    lines += [f"  {stage:<16} {seconds:.2f} s" for stage, seconds in result.timings_s.items()]
    keys = ("eval.likeness.verification_rate", "eval.likeness.centroid_distance", "eval.skin.delta_L",
            "eval.ranking.usable_yield")  # fmt: skip
    shown = [k for k in keys if k in result.metrics]
    if shown:
        lines += ["", "Scores (95% CI):"]
        for key in shown:
            lo, hi = result.metrics.get(key + ".lo"), result.metrics.get(key + ".hi")
            interval = f"  [{lo:.3g}, {hi:.3g}]" if lo is not None and hi is not None else ""
            lines.append(f"  {key.removeprefix('eval.'):<32} {result.metrics[key]:.3g}{interval}")
    if result.warnings:
        lines += ["", "Advice on the photo:"] + [f"  - {w}" for w in result.warnings]
    if result.report:
        lines += ["", f"Report: {result.report}"]
    lines.append(f"Parent MLflow run: {result.run_id}")
    if notice:
        lines += ["", "NOTE: " + notice]
    return "\n".join(lines)
