"""The DreamBooth-LoRA training loop: ``setup`` -> ``fit`` (-> ``validate`` every N steps).

Data order and noise come from (seed, step), not from a DataLoader or a running generator: DreamBooth sets are
5-30 images that fit in memory, and deriving each batch from the step number makes "where was I" a single
integer, which is what lets a resumed run reproduce an uninterrupted one bit for bit. The global RNG (LoRA
dropout) is saved and restored with every checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from workbench.errors import TrainingDivergedError
from workbench.models import ModelSource
from workbench.train import checkpoint as ckpt
from workbench.train import components as C
from workbench.train import data as D
from workbench.train.config import TrainConfig
from workbench.train.optim import make_optimizer

log = logging.getLogger(__name__)


@dataclass
class Session:
    """Everything ``fit`` needs; built by ``setup``."""

    config: TrainConfig
    accelerator: Any
    components: C.Components
    unet: Any  # prepared (DDP-wrapped when several processes)
    text_encoders: list[Any]  # prepared when trained, else the frozen ones
    trained_modules: list[Any]  # prepared modules whose parameters the optimizer updates
    optimizer: Any
    lr_scheduler: Any
    weight_dtype: torch.dtype
    resolution: int
    instance: dict[str, Any]  # latents / pixels, prompts or cached embeddings, loss weights
    classes: dict[str, Any] | None
    instance_prompt_ids: list[torch.Tensor] | None = None
    step: int = 0
    history: list[float] = field(default_factory=list)

    @property
    def device(self) -> torch.device:
        return self.accelerator.device


# -- setup ----------------------------------------------------------------------------------------------------
def precision(config: TrainConfig) -> str:
    """fp32 on CPU (autocast there is slow and not bit-stable); bf16 on GPUs that have it, else fp16."""
    if not torch.cuda.is_available():
        return "no"
    if config.mixed_precision != "auto":
        return config.mixed_precision
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def make_accelerator(config: TrainConfig) -> Any:
    from accelerate import Accelerator

    return Accelerator(mixed_precision=precision(config), cpu=not torch.cuda.is_available())


def setup(
    config: TrainConfig,
    source: ModelSource,
    examples: list[D.Example],
    prompts: list[str],
    accelerator: Any,
    class_images: Callable[[C.Components, int], tuple[list[np.ndarray], str]] | None = None,
) -> Session:
    """Load the models, cache what stays fixed, add the adapters, build optimizer and schedule."""
    from accelerate.utils import set_seed
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import cast_training_params

    set_seed(config.seed)
    mixed = accelerator.mixed_precision
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(mixed, torch.float32)
    # SDXL's VAE overflows in fp16 (NaN latents); it runs once per image when latents are cached, so keep fp32.
    vae_dtype = torch.float32 if mixed == "fp16" else weight_dtype
    comps = C.load_components(source, weight_dtype, vae_dtype)
    device = accelerator.device
    for module in (comps.unet, comps.vae, *comps.text_encoders):
        module.to(device)
    resolution = config.resolution or source.resolution

    classes_raw = class_images(comps, resolution) if class_images else None  # base model, before any adapter
    if config.pivotal_tuning:
        tokens = C.add_pivotal_tokens(comps, config.num_new_tokens, config.seed)
        prompts = [pivotal_prompt(p, config.instance_token or "", tokens) for p in prompts]

    latent_size = resolution // (2 ** (len(comps.vae.config.block_out_channels) - 1))
    instance = _prepare_images(comps, config, [e.image for e in examples], device, vae_dtype)
    instance["weights"] = D.loss_weights(examples, latent_size, config.face_loss_weight)
    instance["prompt_ids"] = C.tokenize(comps, prompts)
    classes = None
    if classes_raw is not None:
        images, class_prompt = classes_raw
        classes = _prepare_images(comps, config, images, device, vae_dtype)
        classes["prompt_ids"] = C.tokenize(comps, [class_prompt])
    if not config.trains_text:  # frozen text encoders: encode every prompt once
        for part in (instance, classes) if classes else (instance,):
            with torch.no_grad(), accelerator.autocast():
                part["hidden"], part["pooled"] = C.encode_prompts(
                    comps, comps.text_encoders, part["prompt_ids"], device
                )

    C.add_unet_lora(comps.unet, config)
    trained = [comps.unet]
    if config.train_text_encoder:
        for encoder in comps.text_encoders:
            C.add_text_encoder_lora(encoder, config)
    if config.trains_text:
        trained += comps.text_encoders
    if config.gradient_checkpointing:
        comps.unet.enable_gradient_checkpointing()
        if config.train_text_encoder:
            for encoder in comps.text_encoders:
                encoder.gradient_checkpointing_enable()
    # LoRA weights stay fp32 under mixed precision; autocast runs the matmuls in half precision.
    cast_training_params(trained, dtype=torch.float32)
    groups = _param_groups(config, comps)
    optimizer = make_optimizer(config, groups)
    lr_scheduler = get_scheduler(
        config.lr_scheduler, optimizer=optimizer, num_warmup_steps=config.lr_warmup_steps,
        num_training_steps=config.max_train_steps,
    )  # fmt: skip
    prepared = accelerator.prepare(*trained, optimizer)
    trained_prepared, optimizer = list(prepared[:-1]), prepared[-1]
    unet = trained_prepared[0]
    encoders = trained_prepared[1:] if config.trains_text else comps.text_encoders
    return Session(
        config=config, accelerator=accelerator, components=comps, unet=unet, text_encoders=encoders,
        trained_modules=trained_prepared, optimizer=optimizer, lr_scheduler=lr_scheduler,
        weight_dtype=weight_dtype, resolution=resolution, instance=instance, classes=classes,
    )  # fmt: skip


def pivotal_prompt(prompt: str, token: str, new_tokens: list[str]) -> str:
    """Pivotal tuning swaps the identifier for the new tokens: 'a photo of ohwx man' -> '... <s0><s1> man'."""
    return prompt.replace(token, "".join(new_tokens)) if token else prompt


def _prepare_images(comps: C.Components, config: TrainConfig, images, device, vae_dtype) -> dict[str, Any]:
    """Cache the VAE's latent distribution (mean, std) once, or keep the pixels to encode every step."""
    pixels = D.to_pixels(images)
    if not config.cache_latents:
        return {"pixels": pixels, "count": len(images)}
    means, stds = [], []
    with torch.no_grad():
        for start in range(0, len(pixels), 4):
            dist = comps.vae.encode(pixels[start : start + 4].to(device, vae_dtype)).latent_dist
            means.append(dist.mean.float().cpu())
            stds.append(dist.std.float().cpu())
    return {"mean": torch.cat(means), "std": torch.cat(stds), "count": len(images)}


