"""The train stage: one tracked run from the intake dataset to a registered LoRA.

``train_lora(workspace, subject, config)`` is what the CLI, the UI and notebooks call; under
``accelerate launch`` every process runs it and only the main one talks to MLflow and writes the outputs.
Outputs land in ``subjects/<id>/loras/<run>/``::

    pytorch_lora_weights.safetensors   diffusers format (pipe.load_lora_weights(folder))
    <subject>_kohya.safetensors        kohya format (ComfyUI, AUTOMATIC1111)
    <subject>_emb.safetensors          pivotal-tuning embeddings (only with pivotal_tuning)
    train.yaml, summary.json           the resolved config, and figures of the run
    checkpoints/checkpoint-<step>/     resumable state (``--resume``)
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.errors import WorkbenchError
from workbench.models import ModelSource, resolve_model
from workbench.tracking import SUBJECT_TAG
from workbench.train import checkpoint as ckpt
from workbench.train import data as D
from workbench.train import export, trainer, validation
from workbench.train.config import TrainConfig
from workbench.workspace import Workspace

log = logging.getLogger(__name__)
CONFIG_FILE = "train.yaml"
SUMMARY_FILE = "summary.json"
METRIC_FLUSH_STEPS = 10  # MLflow writes are batched: one SQLite transaction per 10 steps, not per step


@dataclass
class TrainResult:
    run_id: str | None
    run_name: str
    lora_dir: str
    lora_file: str
    kohya_file: str | None
    embeddings_file: str | None
    steps: int
    final_loss: float
    seconds: float
    steps_per_second: float
    model_version: str | None
    validation: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def registered_model_name(subject: str) -> str:
    """The MLflow registry name of a subject's LoRAs (one version per training run)."""
    return subject


def find_resumable(workspace: Workspace, subject: str) -> Path:
    """The newest run of ``subject`` that started but did not finish."""
    root = workspace.subject_path(subject, "loras")
    runs = sorted(
        (p for p in root.glob("*") if (p / CONFIG_FILE).is_file() and not (p / SUMMARY_FILE).is_file()),
        key=lambda p: p.name,
    ) if root.is_dir() else []  # fmt: skip
    if not runs:
        raise WorkbenchError(
            f"Nothing to resume for subject '{subject}': no unfinished training run in {root}. "
            "Start a new run without --resume."
        )
    return runs[-1]


def train_lora(
    workspace: Workspace,
    subject: str,
    config: TrainConfig | None = None,
    *,
    resume: bool = False,
    run_name: str | None = None,
) -> TrainResult:
    """Train a DreamBooth-LoRA for ``subject`` and log, export and register it.

    With ``resume=True`` the newest unfinished run continues from its last checkpoint, with its own config
    (``config``, when given, replaces it: pass the stored one with a few fields changed).
    """
    from accelerate.utils import broadcast_object_list

    if resume:
        run_dir = find_resumable(workspace, subject)
        config = config or TrainConfig.from_yaml(run_dir / CONFIG_FILE)
    config = config or TrainConfig()
    accelerator = trainer.make_accelerator(config)
    if not resume:
        name = [run_name or workspace.new_run_name("train")]
        broadcast_object_list(name)  # every process must write into the same folder
        run_dir = workspace.lora_dir(subject, name[0])
    subject_record = workspace.read_subject(subject)
    tags = {"workbench.resumed": str(resume).lower()}
    tracking = (
        _tracking(workspace, subject, config, run_dir.name, tags) if accelerator.is_main_process else None
    )
    with tracking or contextlib.nullcontext() as active:
        result = _train(workspace, subject, subject_record, config, accelerator, run_dir, resume, active)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return result


def _tracking(workspace: Workspace, subject: str, config: TrainConfig, run_name: str, tags: dict[str, str]):
    from workbench.tracking import stage_run

    return stage_run(workspace, "train", config, subject_id=subject, run_name=run_name, tags=tags)


