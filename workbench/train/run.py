"""The train stage: one tracked run from the intake dataset to a registered LoRA.

``run_train(subject, config, workspace=ws)`` is what the CLI, the app, notebooks and studies call; under
``accelerate launch`` every process runs it and only the main one talks to MLflow and writes the outputs.
Outputs land in the subject's LoRA run folder, whose layout :mod:`workbench.workspace.loras` owns.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.errors import WorkbenchError
from workbench.models import ModelSource, resolve_model
from workbench.stage import Progress, StageEvents, StageResult, StageStopped, tracked_stage
from workbench.tracking import SUBJECT_TAG
from workbench.train import checkpoint as ckpt
from workbench.train import data as D
from workbench.train import export, trainer, validation
from workbench.train.config import TrainConfig
from workbench.workspace import Workspace
from workbench.workspace.locks import run_lock
from workbench.workspace.loras import LoraRun, find_resumable, lora_run, registered_model_name

log = logging.getLogger(__name__)
METRIC_FLUSH_STEPS = 10  # MLflow writes are batched: one SQLite transaction per 10 steps, not per step


@dataclass(kw_only=True)
class TrainResult(StageResult):
    """``out_dir`` is the LoRA run folder (see :mod:`workbench.workspace.loras`)."""

    run_name: str
    lora_file: Path
    kohya_file: Path | None
    embeddings_file: Path | None
    steps: int
    final_loss: float
    seconds: float
    steps_per_second: float
    model_version: str | None = None
    validation: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


def run_train(
    subject: str,
    config: TrainConfig | None = None,
    *,
    workspace: Workspace,
    events: StageEvents | None = None,
    resume: bool = False,
    run_name: str | None = None,
) -> TrainResult | None:
    """Train a DreamBooth-LoRA for ``subject`` and log, export and register it.

    With ``resume=True`` the newest unfinished run continues from its last checkpoint, with its own config
    (``config``, when given, replaces it: pass the stored one with a few fields changed). Under ``accelerate
    launch`` the secondary processes return None: the main one writes and reports.
    """
    from accelerate.utils import broadcast_object_list

    events = events or StageEvents()
    if resume:
        run = find_resumable(workspace, subject)
        config = config or TrainConfig.from_yaml(run.config_file)
    config = config or TrainConfig()
    accelerator = trainer.make_accelerator(config)
    if not resume:
        name = [run_name or workspace.new_run_name("train")]
        broadcast_object_list(name)  # every process must write into the same folder
        run = lora_run(workspace, subject, name[0])
    subject_record = workspace.read_subject(subject)
    tracking = contextlib.nullcontext()
    if accelerator.is_main_process:
        tags = {"workbench.resumed": str(resume).lower()}
        tracking = tracked_stage("train", subject, config, workspace=workspace, events=events,
                                 run_name=run.name, tags=tags)  # fmt: skip
    with _locked(run, resume, accelerator.is_main_process), tracking as active:
        result = _train(workspace, subject, subject_record, config, accelerator, run, resume, active, events)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return result


@contextlib.contextmanager
def _locked(run: LoraRun, resume: bool, main: bool):
    """The run folder's lock (main process only): two ``--resume`` of one run must not both train and register."""
    if not main:
        yield
        return
    with run_lock(run.dir, "train"):
        if resume and run.finished:  # another resume finished it while this one was starting
            raise WorkbenchError(f"Training run {run.name} has already finished: nothing to resume.")
        yield


def _train(
    workspace: Workspace,
    subject: str,
    subject_record: dict[str, Any],
    config: TrainConfig,
    accelerator: Any,
    run: LoraRun,
    resume: bool,
    active: Any,
    events: StageEvents,
) -> TrainResult | None:
    main = accelerator.is_main_process
    with accelerator.main_process_first():  # the first process builds/caches the tiny model, the rest read it
        source = resolve_model(config.model, workspace.cache_dir)
    resolution = config.resolution or source.resolution
    # A batch that cannot fit is refused with its estimate here, before the OS kills the process mid-run.
    config.check_memory(source.family, resolution, tiny=source.is_tiny)
    examples = D.read_dataset(workspace.dataset_dir(subject), resolution)
    token, class_word = D.subject_identity(subject_record, examples, config.instance_token, config.class_word)
    config = config.replace(instance_token=token, class_word=class_word)
    prompts = D.instance_prompts(examples, config.instance_prompt, token, class_word)
    if main:
        run.dir.mkdir(parents=True, exist_ok=True)
        config.save_yaml(run.config_file)

    class_images = (
        _class_image_maker(workspace, source, config, accelerator) if config.with_prior_preservation else None
    )
    session = trainer.setup(config, source, examples, prompts, accelerator, class_images)
    latest = ckpt.latest_checkpoint(run.checkpoints) if resume else None
    if latest is not None:
        trainer.restore(session, latest)
        log.info("resumed %s from %s", run.name, latest.name)
    if main and active is not None:
        import mlflow

        relative = run.dir.relative_to(workspace.root).as_posix()  # the workspace may be moved later
        mlflow.set_tags({"workbench.resumed_from_step": str(session.step), "workbench.lora_dir": relative})

    tracker = _Tracker(session, workspace, subject, main, events)
    hooks = trainer.Hooks(
        on_step=tracker.on_step,
        on_checkpoint=lambda s: trainer.save(s, run.checkpoints),
        on_validate=tracker.on_validate,
    )
    start_step, started = session.step, time.perf_counter()
    try:
        trainer.fit(session, hooks)
    except StageStopped:
        # A cancelled run stays resumable from where it stopped. Only a cooperative stop: it comes between
        # steps, while Ctrl-C may land mid-step, where a checkpoint would break bit-identical resumes.
        if session.step > start_step:
            trainer.save(session, run.checkpoints)
        raise
    finally:
        tracker.flush()
    seconds = time.perf_counter() - started
    accelerator.wait_for_everyone()
    result = None
    if main:
        result = _finish(session, workspace, subject, run, active, tracker, seconds, start_step)
    accelerator.wait_for_everyone()
    return result