def _param_groups(config: TrainConfig, comps: C.Components) -> list[dict[str, Any]]:
    groups = [{"params": [p for p in comps.unet.parameters() if p.requires_grad], "lr": config.learning_rate}]
    if config.train_text_encoder:
        lora = [
            p for e in comps.text_encoders for n, p in e.named_parameters() if p.requires_grad and "lora" in n
        ]
        groups.append({"params": lora, "lr": config.text_encoder_lr})
    if config.pivotal_tuning:
        rows = [e.get_input_embeddings().new for e in comps.text_encoders]
        groups.append({"params": rows, "lr": config.text_encoder_lr, "weight_decay": 0.0})
    return groups


# -- one step -------------------------------------------------------------------------------------------------
def batch_indices(seed: int, micro_step: int, count: int, batch: int, rank: int, world: int) -> list[int]:
    """Which examples this process trains on at ``micro_step``: a fresh permutation per epoch, from the seed.

    The sample stream is shared by all processes (each takes its own slice), so two processes see the same
    data per step as one process with twice the batch.
    """
    first = (micro_step * world + rank) * batch
    out = []
    for position in range(first, first + batch):
        epoch, offset = divmod(position, count)
        order = torch.randperm(count, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        out.append(int(order[offset]))
    return out


def step_generator(seed: int, micro_step: int, rank: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + micro_step) * 64 + rank)


def _latents(s: Session, part: dict[str, Any], index: list[int], gen: torch.Generator) -> torch.Tensor:
    vae = s.components.vae
    if "mean" in part:
        mean, std = part["mean"][index], part["std"][index]
    else:
        with torch.no_grad():
            dist = vae.encode(part["pixels"][index].to(s.device, vae.dtype)).latent_dist
        mean, std = dist.mean.float().cpu(), dist.std.float().cpu()
    sample = mean + std * torch.randn(mean.shape, generator=gen)
    return (sample * vae.config.scaling_factor).to(s.device)