def _train(
    workspace: Workspace,
    subject: str,
    subject_record: dict[str, Any],
    config: TrainConfig,
    accelerator: Any,
    run_dir: Path,
    resume: bool,
    active: Any,
) -> TrainResult:
    main = accelerator.is_main_process
    with accelerator.main_process_first():  # the first process builds/caches the tiny model, the rest read it
        source = resolve_model(config.model, workspace.cache_dir)
    resolution = config.resolution or source.resolution
    examples = D.read_dataset(workspace.dataset_dir(subject), resolution)
    token, class_word = D.subject_identity(subject_record, examples, config.instance_token, config.class_word)
    config = config.replace(instance_token=token, class_word=class_word)
    prompts = D.instance_prompts(examples, config.instance_prompt, token, class_word)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        config.save_yaml(run_dir / CONFIG_FILE)

    class_images = (
        _class_image_maker(workspace, source, config, accelerator) if config.with_prior_preservation else None
    )
    session = trainer.setup(config, source, examples, prompts, accelerator, class_images)
    checkpoints = run_dir / "checkpoints"
    latest = ckpt.latest_checkpoint(checkpoints) if resume else None
    if latest is not None:
        trainer.restore(session, latest)
        log.info("resumed %s from %s", run_dir.name, latest.name)
    if main and active is not None:
        import mlflow

        mlflow.set_tags(
            {"workbench.resumed_from_step": str(session.step), "workbench.lora_dir": str(run_dir)}
        )

    tracker = _Tracker(session, workspace, subject, source, main)
    hooks = trainer.Hooks(
        on_step=tracker.on_step,
        on_checkpoint=lambda s: trainer.save(s, checkpoints),
        on_validate=tracker.on_validate,
    )
    start_step, started = session.step, time.perf_counter()
    trainer.fit(session, hooks)
    seconds = time.perf_counter() - started
    tracker.flush()
    tracker.progress.close()
    accelerator.wait_for_everyone()
    result = None
    if main:
        result = _finish(session, workspace, subject, run_dir, active, tracker, seconds, start_step)
    accelerator.wait_for_everyone()
    return result or _placeholder(run_dir, session, seconds)


class _Tracker:
    """Step metrics (batched) and validation (grid image + likeness) into the active MLflow run."""

    def __init__(
        self, session: trainer.Session, workspace: Workspace, subject: str, source: ModelSource, main: bool
    ):
        self.main = main
        self.pending: list[tuple[int, dict[str, float]]] = []
        self.latest_validation: dict[str, float] = {}
        self.references = validation.load_references(workspace.intake_dir(subject))
        cfg = session.config
        instance = f"{cfg.instance_token} {cfg.class_word}"
        prompts = [p.format(instance=instance) for p in cfg.validation_prompts]
        if cfg.pivotal_tuning:
            prompts = [
                trainer.pivotal_prompt(p, cfg.instance_token or "", session.components.new_tokens)
                for p in prompts
            ]
        self.prompts = prompts
        from tqdm.auto import tqdm

        self.progress = tqdm(
            total=cfg.max_train_steps, initial=session.step, desc="train", unit="step", disable=not main,
            dynamic_ncols=True,
        )  # fmt: skip

    def on_step(self, s: trainer.Session, loss: float, seconds: float) -> None:
        if not self.main:
            return
        self.progress.update(1)
        self.progress.set_postfix(loss=f"{loss:.4f}", refresh=False)
        self.pending.append(
            (s.step, {"loss": loss, "lr": s.lr_scheduler.get_last_lr()[0], "step_time_s": seconds})
        )
        if len(self.pending) >= METRIC_FLUSH_STEPS:
            self.flush()

    def flush(self) -> None:
        if not self.main or not self.pending:
            return
        import mlflow
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [
            Metric(k, float(v), stamp, step) for step, values in self.pending for k, v in values.items()
        ]
        mlflow.MlflowClient().log_batch(mlflow.active_run().info.run_id, metrics=metrics)
        self.pending.clear()

    def on_validate(self, s: trainer.Session) -> None:
        if self.main and self.prompts:
            cfg = s.config
            for module in s.trained_modules:
                module.eval()
            try:
                with s.accelerator.autocast():
                    result = validation.run_validation(
                        trainer.validation_pipeline(s), self.prompts, seed=cfg.seed,
                        steps=cfg.validation_inference_steps, guidance=cfg.validation_guidance_scale,
                        resolution=s.resolution, references=self.references, backend=cfg.face_backend,
                    )  # fmt: skip
            finally:
                for module in s.trained_modules:
                    module.train()
            self.latest_validation = result.metrics
            self.flush()
            import mlflow

            mlflow.log_image(result.grid, artifact_file=f"validation/step-{s.step:06d}.png")
            mlflow.log_metrics({f"val_{k}": v for k, v in result.metrics.items()}, step=s.step)
        s.accelerator.wait_for_everyone()


