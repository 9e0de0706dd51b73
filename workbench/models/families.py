"""The two pipeline families the workbench trains and samples: SD 1.5-shaped and SDXL-shaped."""

from __future__ import annotations

from typing import Any, Literal

Family = Literal["sd15", "sdxl"]

_PIPELINES = {
    ("sd15", False): "StableDiffusionPipeline",
    ("sdxl", False): "StableDiffusionXLPipeline",
    ("sd15", True): "StableDiffusionControlNetPipeline",
    ("sdxl", True): "StableDiffusionXLControlNetPipeline",
}


def pipeline_class(family: Family, controlnet: bool = False) -> Any:
    """The diffusers pipeline class of ``family`` (its ControlNet variant with ``controlnet=True``)."""
    import diffusers

    return getattr(diffusers, _PIPELINES[(family, controlnet)])
