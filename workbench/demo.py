"""The offline end-to-end demo: real face photos in, a LoRA trained, headshots generated, scores out.

It runs on the ``tiny`` preset (random weights) so it works on any machine without a model hub: every stage,
every MLflow run and every artifact is real, but the generated images are noise. The summary says so, and
says how to run the same flow with real weights.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from workbench.config import SEED_RANGE, StageConfig, check_ranges, field
from workbench.errors import WorkbenchError
from workbench.stage import StageEvents
from workbench.tracking import stage_run, tracking_uri
from workbench.workspace import Workspace, validate_subject_id

NOISE_NOTICE = (
    "The 'tiny' preset has random weights: the generated images are noise and likeness is expected to fail. "
    "This run proves the pipeline end to end; for real headshots run the same stages with "
    "--model sd15 or --model sdxl (weights in the local Hugging Face cache) or --model /path/to/diffusers-folder."
)


@dataclass
class DemoConfig(StageConfig):
    subject_id: str = field("demo", help="Subject id the demo photos are filed under.")
    model: str = field("tiny", help="Model preset, hub id or folder (tiny runs offline in seconds).")
    train_recipe: str = field(
        "tiny-demo", help="Training recipe: a name in experiments/train/ or a YAML path."
    )
    train_steps: int = field(30, help="LoRA training steps (overrides the recipe).")
    presets: list[str] = field(
        default_factory=lambda: ["corporate", "executive"], help="Style presets or looks to generate."
    )
    images_per_preset: int = field(2, help="Images generated per preset.")
    generate_steps: int = field(4, help="Denoising steps per image (tiny needs few; real models ~30).")
    seed: int = field(0, help="Seed of training and generation.")

    def __post_init__(self) -> None:
        validate_subject_id(self.subject_id)
        check_ranges(
            self,
            train_steps=(1, 100_000),
            images_per_preset=(1, 100),
            generate_steps=(1, 1000),
            seed=SEED_RANGE,
        )
        if not self.presets:
            raise WorkbenchError("The demo needs at least one preset or look to generate.")


@dataclass
class DemoSummary:
    parent_run_id: str
    runs: dict[str, str]  # stage -> run id
    metrics: dict[str, float]
    paths: dict[str, str]
    timings_s: dict[str, float]
    tracking_uri: str
    mlflow_ui: str
    notice: str
    # The evaluation's headline figures as the report words them: "est [lo, hi]", "too few (n=...)" or why none.
    evaluation: list[dict[str, Any]] = dataclass_field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def sample_photo_set(folder: Path) -> list[Path]:
    """A small photo set of one real person from a portrait that ships in scikit-image.

    The variations (mirror, zoom, small rotation, exposure and white balance) stand in for separate photos;
    they differ enough for the near-duplicate check, which is itself part of what the demo shows. The last one
    is the held-out photo (only one photo of this person ships offline, so it is another view of it).
    """
    from skimage import data

    base = Image.fromarray(data.astronaut())
    variants = {
        "original.jpg": base,
        "mirrored.jpg": ImageOps.mirror(base),
        "closer.jpg": base.crop((96, 16, 352, 272)).resize((448, 448), Image.Resampling.LANCZOS),
        "tilted.jpg": base.rotate(8, resample=Image.Resampling.BICUBIC, fillcolor=(40, 40, 40)),
        "warm-light.jpg": _white_balance(ImageOps.mirror(base.crop((48, 0, 432, 384))), (1.08, 1.0, 0.9)),
        "brighter.jpg": ImageEnhance.Brightness(base.crop((32, 32, 480, 480))).enhance(1.15),
        # Given last, so intake's holdout=1 keeps it out of training: the eval's unseen photo of the subject.
        "holdout-cool-light.jpg": _white_balance(
            base.rotate(-5, resample=Image.Resampling.BICUBIC, fillcolor=(40, 40, 40)).crop(
                (24, 8, 472, 456)
            ),
            (0.94, 1.0, 1.07),
        ),
    }
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, image in variants.items():
        path = folder / name
        image.convert("RGB").save(path, quality=92)
        paths.append(path)
    return paths


def _white_balance(image: Image.Image, gains: tuple[float, float, float]) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float32) * np.array(gains, dtype=np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def mlflow_ui_command(workspace: Workspace) -> str:
    uri = tracking_uri(workspace)
    if uri.startswith("sqlite:///"):
        # The environment's own mlflow, so the command works without activating the venv.
        local = Path(sys.executable).with_name("mlflow")
        mlflow_bin = str(local) if local.is_file() else "mlflow"
        return f"{mlflow_bin} ui --backend-store-uri {uri} --port 5000  # then open http://127.0.0.1:5000"
    return f"open your tracking server: {uri}"


def run_demo(config: DemoConfig, workspace: Workspace, events: StageEvents | None = None) -> DemoSummary:
    """intake -> train -> generate -> evaluate, each a nested MLflow run under one parent 'demo' run."""
    import mlflow

    from workbench.evaluate import EvalConfig, run_eval
    from workbench.generate import GenerateConfig, run_generate
    from workbench.intake import IntakeConfig, run_intake
    from workbench.models import resolve_model
    from workbench.train import TrainConfig, run_train

    subject, events = config.subject_id, events or StageEvents()
    source = resolve_model(config.model, workspace.cache_dir)
    timings: dict[str, float] = {}
    with stage_run(workspace, "demo", config, subject_id=subject, run_name="demo") as parent:
        start = time.perf_counter()
        # The photos live only in the subject's folder (intake copies them there), so `forget` erases them all.
        with tempfile.TemporaryDirectory(prefix="workbench-demo-") as upload:
            photos = sample_photo_set(Path(upload))
            intake = run_intake(subject, IntakeConfig(resolution=source.resolution, holdout=1),
                                workspace=workspace, events=events, photos=photos)  # fmt: skip
        timings["intake"], start = time.perf_counter() - start, time.perf_counter()
        train_config = TrainConfig.from_yaml(config.train_recipe).replace(
            model=config.model, max_train_steps=config.train_steps, seed=config.seed
        )
        trained = run_train(subject, train_config, workspace=workspace, events=events)
        timings["train"], start = time.perf_counter() - start, time.perf_counter()
        generate_config = GenerateConfig(
            model=config.model, lora=str(trained.lora_file), presets=config.presets,
            count=config.images_per_preset * len(config.presets), steps=config.generate_steps, seed=config.seed,
        )  # fmt: skip
        generated = run_generate(subject, generate_config, workspace=workspace, events=events)
        timings["generate"], start = time.perf_counter() - start, time.perf_counter()
        evaluated = run_eval(
            subject, EvalConfig(), workspace=workspace, events=events, images=generated.out_dir
        )
        timings["evaluate"] = time.perf_counter() - start
        mlflow.log_metrics({f"{stage}_seconds": seconds for stage, seconds in timings.items()})
        results = {"intake": intake, "train": trained, "generate": generated, "evaluate": evaluated}
        summary = DemoSummary(
            parent_run_id=parent.info.run_id,
            runs={stage: result.run_id for stage, result in results.items()},
            metrics=_demo_metrics(intake, trained, generated, evaluated),
            paths={
                "dataset": str(intake.dataset_dir),
                "lora": str(trained.lora_file),
                "images": str(generated.out_dir),
                "report": str(evaluated.out_dir),
            },  # fmt: skip
            timings_s={k: round(v, 2) for k, v in timings.items()},
            tracking_uri=tracking_uri(workspace),
            mlflow_ui=mlflow_ui_command(workspace),
            notice=NOISE_NOTICE if source.is_tiny else "",
            evaluation=_evaluation_rows(evaluated),
        )
    return summary


def _evaluation_rows(evaluated) -> list[dict[str, Any]]:
    from workbench.evaluate.report import summary_frame

    frame = summary_frame(evaluated.summary)
    return [{k: (None if v != v else v) for k, v in row.items()} for row in frame.to_dict("records")]


def _demo_metrics(intake, trained, generated, evaluated) -> dict[str, float]:
    return {
        "intake.n_accepted": float(intake.n_accepted),
        "intake.n_photos": float(len(intake.photos)),
        "train.final_loss": float(trained.final_loss),
        "train.steps_per_second": float(trained.steps_per_second),
        "generate.n_images": float(len(generated.records)),
        **{f"eval.{k}": float(v) for k, v in evaluated.metrics.items() if _is_number(v)},
    }


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and value == value  # NaN metrics (nothing to measure) are left out


def format_summary(summary: DemoSummary) -> str:
    lines = ["Headshot Workbench demo finished.", ""]
    for stage, run_id in summary.runs.items():
        lines.append(f"  {stage:<9} run {run_id}  ({summary.timings_s.get(stage, 0):.1f} s)")
    metrics = summary.metrics
    lines += ["", "Stages:"]
    lines += [f"  {key:<32} {metrics[key]:.4g}" for key in sorted(metrics) if not key.startswith("eval.")]
    lines += [
        "",
        "Evaluation (estimate [95% CI], n, CI method; below the minimum n the report says too few):",
    ]
    for row in summary.evaluation:
        n = "" if row.get("n") is None else f"n={int(row['n'])}, {row['CI method']}"
        lines.append(f"  {row['section'] + '.' + row['metric']:<32} {row['estimate [CI]']}  {n}".rstrip())
    lines += ["", "Files:"] + [f"  {k:<8} {v}" for k, v in summary.paths.items()]
    lines += ["", f"Parent MLflow run: {summary.parent_run_id}", f"Browse it: {summary.mlflow_ui}"]
    if summary.notice:
        lines += ["", "NOTE: " + summary.notice]
    return "\n".join(lines)