def _class_image_maker(workspace: Workspace, source: ModelSource, config: TrainConfig, accelerator: Any):
    """A callback for ``trainer.setup``: generate (main process, once, cached) and read the class images."""
    prompt = config.class_prompt or f"a photo of a {config.class_word}"

    def make(components, resolution: int):
        pipe = None
        if accelerator.is_main_process:
            pipe = trainer.C.build_pipeline(
                components, components.unet, components.text_encoders, components.unet.dtype
            )

        def generate(i: int):
            out = pipe(
                prompt, num_inference_steps=config.class_inference_steps, height=resolution, width=resolution,
                generator=torch.Generator("cpu").manual_seed(i),
            )  # fmt: skip
            return out.images[0]

        key = f"{source.location}|{source.family}"
        with accelerator.main_process_first(), torch.random.fork_rng(devices=[]):
            images = D.ensure_class_images(
                workspace.cache_dir, key, prompt, config.num_class_images, resolution, generate
            )
        return images, prompt

    return make


def _finish(
    s: trainer.Session,
    workspace: Workspace,
    subject: str,
    run_dir: Path,
    active: Any,
    tracker: _Tracker,
    seconds: float,
    start_step: int,
) -> TrainResult:
    import mlflow

    cfg, acc = s.config, s.accelerator
    unet = acc.unwrap_model(s.unet)
    encoders = {}
    if cfg.train_text_encoder:
        names = ["text_encoder", "text_encoder_2"]
        encoders = {n: acc.unwrap_model(e) for n, e in zip(names, s.text_encoders, strict=False)}
    lora_file = export.save_diffusers_lora(run_dir, s.components.family, unet, encoders)
    kohya_file = emb_file = None
    if cfg.export_kohya:
        kohya_file = export.export_kohya(
            lora_file, run_dir / f"{subject}_kohya.safetensors", s.components.family, cfg.alpha
        )
    if cfg.pivotal_tuning:
        emb_file = export.save_embeddings(
            run_dir / f"{subject}_emb.safetensors",
            trainer.C.new_token_embeddings(s.components),
            s.components.new_tokens,
        )
    steps_done = s.step - start_step
    result = TrainResult(
        run_id=active.info.run_id if active else None, run_name=run_dir.name, lora_dir=str(run_dir),
        lora_file=str(lora_file), kohya_file=str(kohya_file) if kohya_file else None,
        embeddings_file=str(emb_file) if emb_file else None, steps=s.step,
        final_loss=float(np.mean(s.history[-10:])) if s.history else float("nan"), seconds=seconds,
        steps_per_second=steps_done / seconds if seconds > 0 else 0.0, model_version=None,
        validation=tracker.latest_validation,
    )  # fmt: skip
    if active is not None:
        for file in (lora_file, kohya_file, emb_file, run_dir / CONFIG_FILE):
            if file is not None:
                mlflow.log_artifact(str(file), artifact_path="lora")
        mlflow.log_metrics({"steps_per_second": result.steps_per_second, "train_seconds": seconds})
        if cfg.register_model:
            result.model_version = _register(subject, active.info.run_id, s.components.family, cfg)
    (run_dir / SUMMARY_FILE).write_text(json.dumps(result.to_dict(), indent=2))  # marks the run finished
    if active is not None:
        mlflow.log_artifact(str(run_dir / SUMMARY_FILE), artifact_path="lora")
    return result


def _register(subject: str, run_id: str, family: str, cfg: TrainConfig) -> str:
    """A new version of the subject's registered model, pointing at this run's ``lora`` artifact folder."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    name = registered_model_name(subject)
    try:
        client.create_registered_model(name, tags={SUBJECT_TAG: subject, "workbench.kind": "lora"})
    except MlflowException as exc:
        if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
            raise
    version = client.create_model_version(
        name, source=mlflow.get_artifact_uri("lora"), run_id=run_id,
        tags={"family": family, "base_model": cfg.model, "rank": str(cfg.rank), "token": cfg.instance_token or ""},
    )  # fmt: skip
    return str(version.version)


def _placeholder(run_dir: Path, s: trainer.Session, seconds: float) -> TrainResult:
    """What a non-main process returns (it wrote nothing)."""
    final = float(np.mean(s.history[-10:])) if s.history else float("nan")
    return TrainResult(
        None, run_dir.name, str(run_dir), "", None, None, s.step, final, seconds, 0.0, None, {}
    )
