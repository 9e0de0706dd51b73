"""The generate stage's typed config: what to draw, how many, with which model, LoRA, ControlNets and speed-ups.

Every field is logged to MLflow (flat) and as ``generate.yaml``; ``GenerateConfig.from_yaml`` re-runs a batch.
``None`` means "let the presets decide, else the model's default" for sampling settings, and "pick what is
fast on this device" for the speed switches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from workbench.config import StageConfig, field
from workbench.errors import WorkbenchError
from workbench.workspace.layout import validate_run_name

SCHEDULERS = ("ddim", "dpmpp-2m", "dpmpp-2m-karras", "euler", "euler-a", "unipc")
SchedulerName = Literal["ddim", "dpmpp-2m", "dpmpp-2m-karras", "euler", "euler-a", "unipc"]
DEFAULT_PRESETS = ("corporate",)
MAX_COUNT = 1000  # a typo guard (count=20000 would run for days), not a product limit


@dataclass
class GenerateConfig(StageConfig):
    model: str = field("tiny", help="Preset (tiny, tiny-sdxl, sd15, sdxl), hub id or local diffusers folder.")
    lora: str | None = field(
        None, help="LoRA: a .safetensors file, a folder holding one, or mlflow:<run_id>; none = base model."
    )
    lora_scale: float = field(1.0, help="Strength of the LoRA (0 = off, 1 = as trained).")
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
        if self.compile and self.device == "cpu":
            raise WorkbenchError(
                "compile=true needs a CUDA device; drop it on CPU (it would only slow down)."
            )

    @property
    def n_images(self) -> int:
        return len(self.seeds) if self.seeds is not None else self.count

    def image_seeds(self) -> list[int]:
        """seed_i = seed + i, or the recorded list."""
        return list(self.seeds) if self.seeds is not None else [self.seed + i for i in range(self.count)]
