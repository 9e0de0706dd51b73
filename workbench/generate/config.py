"""The generate stage's typed config: what to draw, how many, with which model, LoRA, ControlNets and speed-ups.

Every field is logged to MLflow (flat) and as ``generate.yaml``; ``GenerateConfig.from_yaml`` re-runs a batch.
``None`` means "let the presets decide, else the model's default" for sampling settings, and "pick what is
fast on this device" for the speed switches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from workbench.config import SEED_RANGE, StageConfig, check_ranges, field, machine_memory_gb
from workbench.errors import WorkbenchError
from workbench.workspace.layout import validate_run_name

SCHEDULERS = ("ddim", "dpmpp-2m", "dpmpp-2m-karras", "euler", "euler-a", "unipc")
IdentityName = Literal["auto", "lora", "ip-adapter-face", "ip-adapter-faceid"]
SchedulerName = Literal["ddim", "dpmpp-2m", "dpmpp-2m-karras", "euler", "euler-a", "unipc"]
DEFAULT_PRESETS = ("corporate",)
MAX_COUNT = 1000  # a typo guard (count=20000 would run for days), not a product limit
MAX_BATCH_SIZE = 256  # images per pipeline call; more only runs out of memory
_DEVICE = re.compile(r"auto|cpu|(cuda|xpu|mps)(:\d{1,2})?")


@dataclass
class GenerateConfig(StageConfig):
    model: str = field("tiny", help="Preset (tiny, tiny-sdxl, sd15, sdxl), hub id or local diffusers folder.")
    lora: str | None = field(
        None, help="LoRA: a .safetensors file, a folder holding one, or mlflow:<run_id>; none = base model."
    )
    lora_scale: float = field(1.0, help="Strength of the LoRA (0 = off, 1 = as trained).")
    identity: IdentityName = field(
        "auto",
        help="How the subject's likeness gets in: lora (a trained LoRA), ip-adapter-face (tuning-free: the "
        "aligned face crops through a CLIP image encoder), ip-adapter-faceid (tuning-free: a face-recognition "
        "embedding); auto = lora when a LoRA is given, else none (the base model).",
    )
    ip_adapter: str = field(
        "auto",
        help="IP-Adapter weights: auto (tiny on tiny models, else the published h94 weights for the method and "
        "model family), tiny, a hub id, or a .safetensors/.bin file or a folder holding one.",
    )
    ip_adapter_weight: str | None = field(
        None,
        help="File inside the hub repo or folder (e.g. sdxl_models/ip-adapter-plus-face_sdxl_vit-h.safetensors); "
        "none = the published file for the method and family.",
    )
    ip_adapter_scale: float = field(
        0.7,
        help="Strength of the face adapter: 0 = off (exactly the no-adapter image), 1 = full; 0.5-0.8 keeps "
        "the prompt's style and lighting while holding the likeness.",
    )
    image_encoder: str | None = field(
        None,
        help="CLIP image encoder for ip-adapter-face: hub_id:subfolder, hub id or folder; none = the adapter's "
        "own (h94/IP-Adapter:models/image_encoder, ViT-H).",
    )
    references: list[str] = field(
        default_factory=list,
        help="Which of the subject's aligned crops (dataset file names, e.g. 000.png) are the identity "
        "references of a tuning-free method (averaged); empty = every accepted photo.",
    )
    presets: list[str] = field(
        default_factory=lambda: list(DEFAULT_PRESETS),
        help="Style presets by name (looks expand to their members); several per category are varied across.",
    )
    style_dirs: list[str] = field(
        default_factory=list,
        help="Extra folders of style YAML files; a preset there overrides a shipped one.",
    )
    prompt_template: str | None = field(
        None, help="Prompt template with {subject}, {token}, {class_word} and one {slot} per preset category."
    )
    negative_prompt: str | None = field(
        None, help="Replaces the default negative prompt (presets add to it)."
    )
    count: int = field(40, help="Number of images in the batch (40-200 is the usual range).")
    seed: int = field(0, help="Base seed: image i uses seed + i unless `seeds` lists them.")
    seeds: list[int] | None = field(None, help="Explicit seeds, one per image (overrides seed and count).")
    steps: int | None = field(None, help="Denoising steps; none = preset, else 30.")
    guidance_scale: float | None = field(
        None, help="Classifier-free guidance; none = preset, else 7.0 (SDXL 6.0)."
    )
    scheduler: SchedulerName | None = field(None, help="Sampler; none = preset, else the model's own.")
    resolution: int | None = field(None, help="Square output size in pixels; none = the model's native size.")
    batch_size: int = field(
        4, help="Images per pipeline call (larger is faster on a GPU until memory runs out)."
    )
    controls: list[str] = field(
        default_factory=list,
        help="ControlNets as TYPE:REFERENCE[:scale[:start[:end]]]; TYPE is landmarks, canny, depth or openpose; "
        "REFERENCE is an image path or a pose from the gallery (pose:front).",
    )
    controlnet_models: list[str] = field(
        default_factory=list,
        help="Weights per control type as TYPE=SOURCE (hub id, folder, or tiny); defaults are the usual hub ids.",
    )
    depth_model: str = field(
        "depth-anything/Depth-Anything-V2-Small-hf",
        help="Depth estimator (hub id or folder) for depth controls.",
    )
    device: str = field("auto", help="auto (cuda when present), cpu, cuda, cuda:1, mps...")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = field(
        "auto", help="Weights dtype; auto = bfloat16 on CUDA, float32 elsewhere."
    )
    channels_last: bool | None = field(
        None, help="UNet/VAE in channels_last memory format; none = on with CUDA."
    )
    fuse_qkv: bool | None = field(
        None, help="Fuse attention QKV projections (and the LoRA); none = on with CUDA."
    )
    compile: bool = field(False, help="torch.compile the UNet (slow first batch, faster after; CUDA only).")
    vae_tiling: bool | None = field(None, help="Decode in tiles (large images); none = on at >= 1536 px.")
    vae_slicing: bool | None = field(
        None, help="Decode one image at a time (large batches); none = on with CUDA."
    )
    run_name: str | None = field(
        None, help="Run folder name under the subject's generations/; an existing one is resumed."
    )
    log_images: bool = field(
        True, help="Log every image to MLflow as an artifact (the contact sheet always is)."
    )
    watermark: bool = field(True, help="Add an invisible watermark when invisible-watermark is installed.")

    def __post_init__(self) -> None:
        if self.count < 1 or self.count > MAX_COUNT:
            raise WorkbenchError(f"count={self.count} must be between 1 and {MAX_COUNT}.")
        if self.seeds is not None and len(self.seeds) == 0:
            raise WorkbenchError("seeds is an empty list: give at least one seed, or leave it unset.")
        if self.batch_size < 1:
            raise WorkbenchError(f"batch_size={self.batch_size} must be at least 1.")
        if self.steps is not None and self.steps < 1:
            raise WorkbenchError(f"steps={self.steps} must be at least 1.")
        if self.guidance_scale is not None and self.guidance_scale < 0:
            raise WorkbenchError(f"guidance_scale={self.guidance_scale} must be >= 0 (1 disables guidance).")
        if self.resolution is not None and (self.resolution < 32 or self.resolution % 8):
            raise WorkbenchError(f"resolution={self.resolution} must be a multiple of 8 and at least 32.")
        if not self.presets:
            raise WorkbenchError("No preset given: pass at least one (see `workbench generate --help`).")
        if self.run_name is not None:
            validate_run_name(self.run_name)
        if self.identity == "lora" and not self.lora:
            raise WorkbenchError("identity=lora needs a LoRA: pass lora=FILE|FOLDER|mlflow:<run_id>.")
        if self.identity.startswith("ip-adapter") and self.lora:
            raise WorkbenchError(
                f"identity={self.identity} is tuning-free and takes no LoRA: drop lora, or set identity=lora."
            )
        if self.ip_adapter_scale < 0:
            raise WorkbenchError(
                f"ip_adapter_scale={self.ip_adapter_scale} must be >= 0 (0 = off, 1 = full)."
            )
        if not self.model.strip():
            raise WorkbenchError(
                "Option model is empty: give a preset (tiny, sd15, sdxl), a hub id or a folder."
            )
        check_ranges(
            self, lora_scale=(-10.0, 10.0), seed=SEED_RANGE, steps=(1, 1000), guidance_scale=(0.0, 100.0),
            resolution=(32, 4096), batch_size=(1, MAX_BATCH_SIZE),
        )  # fmt: skip
        for seed in self.seeds or []:
            if not SEED_RANGE[0] <= seed <= SEED_RANGE[1]:
                raise WorkbenchError(f"Seed {seed} in seeds must be between 0 and {SEED_RANGE[1]}.")
        if self.seeds is not None and len(self.seeds) > MAX_COUNT:
            raise WorkbenchError(f"seeds lists {len(self.seeds)} seeds: at most {MAX_COUNT} per batch.")
        if not _DEVICE.fullmatch(self.device):
            raise WorkbenchError(
                f"Option device={self.device!r} is not a device: use auto, cpu, cuda, cuda:N, mps or xpu."
            )
        if self.compile and self.device == "cpu":
            raise WorkbenchError(
                "compile=true needs a CUDA device; drop it on CPU (it would only slow down)."
            )

    @property
    def identity_method(self) -> str:
        """The method in use: ``lora``, ``ip-adapter-face``, ``ip-adapter-faceid`` or ``none`` (base model)."""
        if self.identity == "auto":
            return "lora" if self.lora else "none"
        return self.identity

    def check_memory(self, family: str, resolution: int, tiny: bool = False) -> None:
        """Refuse a pipeline call whose activations clearly exceed this machine's memory (a lower bound: SD 1.5
        at 512 px needs about 0.5 GB per image with guidance, SDXL at 1024 px about 2 GB)."""
        if tiny:
            return
        native, per_image = (1024, 2.0) if family == "sdxl" else (512, 0.5)
        per_image *= (resolution / native) ** 2
        images = min(self.batch_size, self.n_images)
        need = per_image * images
        have, where = machine_memory_gb()
        if have and need > have:
            raise WorkbenchError(
                f"batch_size={self.batch_size} needs at least {need:.0f} GB per pipeline call ({family} at "
                f"{resolution} px, about {per_image:.1f} GB per image) but {where} has {have:.0f} GB: lower "
                "batch_size (it changes speed, not what the images show)."
            )

    @property
    def n_images(self) -> int:
        return len(self.seeds) if self.seeds is not None else self.count

    def image_seeds(self) -> list[int]:
        """seed_i = seed + i, or the recorded list."""
        return list(self.seeds) if self.seeds is not None else [self.seed + i for i in range(self.count)]
