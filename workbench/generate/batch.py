"""A batch of variations: plan -> generate (resumable) -> contact sheet and MLflow run.

The plan crosses the chosen presets (one per category; several per category are varied) and cycles the
combinations over ``count`` images; image ``i`` gets seed ``seed + i`` (or ``seeds[i]``) and combination
``i % n_combos``. Images of one combination are drawn in batched pipeline calls of ``batch_size``.

Each image is written atomically, then one line is appended (and flushed to disk) to ``manifest.jsonl`` in the
run folder, so an interrupted batch resumes where it stopped: rerunning with the same ``run_name`` skips every
image that is both recorded and present on disk. A resumed run must keep the settings of the images it keeps;
``count`` may grow. The pipeline calls are cut from the whole plan, so a resumed batch (same config, same
``batch_size``, same machine and software) gives images pixel-identical to an uninterrupted run: a call that was
cut short is redrawn whole (at most ``batch_size - 1`` images of extra work) and its new images saved.
"""

from __future__ import annotations

import logging
import time
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
from workbench.stage import Progress, StageEvents, StageResult, tracked_stage
from workbench.workspace import Workspace
from workbench.workspace.generations import GenerationRun, ImageRecord, generation_run
from workbench.workspace.locks import run_lock

log = logging.getLogger(__name__)
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
# Checked only when the kept image recorded them (images made before identity methods existed have none).
_RESUME_IDENTITY_KEYS = ("method", "adapter_sha256", "scale", "references")


@dataclass(frozen=True)
class PlannedImage:
    index: int
    seed: int
    job: PromptJob

    @property
    def file(self) -> str:
        return f"{self.index:04d}-seed{self.seed}.png"


@dataclass(kw_only=True)
class GenerateResult(StageResult):
    """``out_dir`` is the run folder (see :mod:`workbench.workspace.generations`)."""

    run_name: str
    records: list[ImageRecord]  # every image of the run (kept and new), by index
    generated: int
    skipped: int
    seconds: float  # sampling + saving time of the new images (model loading excluded)
    load_seconds: float
    contact_sheet: Path
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def images(self) -> list[Path]:
        return [self.out_dir / r.file for r in self.records]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "out_dir": str(self.out_dir), "run_name": self.run_name,
            "generated": self.generated, "skipped": self.skipped, "contact_sheet": str(self.contact_sheet),
            "timings": self.timings,
            "images": [{"path": str(self.out_dir / r.file), "index": r.index, "seed": r.seed,
                        "presets": list(r.presets)} for r in self.records],
        }  # fmt: skip


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


def run_generate(
    subject: str,
    config: GenerateConfig | None = None,
    *,
    workspace: Workspace,
    events: StageEvents | None = None,
    engine: Any = None,
) -> GenerateResult:
    """Generate (or finish) a batch of ``subject``, tracked as one MLflow run; returns the records and timings.

    ``events.progress`` gets each image's :class:`ImageRecord` as ``item`` once it is saved and recorded (the
    app's gallery). ``engine`` reuses an already built :class:`~workbench.generate.engine.Engine` (it must
    match the config).
    """
    from workbench.generate.engine import build_engine
    from workbench.models import resolve_model

    config = config or GenerateConfig()
    events = events or StageEvents()
    record = _subject_words(workspace, subject, config)
    source = engine.source if engine is not None else resolve_model(config.model, workspace.cache_dir)
    family = source.family
    config.check_memory(family, config.resolution or source.resolution, tiny=source.is_tiny)
    plan = plan_images(config, record, family)  # fails fast on bad presets, before any model loads
    config = config.replace(run_name=config.run_name or workspace.new_run_name("generate"))
    run = generation_run(workspace, subject, config.run_name)
    # One process per run folder: two batches with one run name would interleave a manifest.
    with run_lock(run.dir, "generate"):
        kept = {r.index: r for r in run.records() if (run.dir / r.file).is_file()}
        todo = [p for p in plan if p.index not in kept]
        config.save_yaml(run.config_file)

        relative = run.dir.relative_to(workspace.root).as_posix()  # the workspace may be moved later
        tags = {"workbench.run_dir": relative, "workbench.resumed": str(bool(kept)).lower()}
        with tracked_stage("generate", subject, config, workspace=workspace, events=events, run_name=run.name,
                           tags=tags) as active:  # fmt: skip
            engine = engine or build_engine(config, workspace, subject=subject)
            _log_identity(engine)
            _check_resume(kept, plan, engine)
            records, seconds = _render(subject, config, engine, plan, run, kept, events)
            sheet = contact_sheet([run.dir / r.file for r in records], [_label(r) for r in records])
            sheet.save(run.contact_sheet)
            timings = _log_run(run, len(todo), len(kept), seconds, engine, config.log_images)
        return GenerateResult(
            run_id=active.info.run_id, out_dir=run.dir, run_name=run.name, records=records, generated=len(todo),
            skipped=len(kept), seconds=seconds, load_seconds=engine.load_seconds, contact_sheet=run.contact_sheet,
            timings=timings,
        )  # fmt: skip