class _Tracker:
    """Step metrics (batched) and validation (grid image + likeness) into the active MLflow run; progress and
    stop requests through the stage events."""

    def __init__(
        self, session: trainer.Session, workspace: Workspace, subject: str, main: bool, events: StageEvents
    ):
        self.main = main
        self.events = events
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

    def on_step(self, s: trainer.Session, loss: float, seconds: float) -> None:
        if self.main:
            self.events.progress(
                Progress("train", s.step, s.config.max_train_steps, message=f"loss={loss:.4f}")
            )
            self.pending.append(
                (s.step, {"loss": loss, "lr": s.lr_scheduler.get_last_lr()[0], "step_time_s": seconds})
            )
            if len(self.pending) >= METRIC_FLUSH_STEPS:
                self.flush()
        if s.step < s.config.max_train_steps:
            self.events.raise_if_stopped()  # between steps: the interrupted step is done and can be saved

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
            loss = {"train_loss": float(np.mean(s.history[-10:]))} if s.history else {}
            self.events.validated("train", s.step, {**result.metrics, **loss})
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
    run: LoraRun,
    active: Any,
    tracker: _Tracker,
    seconds: float,
    start_step: int,
) -> TrainResult:
    cfg = s.config
    lora_file, kohya_file, emb_file = _export(s, subject, run)
    steps_done = s.step - start_step
    result = TrainResult(
        run_id=active.info.run_id if active else "", out_dir=run.dir, run_name=run.name, lora_file=lora_file,
        kohya_file=kohya_file, embeddings_file=emb_file, steps=s.step,
        final_loss=float(np.mean(s.history[-10:])) if s.history else float("nan"), seconds=seconds,
        steps_per_second=steps_done / seconds if seconds > 0 else 0.0, validation=tracker.latest_validation,
    )  # fmt: skip
    if active is not None:
        import mlflow

        for file in (lora_file, kohya_file, emb_file, run.config_file):
            if file is not None:
                mlflow.log_artifact(str(file), artifact_path="lora")
        mlflow.log_metrics({"steps_per_second": result.steps_per_second, "train_seconds": seconds})
        if cfg.register_model:
            result.model_version = _register(subject, active.info.run_id, s.components.family, cfg)
    run.write_summary(result.to_dict())  # marks the run finished
    if active is not None:
        mlflow.log_artifact(str(run.summary_file), artifact_path="lora")
    return result


def _export(s: trainer.Session, subject: str, run: LoraRun) -> tuple[Path, Path | None, Path | None]:
    """The diffusers LoRA, and the kohya export and pivotal embeddings when the config asks for them."""
    cfg, acc = s.config, s.accelerator
    unet = acc.unwrap_model(s.unet)
    encoders = {}
    if cfg.train_text_encoder:
        names = ["text_encoder", "text_encoder_2"]
        encoders = {n: acc.unwrap_model(e) for n, e in zip(names, s.text_encoders, strict=False)}
    lora_file = export.save_diffusers_lora(run.dir, s.components.family, unet, encoders)
    kohya_file = emb_file = None
    if cfg.export_kohya:
        kohya_file = export.export_kohya(lora_file, run.kohya_file(subject), s.components.family, cfg.alpha)
    if cfg.pivotal_tuning:
        emb_file = export.save_embeddings(
            run.embeddings_file(subject),
            trainer.C.new_token_embeddings(s.components),
            s.components.new_tokens,
        )
    return lora_file, kohya_file, emb_file


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
