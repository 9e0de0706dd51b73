"""Generate: style presets, prompts, ControlNet, resumable batches with provenance on every image.

    from workbench.generate import GenerateConfig, run_generate
    result = run_generate("alice", GenerateConfig(lora="path/to/lora", presets=["executive"], count=40), workspace=ws)

Heavy modules (diffusers, torch) load inside the functions that need them.
"""

from workbench.generate.batch import GenerateResult, contact_sheet, plan_images, regenerate, run_generate
from workbench.generate.config import SCHEDULERS, GenerateConfig
from workbench.generate.controlnet import CONTROL_TYPES, ControlSpec, conditioning_image, parse_control
from workbench.generate.gallery import list_poses, load_pose, render_pose
from workbench.generate.presets import Preset, PresetLibrary, load_presets
from workbench.generate.prompts import build_job
from workbench.generate.provenance import DIGITAL_SOURCE_TYPE, read_provenance

__all__ = [
    "CONTROL_TYPES", "DIGITAL_SOURCE_TYPE", "SCHEDULERS", "GenerateResult", "ControlSpec", "GenerateConfig", "Preset",
    "PresetLibrary", "build_job", "conditioning_image", "contact_sheet", "run_generate", "list_poses",
    "load_pose", "load_presets", "parse_control", "plan_images", "read_provenance",
    "regenerate", "render_pose",
]  # fmt: skip
