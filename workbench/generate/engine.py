"""The diffusers pipeline behind a batch: model + LoRA + ControlNets + scheduler + the GPU speed path.

``build_engine(config)`` loads everything once; ``engine.run(...)`` draws one batched pipeline call. Noise is
always drawn from CPU generators (one per image), so a seed means the same starting latents on every device
and an image can be regenerated from its seed alone.

Speed path (on by default on CUDA, off on CPU where it does not help):
bf16 weights; PyTorch SDPA attention (``AttnProcessor2_0``); the LoRA fused into the weights and fused QKV
projections; channels_last memory format; optional ``torch.compile`` of the UNet (and ControlNet); VAE slicing
for batches and tiling for very large images.
"""

from __future__ import annotations

import hashlib
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from workbench.errors import WorkbenchError
from workbench.generate.config import GenerateConfig
from workbench.generate.controlnet import (
    ControlSpec,
    conditioning_image,
    controlnet_source,
    load_controlnet,
    parse_control,
    parse_model_overrides,
)
from workbench.models.sources import ModelSource, load_pipeline, pipeline_class, resolve_model
from workbench.workspace import Workspace
from workbench.workspace.loras import lora_identity, resolve_lora

# name -> (diffusers class, extra config); all built with X.from_config(pipe.scheduler.config, **extra).
SCHEDULER_CLASSES: dict[str, tuple[str, dict[str, Any]]] = {
    "ddim": ("DDIMScheduler", {}),
    "dpmpp-2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "dpmpp-2m-karras": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
    ),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler-a": ("EulerAncestralDiscreteScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
}
ADAPTER = "subject"


@dataclass
class Control:
    spec: ControlSpec
    source: str  # where the ControlNet weights came from
    image: Image.Image  # the conditioning image at the output size

    def record(self) -> dict[str, Any]:
        reference = self.spec.reference
        ref_hash = None if reference.startswith("pose:") else sha256_file(Path(reference).expanduser())
        return {
            "spec": self.spec.describe(), "type": self.spec.type, "reference": reference,
            "reference_sha256": ref_hash, "scale": self.spec.scale, "start": self.spec.start,
            "end": self.spec.end, "controlnet": self.source,
            "conditioning_sha256": hashlib.sha256(self.image.tobytes()).hexdigest(),
        }  # fmt: skip


@dataclass
class Engine:
    pipe: Any
    source: ModelSource
    size: int
    device: torch.device
    dtype: torch.dtype
    controls: list[Control] = field(default_factory=list)
    lora_file: Path | None = None
    lora_record: str | None = None  # how provenance names the LoRA: relative to the workspace when inside it
    lora_sha256: str | None = None
    lora_scale: float = 1.0
    identity: Any = None  # a tuning-free Identity (workbench.generate.identity), or None
    speed: dict[str, Any] = field(default_factory=dict)
    load_seconds: float = 0.0
    _base_scheduler: Any = None

    def set_scheduler(self, name: str | None) -> str:
        """Swap the sampler (``None`` = the model's own); returns the class name in use."""
        import diffusers

        base = self._base_scheduler
        if name is None:
            self.pipe.scheduler = type(base).from_config(base.config)
        else:
            class_name, extra = SCHEDULER_CLASSES[name]
            self.pipe.scheduler = getattr(diffusers, class_name).from_config(base.config, **extra)
        return type(self.pipe.scheduler).__name__

    def run(
        self,
        prompt: str,
        negative_prompt: str,
        seeds: list[int],
        *,
        steps: int,
        guidance_scale: float,
        scheduler: str | None,
    ) -> list[Image.Image]:
        """One batched pipeline call: ``len(seeds)`` images of the same prompt, one CPU generator per image."""
        self.set_scheduler(scheduler)
        n = len(seeds)
        kwargs: dict[str, Any] = {
            "prompt": [prompt] * n,
            "negative_prompt": [negative_prompt] * n,
            "num_inference_steps": steps,
            "guidance_scale": guidance_scale,
            "height": self.size,
            "width": self.size,
            "generator": [torch.Generator("cpu").manual_seed(int(s)) for s in seeds],
            "output_type": "pil",
        }
        if self.controls:
            multi = len(self.controls) > 1
            images = [c.image for c in self.controls]
            kwargs["image"] = images if multi else images[0]
            kwargs["controlnet_conditioning_scale"] = (
                [c.spec.scale for c in self.controls] if multi else (self.controls[0].spec.scale)
            )
            kwargs["control_guidance_start"] = [c.spec.start for c in self.controls]
            kwargs["control_guidance_end"] = [c.spec.end for c in self.controls]
        if self.identity is not None:
            kwargs.update(self.identity.pipeline_kwargs(guidance=guidance_scale > 1))
        with torch.inference_mode():
            return list(self.pipe(**kwargs).images)

    def describe(self) -> dict[str, Any]:
        """The parts of the provenance record that the engine decides."""
        return {
            "model": self.source.spec, "model_kind": self.source.kind, "model_location": self.source.location,
            "family": self.source.family, "lora": self.lora_record,
            "lora_sha256": self.lora_sha256, "lora_scale": self.lora_scale if self.lora_file else None,
            "controls": [c.record() for c in self.controls], "width": self.size, "height": self.size,
            "device": str(self.device), "dtype": str(self.dtype).removeprefix("torch."), "speed": self.speed,
            "identity": self.identity_record(),
            "noise": "torch.Generator('cpu').manual_seed(seed), one per image",
        }  # fmt: skip

    def identity_record(self) -> dict[str, Any]:
        """The identity method of every image: the LoRA, a tuning-free adapter with its references, or none."""
        if self.identity is not None:
            return self.identity.record()
        if self.lora_file is not None:
            return {"method": "lora", "adapter": self.lora_record, "adapter_sha256": self.lora_sha256,
                    "scale": self.lora_scale, "references": []}  # fmt: skip
        return {"method": "none", "adapter": None, "adapter_sha256": None, "scale": None, "references": []}