def _subject_words(workspace: Workspace, subject: str, config: GenerateConfig) -> dict[str, Any]:
    """The subject's record, with the token and class word its LoRA was trained with (prompts must match)."""
    from workbench.workspace.loras import lora_identity, resolve_lora

    record = workspace.read_subject(subject)
    if config.lora:
        identity = lora_identity(resolve_lora(config.lora, workspace))
        record = {**record, "token": identity.instance_token or record.get("token"),
                  "class_word": identity.class_word or record.get("class_word")}  # fmt: skip
    return record


def _check_resume(kept: dict[int, ImageRecord], plan: list[PlannedImage], engine: Any) -> None:
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
        changed = [k for k in _RESUME_KEYS if record.params.get(k) != expected[k]]
        kept_identity = record.params.get("identity") or {}
        changed += [f"identity {k}" for k in _RESUME_IDENTITY_KEYS
                    if k in kept_identity and kept_identity[k] != now["identity"].get(k)]  # fmt: skip
        if changed:
            raise WorkbenchError(
                f"Cannot resume: image {index} of this run was made with a different {', '.join(changed)}. "
                "Resume with the run's original settings (its generate.yaml), or choose a new run name."
            )


def _log_identity(engine: Any) -> None:
    """The identity method as resolved (auto -> lora/none) and its adapter, as MLflow params and a tag."""
    import mlflow

    record = engine.identity_record()
    mlflow.log_params({
        "identity.method": record["method"], "identity.adapter": str(record["adapter"]),
        "identity.adapter_sha256": str(record["adapter_sha256"]), "identity.scale": str(record["scale"]),
        "identity.references": ",".join(r["crop"] for r in record["references"]),
        "identity.reference_sha256": ",".join(str(r["source_sha256"]) for r in record["references"])[:6000],
    })  # fmt: skip
    mlflow.set_tag("workbench.identity", record["method"])


def _render(
    subject: str,
    config: GenerateConfig,
    engine: Any,
    plan: list[PlannedImage],
    run: GenerationRun,
    kept: dict[int, ImageRecord],
    events: StageEvents,
) -> tuple[list[ImageRecord], float]:
    """Draw the images of ``plan`` that are not ``kept``.

    The pipeline calls are cut from the *whole* plan (per prompt job, ``batch_size`` at a time), never from what
    is left to do: a batched call's float arithmetic differs in the last bit from a call with other seeds, so a
    resumed batch redraws a partly saved call whole, with the same seeds, keeps the files already saved and
    saves the rest. Its images are then pixel-identical to an uninterrupted run's on the same machine.
    """
    records = dict(kept)
    total = len(records) + sum(p.index not in kept for p in plan)
    groups: dict[PromptJob, list[PlannedImage]] = {}
    for item in plan:
        groups.setdefault(item.job, []).append(item)
    base = {**engine.describe(), "subject": subject, "run": config.run_name}
    seconds = 0.0
    for job, items in groups.items():
        for start in range(0, len(items), config.batch_size):
            chunk = items[start : start + config.batch_size]
            if all(p.index in kept for p in chunk):
                continue
            events.raise_if_stopped()  # between pipeline calls: every saved image is complete and recorded
            seeds = [p.seed for p in chunk]
            began = time.perf_counter()
            images = engine.run(
                job.prompt, job.negative_prompt, seeds,
                steps=job.steps, guidance_scale=job.guidance_scale, scheduler=job.scheduler,
            )  # fmt: skip
            per_image = (time.perf_counter() - began) / len(chunk)
            for position, (item, image) in enumerate(zip(chunk, images, strict=True)):
                if item.index in kept:
                    continue  # redrawn only to keep the call's seeds together; the saved file stays
                record = _save(config, run, item, image, {**base, "batch_seeds": seeds, "batch_index": position,
                               "scheduler_class": type(engine.pipe.scheduler).__name__}, per_image)  # fmt: skip
                seconds += record.seconds
                records[item.index] = record
                events.progress(Progress("generate", len(records), total, unit="img", item=record))
    return [records[i] for i in sorted(records)], seconds


