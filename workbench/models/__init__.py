"""Model sources: presets (``tiny``, ``tiny-sdxl``, ``sd15``, ``sdxl``), hub ids and local folders."""

from workbench.models.families import Family, pipeline_class
from workbench.models.sources import (
    HUB_PRESETS,
    PRESET_NAMES,
    ModelSource,
    load_component,
    load_pipeline,
    resolve_model,
)

__all__ = [
    "HUB_PRESETS", "Family", "PRESET_NAMES", "ModelSource", "load_component", "load_pipeline", "pipeline_class",
    "resolve_model",
]  # fmt: skip
