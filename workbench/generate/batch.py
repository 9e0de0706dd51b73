"""A batch of variations: plan -> generate (resumable) -> contact sheet and MLflow run.

The plan crosses the chosen presets (one per category; several per category are varied) and cycles the
combinations over ``count`` images; image ``i`` gets seed ``seed + i`` (or ``seeds[i]``) and combination
``i % n_combos``. Images of one combination are drawn in batched pipeline calls of ``batch_size``.

Each image is written atomically, then one line is appended (and flushed to disk) to ``manifest.jsonl`` in the
run folder, so an interrupted batch resumes where it stopped: rerunning with the same ``run_name`` skips every
image that is both recorded and present on disk. A resumed run must keep the settings of the images it keeps;
``count`` may grow.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from workbench.errors import WorkbenchError
from workbench.generate.config import GenerateConfig
from workbench.generate.presets import load_presets
from workbench.generate.prompts import PromptJob, build_job, subject_words
from workbench.generate.provenance import apply_watermark, read_provenance, save_png
from workbench.workspace import Workspace

log = logging.getLogger(__name__)
MANIFEST = "manifest.jsonl"
# Fields a kept image must share with the current plan for a resume to be allowed.
_RESUME_KEYS = (
    "seed",
    "prompt",
    "negative_prompt",
    "steps",
    "guidance_scale",
    "scheduler",
    "model",
    "lora_sha256",
)


@dataclass(frozen=True)
class PlannedImage:
    index: int
    seed: int
    job: PromptJob

    @property
    def file(self) -> str:
        return f"{self.index:04d}-seed{self.seed}.png"


@dataclass
class BatchResult:
    run_dir: Path
    records: list[dict[str, Any]]  # every image of the run (kept and new), by index
    generated: int
    skipped: int
    mlflow_run_id: str | None
    seconds: float  # sampling + saving time of the new images (model loading excluded)
    load_seconds: float
    contact_sheet: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def images(self) -> list[Path]:
        return [self.run_dir / r["file"] for r in self.records]


def plan_images(config: GenerateConfig, subject: dict[str, Any] | None, family: str) -> list[PlannedImage]:
    library = load_presets(config.style_dirs)
    combos = library.expand(config.presets)
    token, class_word = subject_words(subject)
    jobs = [
        build_job(
            combo,
            token=token,
            class_word=class_word,
            family=family,
            template=config.prompt_template,
            negative=config.negative_prompt,
            steps=config.steps,
            guidance_scale=config.guidance_scale,
            scheduler=config.scheduler,
        )  # fmt: skip
        for combo in combos
    ]
    return [PlannedImage(i, seed, jobs[i % len(jobs)]) for i, seed in enumerate(config.image_seeds())]


def read_manifest(run_dir: str | Path) -> list[dict[str, Any]]:
    """The run's image records, one per index (the last line for an index wins), sorted by index.

    A torn last line (the process died mid-write) is ignored.
    """
    path = Path(run_dir) / MANIFEST
    records: dict[int, dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            records[int(record["index"])] = record
    return [records[i] for i in sorted(records)]


def generate_batch(
    config: GenerateConfig,
    workspace: Workspace | str | None = None,
    *,
    progress: bool = True,
    on_image: Callable[[dict[str, Any]], None] | None = None,
    engine: Any = None,
) -> BatchResult:
    """Generate (or finish) a batch, tracked as one MLflow run; returns the records and timings.

    ``on_image(record)`` is called after each image is saved and recorded (the UI's gallery, tests' interruptions).
    ``engine`` reuses an already built :class:`~workbench.generate.engine.Engine` (it must match the config).
    """
    from workbench.generate.engine import build_engine, resolve_lora
    from workbench.models import resolve_model
    from workbench.tracking import stage_run

    workspace = workspace if isinstance(workspace, Workspace) else Workspace.resolve(workspace)
    if not config.subject:
        raise WorkbenchError("No subject given: pass the subject id (see `workbench intake`).")
    subject = workspace.read_subject(config.subject)
    family = (
        engine.source.family
        if engine is not None
        else resolve_model(config.model, workspace.cache_dir).family
    )
    if config.lora:  # prompts name the subject the way its LoRA was trained to recognise
        from workbench.train.export import lora_identity

        identity = lora_identity(resolve_lora(config.lora, workspace))
        subject = {**subject, "token": identity.get("instance_token") or subject.get("token"),
                   "class_word": identity.get("class_word") or subject.get("class_word")}  # fmt: skip
    plan = plan_images(config, subject, family)  # fails fast on bad presets, before any model loads
    run_name = config.run_name or workspace.new_run_name("generate")
    config = config.replace(run_name=run_name)
    run_dir = workspace.generation_dir(config.subject, run_name)
    run_dir.mkdir(parents=True, exist_ok=True)
    kept = {r["index"]: r for r in read_manifest(run_dir) if (run_dir / r["file"]).is_file()}
    todo = [p for p in plan if p.index not in kept]
    config.save_yaml(run_dir / "generate.yaml")

    tags = {"workbench.run_dir": str(run_dir), "workbench.resumed": str(bool(kept)).lower()}
    with stage_run(
        workspace, "generate", config, subject_id=config.subject, run_name=run_name, tags=tags
    ) as run:
        engine = engine or build_engine(config, workspace)
        _check_resume(kept, plan, engine)
        records, seconds = _render(config, engine, todo, run_dir, kept, progress, on_image)
        sheet = contact_sheet([run_dir / r["file"] for r in records], [_label(r) for r in records])
        sheet_path = run_dir / "contact_sheet.png"
        sheet.save(sheet_path)
        timings = _log_run(run_dir, sheet_path, len(todo), len(kept), seconds, engine, config.log_images)
    return BatchResult(
        run_dir=run_dir, records=records, generated=len(todo), skipped=len(kept), mlflow_run_id=run.info.run_id,
        seconds=seconds, load_seconds=engine.load_seconds, contact_sheet=sheet_path, timings=timings,
    )  # fmt: skip


def _check_resume(kept: dict[int, dict[str, Any]], plan: list[PlannedImage], engine: Any) -> None:
    if not kept:
        return
    planned = {p.index: p for p in plan}
    now = engine.describe()
    for index, record in kept.items():
        if index not in planned:
            continue  # a shorter rerun keeps the extra images; they are simply not redrawn
        job, seed = planned[index].job, planned[index].seed
        expected = {
            "seed": seed, "prompt": job.prompt, "negative_prompt": job.negative_prompt, "steps": job.steps,
            "guidance_scale": job.guidance_scale, "scheduler": job.scheduler, "model": now["model"],
            "lora_sha256": now["lora_sha256"],
        }  # fmt: skip
        changed = [k for k in _RESUME_KEYS if record.get(k) != expected[k]]
        if changed:
            raise WorkbenchError(
                f"Cannot resume: image {index} of this run was made with a different {', '.join(changed)}. "
                "Resume with the run's original settings (its generate.yaml), or choose a new run name."
            )


def _render(
    config: GenerateConfig,
    engine: Any,
    todo: list[PlannedImage],
    run_dir: Path,
    kept: dict[int, dict[str, Any]],
    progress: bool,
    on_image: Callable[[dict[str, Any]], None] | None,
) -> tuple[list[dict[str, Any]], float]:
    from tqdm.auto import tqdm

    records = dict(kept)
    total = len(todo) + len(kept)
    bar = tqdm(total=total, initial=len(kept), desc="generate", unit="img", disable=not progress)
    groups: dict[PromptJob, list[PlannedImage]] = {}
    for item in todo:
        groups.setdefault(item.job, []).append(item)
    base = engine.describe()
    seconds = 0.0
    with open(run_dir / MANIFEST, "a") as manifest:
        for job, items in groups.items():
            for start in range(0, len(items), config.batch_size):
                chunk = items[start : start + config.batch_size]
                seeds = [p.seed for p in chunk]
                began = time.perf_counter()
                images = engine.run(
                    job.prompt, job.negative_prompt, seeds,
                    steps=job.steps, guidance_scale=job.guidance_scale, scheduler=job.scheduler,
                )  # fmt: skip
                scheduler_class = type(engine.pipe.scheduler).__name__
                per_image = (time.perf_counter() - began) / len(chunk)
                for position, (item, image) in enumerate(zip(chunk, images, strict=True)):
                    t0 = time.perf_counter()
                    params = {
                        **base, "subject": config.subject, "run": config.run_name, "index": item.index,
                        "seed": item.seed, "batch_seeds": seeds, "batch_index": position,
                        "presets": list(job.presets), "prompt": job.prompt, "negative_prompt": job.negative_prompt,
                        "steps": job.steps, "guidance_scale": job.guidance_scale, "scheduler": job.scheduler,
                        "scheduler_class": scheduler_class, "created_at": _now(),
                    }  # fmt: skip
                    watermark = None
                    if config.watermark:
                        image, watermark = apply_watermark(image)
                    params["watermark"] = watermark
                    save_png(image, run_dir / item.file, params)
                    record = {**params, "file": item.file, "seconds": per_image + time.perf_counter() - t0}
                    manifest.write(json.dumps(record, default=str) + "\n")
                    manifest.flush()
                    os.fsync(manifest.fileno())  # the line is on disk before the next image starts
                    seconds += record["seconds"]
                    records[item.index] = record
                    bar.update(1)
                    if on_image is not None:
                        on_image(record)
    bar.close()
    return [records[i] for i in sorted(records)], seconds


def _log_run(
    run_dir: Path, sheet: Path, generated: int, skipped: int, seconds: float, engine: Any, log_images: bool
) -> dict[str, float]:
    import mlflow

    timings = {
        "images_generated": float(generated), "images_skipped": float(skipped), "load_s": engine.load_seconds,
        "generate_s": seconds,
    }  # fmt: skip
    if generated:
        timings.update(s_per_image=seconds / generated, images_per_s=generated / max(seconds, 1e-9))
    mlflow.log_metrics(timings)
    mlflow.log_artifact(str(sheet))
    mlflow.log_artifact(str(run_dir / MANIFEST))
    if log_images:
        for path in sorted(run_dir.glob("*.png")):
            if path.name != sheet.name:
                mlflow.log_artifact(str(path), artifact_path="images")
    return timings


# -- contact sheet -----------------------------------------------------------------------------------------------
def contact_sheet(
    paths: list[Path], labels: list[str], *, thumb: int = 160, columns: int | None = None
) -> Image.Image:
    """A grid of thumbnails with a caption under each (seed and presets)."""
    if not paths:
        return Image.new("RGB", (thumb, thumb), (255, 255, 255))
    columns = columns or min(len(paths), 8)
    rows = -(-len(paths) // columns)
    caption = 14
    sheet = Image.new("RGB", (columns * thumb, rows * (thumb + caption)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, (path, label) in enumerate(zip(paths, labels, strict=True)):
        with Image.open(path) as image:
            tile = image.convert("RGB").resize((thumb, thumb), Image.Resampling.LANCZOS)
        x, y = (i % columns) * thumb, (i // columns) * (thumb + caption)
        sheet.paste(tile, (x, y))
        draw.text((x + 2, y + thumb + 1), label[: thumb // 6], fill=(0, 0, 0))
    return sheet


def _label(record: dict[str, Any]) -> str:
    return f"{record['seed']} " + "/".join(record.get("presets", [])[:2])


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# -- regeneration --------------------------------------------------------------------------------------------------
def regenerate(
    png_path: str | Path,
    workspace: Workspace | str | None = None,
    *,
    exact: bool = True,
    device: str | None = None,
) -> Image.Image:
    """Re-run an image from the parameters in its PNG.

    With ``exact`` (default) the image's whole pipeline call is redrawn (its ``batch_seeds``) and the image at its
    ``batch_index`` returned, so on the same device and software it is pixel-identical: a batched call's float
    arithmetic can differ in the last bit from a call of one. ``exact=False`` draws the one seed alone.
    """
    from workbench.generate.engine import build_engine, sha256_file

    workspace = workspace if isinstance(workspace, Workspace) else Workspace.resolve(workspace)
    params = read_provenance(png_path)["parameters"]
    if not params:
        raise WorkbenchError(
            f"{png_path} has no workbench generation parameters (was it made by the workbench?)."
        )
    if (
        params.get("lora")
        and Path(params["lora"]).is_file()
        and sha256_file(Path(params["lora"])) != params.get("lora_sha256")
    ):
        raise WorkbenchError(f"The LoRA {params['lora']} changed since the image was made (sha256 differs).")
    for control in params.get("controls", []):
        ref = control["reference"]
        if control.get("reference_sha256") and (
            not Path(ref).is_file() or sha256_file(Path(ref)) != control["reference_sha256"]
        ):
            raise WorkbenchError(
                f"The ControlNet reference {ref} is missing or changed since the image was made."
            )
    speed = params.get("speed", {})
    config = GenerateConfig(
        subject=params.get("subject") or "", model=params["model"], lora=params.get("lora"),
        lora_scale=params.get("lora_scale") or 1.0, count=1, resolution=params["width"],
        controls=[c["spec"] for c in params.get("controls", [])],
        controlnet_models=[f"{c['type']}={c['controlnet']}" for c in params.get("controls", [])],
        device=device or params.get("device", "cpu"), dtype=params.get("dtype", "float32"),
        channels_last=speed.get("channels_last"), fuse_qkv=speed.get("fuse_qkv"),
        vae_slicing=speed.get("vae_slicing"), vae_tiling=speed.get("vae_tiling"),
        compile=bool(speed.get("compile")) and (device or params.get("device", "cpu")) != "cpu",
    )  # fmt: skip
    engine = build_engine(config, workspace)
    seeds = params["batch_seeds"] if exact else [params["seed"]]
    images = engine.run(
        params["prompt"], params["negative_prompt"], seeds,
        steps=params["steps"], guidance_scale=params["guidance_scale"], scheduler=params["scheduler"],
    )  # fmt: skip
    image = images[params["batch_index"] if exact else 0]
    if params.get("watermark"):
        image, _ = apply_watermark(image)
    return image