def _save(
    config: GenerateConfig,
    run: GenerationRun,
    item: PlannedImage,
    image: Any,
    base: dict[str, Any],
    sampling_seconds: float,
) -> ImageRecord:
    """Write the PNG with its parameters, then its manifest line (durably, before the next image)."""
    t0 = time.perf_counter()
    job = item.job
    params = {
        **base, "index": item.index, "seed": item.seed, "presets": list(job.presets), "prompt": job.prompt,
        "negative_prompt": job.negative_prompt, "steps": job.steps, "guidance_scale": job.guidance_scale,
        "scheduler": job.scheduler, "created_at": _now(),
    }  # fmt: skip
    watermark = None
    if config.watermark:
        image, watermark = apply_watermark(image)
    params["watermark"] = watermark
    save_png(image, run.dir / item.file, params)
    record = ImageRecord.from_dict(
        {**params, "file": item.file, "seconds": sampling_seconds + time.perf_counter() - t0}
    )
    run.append(record)
    return record


def _log_run(
    run: GenerationRun, generated: int, skipped: int, seconds: float, engine: Any, log_images: bool
) -> dict[str, float]:
    import mlflow

    timings = {
        "images_generated": float(generated), "images_skipped": float(skipped), "load_s": engine.load_seconds,
        "generate_s": seconds,
    }  # fmt: skip
    if generated:
        timings.update(s_per_image=seconds / generated, images_per_s=generated / max(seconds, 1e-9))
    mlflow.log_metrics(timings)
    mlflow.log_artifact(str(run.contact_sheet))
    mlflow.log_artifact(str(run.manifest))
    if log_images:
        for path in run.images():
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


def _label(record: ImageRecord) -> str:
    return f"{record.seed} " + "/".join(record.presets[:2])


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
    # The LoRA is recorded relative to the workspace (which may have moved since).
    lora = str(workspace.absolute(params["lora"])) if params.get("lora") else None
    if lora and Path(lora).is_file() and sha256_file(Path(lora)) != params.get("lora_sha256"):
        raise WorkbenchError(f"The LoRA {params['lora']} changed since the image was made (sha256 differs).")
    for control in params.get("controls", []):
        ref = control["reference"]
        if control.get("reference_sha256") and (
            not Path(ref).is_file() or sha256_file(Path(ref)) != control["reference_sha256"]
        ):
            raise WorkbenchError(
                f"The ControlNet reference {ref} is missing or changed since the image was made."
            )
    identity = params.get("identity") or {}
    spec = identity.get("spec") or {}
    if spec:  # a tuning-free image: the same adapter, scale and reference crops (unchanged since)
        from workbench.generate.identity import check_references

        check_references(workspace, params["subject"], identity["references"])
    speed = params.get("speed", {})
    config = GenerateConfig(
        model=params["model"], lora=lora,
        identity=spec.get("identity", "auto"), ip_adapter=spec.get("ip_adapter", "auto"),
        ip_adapter_weight=spec.get("ip_adapter_weight"), image_encoder=spec.get("image_encoder"),
        ip_adapter_scale=spec.get("ip_adapter_scale", 0.7), references=spec.get("references", []),
        lora_scale=params.get("lora_scale") or 1.0, count=1, resolution=params["width"],
        controls=[c["spec"] for c in params.get("controls", [])],
        controlnet_models=[f"{c['type']}={c['controlnet']}" for c in params.get("controls", [])],
        device=device or params.get("device", "cpu"), dtype=params.get("dtype", "float32"),
        channels_last=speed.get("channels_last"), fuse_qkv=speed.get("fuse_qkv"),
        vae_slicing=speed.get("vae_slicing"), vae_tiling=speed.get("vae_tiling"),
        compile=bool(speed.get("compile")) and (device or params.get("device", "cpu")) != "cpu",
    )  # fmt: skip
    engine = build_engine(config, workspace, subject=params.get("subject"))
    seeds = params["batch_seeds"] if exact else [params["seed"]]
    images = engine.run(
        params["prompt"], params["negative_prompt"], seeds,
        steps=params["steps"], guidance_scale=params["guidance_scale"], scheduler=params["scheduler"],
    )  # fmt: skip
    image = images[params["batch_index"] if exact else 0]
    if params.get("watermark"):
        image, _ = apply_watermark(image)
    return image