def build_engine(
    config: GenerateConfig, workspace: Workspace | None = None, *, subject: str | None = None
) -> Engine:
    """Load the model, ControlNets and the identity (LoRA or tuning-free adapter of ``subject``) once."""
    from workbench.generate.identity import attach_identity

    workspace = workspace or Workspace.resolve()
    started = time.perf_counter()
    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    source = resolve_model(config.model, workspace.cache_dir)
    size = config.resolution or source.resolution
    specs = [parse_control(c) for c in config.controls]
    with _quiet_diffusers():
        pipe = load_pipeline(source, torch_dtype=dtype, device="cpu")
        controls: list[Control] = []
        if specs:
            pipe, controls = _add_controlnets(pipe, source, specs, config, size, dtype)
        pipe.set_progress_bar_config(disable=True)  # the batch shows one bar for the whole run
        lora_file = sha = None
        if config.lora:
            lora_file = resolve_lora(config.lora, workspace)
            sha = sha256_file(lora_file)
            _load_lora(pipe, lora_file, config.lora_scale)
            _load_pivotal_tokens(pipe, lora_file)
        pipe.to(device)
        identity = attach_identity(pipe, config, source, workspace, subject)
        speed = apply_speed_path(pipe, config, device, size, has_lora=lora_file is not None,
                                 has_ip_adapter=identity is not None)  # fmt: skip
    engine = Engine(
        pipe=pipe, source=source, size=size, device=device, dtype=dtype, controls=controls,
        lora_file=lora_file, lora_sha256=sha, lora_scale=config.lora_scale, identity=identity, speed=speed,
        lora_record=workspace.relative(lora_file) if lora_file else None,  # a moved workspace keeps its names
    )  # fmt: skip
    engine._base_scheduler = pipe.scheduler
    engine.load_seconds = time.perf_counter() - started
    return engine


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise WorkbenchError(f"device={name} asked for CUDA, but no CUDA device is visible: use device=cpu.")
    return device


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, name)


def _add_controlnets(
    pipe: Any,
    source: ModelSource,
    specs: list[ControlSpec],
    config: GenerateConfig,
    size: int,
    dtype: torch.dtype,
) -> tuple[Any, list[Control]]:
    from diffusers.models.controlnets import MultiControlNetModel

    overrides = parse_model_overrides(config.controlnet_models)
    nets, controls = [], []
    for spec in specs:
        where = controlnet_source(spec.type, source.family, overrides, source.is_tiny)
        # Built from the base UNet before the LoRA is attached, so a tiny ControlNet never copies LoRA layers.
        nets.append(
            load_controlnet(where, unet=pipe.unet, vae_scale_factor=pipe.vae_scale_factor, dtype=dtype)
        )
        controls.append(Control(spec, where, conditioning_image(spec, size, config.depth_model)))
    controlnet = nets[0] if len(nets) == 1 else MultiControlNetModel(nets)
    control_pipe = pipeline_class(source.family, controlnet=True).from_pipe(pipe, controlnet=controlnet)
    return control_pipe, controls