def _conditioning(
    s: Session, part: dict[str, Any], index: list[int]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    if "hidden" in part:
        pick = index if part["hidden"].shape[0] > 1 else [0] * len(index)
        pooled = part["pooled"][pick] if part["pooled"] is not None else None
        return part["hidden"][pick], pooled
    ids = [t[index] if t.shape[0] > 1 else t[[0] * len(index)] for t in part["prompt_ids"]]
    return C.encode_prompts(s.components, s.text_encoders, ids, s.device)


def compute_loss(s: Session, micro_step: int) -> torch.Tensor:
    """The DreamBooth loss of one micro-batch: instance MSE (+ prior_loss_weight x class MSE)."""
    cfg, acc = s.config, s.accelerator
    gen = step_generator(cfg.seed, micro_step, acc.process_index)
    index = batch_indices(
        cfg.seed, micro_step, s.instance["count"], cfg.train_batch_size, acc.process_index, acc.num_processes
    )
    parts = [(s.instance, index)]
    if s.classes is not None:
        cls_index = batch_indices(
            cfg.seed + 1,
            micro_step,
            s.classes["count"],
            cfg.train_batch_size,
            acc.process_index,
            acc.num_processes,
        )
        parts.append((s.classes, cls_index))
    latents = torch.cat([_latents(s, part, idx, gen) for part, idx in parts])
    hidden, pooled = zip(*[_conditioning(s, part, idx) for part, idx in parts], strict=True)
    hidden = torch.cat(hidden)
    weights = [
        part["weights"][idx]
        if part.get("weights") is not None
        else torch.ones(len(idx), 1, *latents.shape[2:])
        for part, idx in parts
    ]
    weights = torch.cat(weights).to(s.device)
    if cfg.random_flip:  # mirror latents (the VAE is near flip-equivariant, so cached latents can be flipped)
        flip = (torch.rand(latents.shape[0], generator=gen) < 0.5).to(s.device)[:, None, None, None]
        latents = torch.where(flip, latents.flip(-1), latents)
        weights = torch.where(flip, weights.flip(-1), weights)

    noise = torch.randn(latents.shape, generator=gen)
    if cfg.noise_offset:
        noise += cfg.noise_offset * torch.randn((*latents.shape[:2], 1, 1), generator=gen)
    noise = noise.to(s.device)
    scheduler = s.components.noise_scheduler
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (latents.shape[0],), generator=gen).to(
        s.device
    )
    noisy = scheduler.add_noise(latents, noise, timesteps)
    kwargs: dict[str, Any] = {}
    if s.components.is_sdxl:
        kwargs["added_cond_kwargs"] = {
            "text_embeds": torch.cat(pooled),
            "time_ids": C.sdxl_time_ids(s.resolution, latents.shape[0], s.device),
        }
    pred = s.unet(noisy, timesteps, hidden, **kwargs).sample
    if scheduler.config.prediction_type == "v_prediction":
        target = scheduler.get_velocity(latents, noise, timesteps)
    else:
        target = noise
    per_sample = (F.mse_loss(pred.float(), target.float(), reduction="none") * weights).mean(dim=(1, 2, 3))
    per_sample = per_sample * _snr_weights(cfg, scheduler, timesteps)
    n = len(index)
    loss = per_sample[:n].mean()
    if s.classes is not None:
        loss = loss + cfg.prior_loss_weight * per_sample[n:].mean()
    return loss


def _snr_weights(cfg: TrainConfig, scheduler: Any, timesteps: torch.Tensor) -> torch.Tensor | float:
    """Min-SNR-gamma (Hang et al. 2023): min(SNR, gamma) / SNR for epsilon, / (SNR + 1) for v-prediction."""
    if cfg.snr_gamma is None:
        return 1.0
    from diffusers.training_utils import compute_snr

    snr = compute_snr(scheduler, timesteps)
    clipped = torch.clamp(snr, max=cfg.snr_gamma)
    return clipped / (snr + 1) if scheduler.config.prediction_type == "v_prediction" else clipped / snr