def _load_pivotal_tokens(pipe: Any, lora_file: Path) -> None:
    """A LoRA trained with pivotal tuning needs its new token embeddings, or its prompts mean nothing."""
    from workbench.train.export import load_embeddings_into

    embeddings = lora_identity(lora_file).embeddings_file
    if embeddings is not None:
        load_embeddings_into(pipe, embeddings)


def _load_lora(pipe: Any, lora_file: Path, scale: float) -> None:
    try:
        pipe.load_lora_weights(str(lora_file.parent), weight_name=lora_file.name, adapter_name=ADAPTER)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise WorkbenchError(
            f"LoRA {lora_file} does not fit this model ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
            "check that it was trained on the same base (SD 1.5 vs SDXL)."
        ) from exc
    pipe.set_adapters([ADAPTER], adapter_weights=[scale])


def apply_speed_path(
    pipe: Any,
    config: GenerateConfig,
    device: torch.device,
    size: int,
    *,
    has_lora: bool,
    has_ip_adapter: bool = False,
) -> dict:
    """Apply the speed switches (``None`` = on with CUDA); returns what was applied, for the provenance record.

    With an IP-Adapter the UNet keeps its ``IPAdapterAttnProcessor2_0`` (already SDPA): replacing its
    processors or fusing its QKV would drop the adapter's image cross-attention.
    """
    from diffusers.models.attention_processor import AttnProcessor2_0

    cuda = device.type == "cuda"
    fuse = cuda if config.fuse_qkv is None else config.fuse_qkv
    channels_last = cuda if config.channels_last is None else config.channels_last
    slicing = cuda if config.vae_slicing is None else config.vae_slicing
    tiling = size >= 1536 if config.vae_tiling is None else config.vae_tiling
    nets = [pipe.unet, *_controlnets(pipe)]
    for net in nets[1:] if has_ip_adapter else nets:
        net.set_attn_processor(AttnProcessor2_0())  # PyTorch's fused SDPA kernels (flash / mem-efficient)
    if fuse:
        if has_lora:
            # Baking the LoRA in removes its extra matmuls; the adapter layers are then dropped.
            pipe.fuse_lora(lora_scale=config.lora_scale, adapter_names=[ADAPTER])
            pipe.unload_lora_weights()
        if not has_ip_adapter:
            pipe.unet.fuse_qkv_projections()
        pipe.vae.fuse_qkv_projections()
    if channels_last:
        for module in [*nets, pipe.vae]:
            module.to(memory_format=torch.channels_last)
    if slicing:
        pipe.vae.enable_slicing()
    if tiling:
        pipe.vae.enable_tiling()
    if config.compile:
        _compile(pipe)
    return {
        "sdpa": True, "fuse_qkv": fuse, "lora_fused": bool(fuse and has_lora), "channels_last": channels_last,
        "vae_slicing": slicing, "vae_tiling": tiling, "compile": config.compile,
    }  # fmt: skip


def _controlnets(pipe: Any) -> list[Any]:
    net = getattr(pipe, "controlnet", None)
    if net is None:
        return []
    return list(getattr(net, "nets", [net]))


def _compile(pipe: Any) -> None:
    # The inductor settings diffusers' SDXL speed guide uses; compile time is paid by the first batch only.
    import torch._inductor.config as inductor

    inductor.conv_1x1_as_mm = True
    inductor.coordinate_descent_tuning = True
    inductor.epilogue_fusion = False
    inductor.coordinate_descent_check_all_directions = True
    pipe.unet = torch.compile(pipe.unet, mode="max-autotune", fullgraph=True)
    pipe.vae.decode = torch.compile(pipe.vae.decode, mode="max-autotune", fullgraph=True)


@lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    stat = path.stat()
    return _sha256_cached(str(path), stat.st_size, stat.st_mtime_ns)


@contextmanager
def _quiet_diffusers():
    """Loading prints component progress bars and dtype notes; the batch has its own progress bar."""
    from diffusers.utils import logging as dlogging
    from transformers.utils import logging as tlogging

    before = dlogging.get_verbosity(), tlogging.get_verbosity()
    bars = tlogging.is_progress_bar_enabled()
    dlogging.set_verbosity_error()
    dlogging.disable_progress_bar()
    tlogging.set_verbosity_error()
    tlogging.disable_progress_bar()
    try:
        yield
    finally:
        dlogging.set_verbosity(before[0])
        dlogging.enable_progress_bar()
        tlogging.set_verbosity(before[1])
        if bars:
            tlogging.enable_progress_bar()