def optimizer_step(s: Session) -> float:
    """Accumulate ``gradient_accumulation_steps`` micro-batches, then one optimizer + LR step."""
    cfg, acc = s.config, s.accelerator
    accum = cfg.gradient_accumulation_steps
    total = torch.zeros((), device=s.device)
    for k in range(accum):
        with contextlib.ExitStack() as stack:
            if k < accum - 1:  # only the last micro-batch all-reduces gradients
                for module in s.trained_modules:
                    stack.enter_context(acc.no_sync(module))
            loss = compute_loss(s, s.step * accum + k)
            acc.backward(loss / accum)
        total += loss.detach() / accum
    value = float(acc.reduce(total, reduction="mean"))
    if not math.isfinite(value):
        lr = s.lr_scheduler.get_last_lr()[0]
        raise TrainingDivergedError(
            f"The loss became {value} at step {s.step + 1}: training diverged. Lower learning_rate (now {lr:g}), "
            "keep max_grad_norm above 0, or use mixed_precision=bf16 or no instead of fp16."
        )
    if cfg.max_grad_norm > 0:
        params = [p for g in s.optimizer.param_groups for p in g["params"]]
        acc.clip_grad_norm_(params, cfg.max_grad_norm)
    s.optimizer.step()
    s.lr_scheduler.step()
    s.optimizer.zero_grad(set_to_none=True)
    return value


# -- state for checkpoints -------------------------------------------------------------------------------------
def trainable_state(s: Session) -> dict[str, torch.Tensor]:
    names = ["unet", "text_encoder", "text_encoder_2"]
    state = {}
    for name, module in zip(names, s.trained_modules, strict=False):
        for key, param in s.accelerator.unwrap_model(module).named_parameters():
            if param.requires_grad:
                state[f"{name}.{key}"] = param
    return state


def save(s: Session, folder: Path) -> None:
    """Write a checkpoint of the current step (every process saves its RNG; the main one the rest)."""
    acc = s.accelerator
    if acc.is_main_process:
        ckpt.staging_dir(folder, s.step).mkdir(parents=True, exist_ok=True)
    acc.wait_for_everyone()
    ckpt.write_rng(folder, s.step, acc.process_index)
    acc.wait_for_everyone()
    if acc.is_main_process:
        extra = {"history": s.history, "world_size": acc.num_processes}
        ckpt.save_checkpoint(
            folder,
            s.step,
            trainable_state(s),
            s.optimizer,
            s.lr_scheduler,
            extra,
            s.config.checkpoints_total_limit,
        )
    acc.wait_for_everyone()


def restore(s: Session, path: Path) -> None:
    data = ckpt.load_checkpoint(path, s.accelerator.process_index)
    params = trainable_state(s)
    missing = sorted(set(params) - set(data["trainable"]))
    if missing:
        raise RuntimeError(f"checkpoint {path} lacks {missing[:3]}...: it was written by a different config")
    with torch.no_grad():
        for key, param in params.items():
            param.copy_(data["trainable"][key].to(param.device, param.dtype))
    s.optimizer.load_state_dict(data["optimizer"])
    s.lr_scheduler.load_state_dict(data["scheduler"])
    if data["rng"] is not None:
        ckpt.set_rng_state(data["rng"])
    s.step = int(data["state"]["step"])
    s.history = list(data["state"].get("history", []))


# -- the loop -------------------------------------------------------------------------------------------------
@dataclass
class Hooks:
    """What ``fit`` calls around the steps; the stage runner fills these with MLflow logging."""

    on_step: Callable[[Session, float, float], None] = lambda s, loss, seconds: None
    on_checkpoint: Callable[[Session], None] = lambda s: None
    on_validate: Callable[[Session], None] = lambda s: None


def fit(s: Session, hooks: Hooks | None = None) -> None:
    """Train from ``s.step`` to ``max_train_steps``, checkpointing and validating on schedule."""
    hooks = hooks or Hooks()
    cfg = s.config
    for module in s.trained_modules:
        module.train()
    while s.step < cfg.max_train_steps:
        start = time.perf_counter()
        loss = optimizer_step(s)
        s.step += 1
        s.history.append(loss)
        hooks.on_step(s, loss, time.perf_counter() - start)
        last = s.step == cfg.max_train_steps
        if cfg.checkpointing_steps and (s.step % cfg.checkpointing_steps == 0) and not last:
            hooks.on_checkpoint(s)
        if (cfg.validation_steps and s.step % cfg.validation_steps == 0) or last:
            hooks.on_validate(s)


def validation_pipeline(s: Session) -> Any:
    acc = s.accelerator
    unet = acc.unwrap_model(s.unet)
    encoders = [acc.unwrap_model(e) for e in s.text_encoders]
    return C.build_pipeline(s.components, unet, encoders, s.weight_dtype)
