"""Model sources as one concept: a preset name, a Hugging Face hub id, or a local diffusers folder.

``resolve_model("tiny")``, ``resolve_model("sdxl")``, ``resolve_model("org/model")`` and
``resolve_model("/models/my-sd15")`` all return a :class:`ModelSource`; ``load_pipeline`` turns any of them
into a diffusers pipeline of the right family. Hub ids are read from the local Hugging Face cache only, unless
downloads are allowed explicitly, so nothing ever hangs on a network call on an offline machine.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from workbench.errors import ModelNotAvailableError, WorkbenchError
from workbench.models.families import Family, pipeline_class
from workbench.models.tiny import TINY_PRESETS, ensure_tiny_pipeline, tiny_info

ALLOW_DOWNLOAD_ENV = "WORKBENCH_ALLOW_DOWNLOAD"

# The usual hub ids for the real presets, with their native resolution.
HUB_PRESETS: dict[str, tuple[str, Family, int]] = {
    "sd15": ("stable-diffusion-v1-5/stable-diffusion-v1-5", "sd15", 512),
    "sdxl": ("stabilityai/stable-diffusion-xl-base-1.0", "sdxl", 1024),
}
PRESET_NAMES = tuple(TINY_PRESETS) + tuple(HUB_PRESETS)


@dataclass(frozen=True)
class ModelSource:
    spec: str  # what the user typed
    kind: Literal["tiny", "hub", "local"]
    family: Family
    location: str  # hub id or folder
    resolution: int

    @property
    def is_tiny(self) -> bool:
        return self.kind == "tiny"


def resolve_model(spec: str, cache_dir: Path | None = None) -> ModelSource:
    """Turn a preset name, hub id or local folder into a :class:`ModelSource` (no weights are loaded)."""
    if not spec:
        raise WorkbenchError(
            f"No model given: pass a preset ({', '.join(PRESET_NAMES)}), a hub id or a folder."
        )
    if spec in TINY_PRESETS:
        info = tiny_info(spec)
        folder = ensure_tiny_pipeline(spec, cache_dir or Path(".cache"))
        return ModelSource(spec, "tiny", info["family"], str(folder), info["resolution"])
    if spec in HUB_PRESETS:
        hub_id, family, resolution = HUB_PRESETS[spec]
        return ModelSource(spec, "hub", family, hub_id, resolution)
    path = Path(spec).expanduser()
    if path.exists():
        return _local_source(spec, path)
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")):
        family: Family = "sdxl" if "xl" in spec.lower() else "sd15"
        return ModelSource(spec, "hub", family, spec, 1024 if family == "sdxl" else 512)
    raise WorkbenchError(
        f"Model '{spec}' is neither a preset ({', '.join(PRESET_NAMES)}), an existing folder, "
        "nor a hub id of the form 'org/name'."
    )


def _local_source(spec: str, path: Path) -> ModelSource:
    index = path / "model_index.json"
    if not index.is_file():
        raise WorkbenchError(
            f"Folder {path} is not a diffusers pipeline (no model_index.json). Point model= at a folder saved "
            "with `save_pretrained`, or convert a single .safetensors checkpoint with diffusers' "
            "`from_single_file` first."
        )
    components = _json_object(index)
    class_name = str(components.get("_class_name", ""))
    family: Family = "sdxl" if "XL" in class_name else "sd15"
    _check_components(path, components)
    unet_config = path / "unet" / "config.json"
    vae_config = path / "vae" / "config.json"
    try:
        sample = _json_object(unet_config).get("sample_size", 64) if unet_config.is_file() else 64
        factor = 2 ** (len(_json_object(vae_config)["block_out_channels"]) - 1) if vae_config.is_file() else 8
        resolution = int(sample if isinstance(sample, int) else sample[0]) * factor
    except (KeyError, TypeError, ValueError, IndexError):
        raise WorkbenchError(
            f"Folder {path} is not a complete diffusers pipeline: unet/config.json or vae/config.json lacks "
            "sample_size / block_out_channels. Save the pipeline again with `save_pretrained`."
        ) from None
    return ModelSource(spec, "local", family, str(path.resolve()), resolution)


def _json_object(file: Path) -> dict[str, Any]:
    """A JSON file that must hold an object; anything else is one sentence naming the file."""
    try:
        data = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise WorkbenchError(
            f"{file} is not readable JSON ({type(exc).__name__}): the model folder is damaged or is not a diffusers "
            "pipeline; save it again with `save_pretrained`."
        ) from None
    if not isinstance(data, dict):
        raise WorkbenchError(
            f"{file} does not hold a JSON object: the model folder is not a diffusers pipeline."
        )
    return data


_WEIGHTED = ("unet", "vae", "text_encoder", "text_encoder_2", "transformer")


def _check_components(path: Path, components: dict[str, Any]) -> None:
    """Every component model_index.json names has its folder, and every weights file there has a readable
    safetensors header (garbage would otherwise fail deep inside diffusers with a traceback)."""
    from safetensors import safe_open

    for name, entry in components.items():
        if name.startswith("_") or not (isinstance(entry, list) and len(entry) == 2 and entry[0]):
            continue
        folder = path / name
        if not folder.is_dir():
            raise WorkbenchError(
                f"Model folder {path} names a component '{name}' in model_index.json but has no {name}/ folder: "
                "copy the whole pipeline folder."
            )
        if name not in _WEIGHTED:
            continue
        weights = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))
        if not weights:
            raise WorkbenchError(f"Model folder {path}: {name}/ holds no weights (.safetensors or .bin).")
        for file in weights:
            if file.suffix != ".safetensors":
                continue
            try:
                with safe_open(str(file), "pt") as handle:
                    handle.keys()
            except Exception as exc:  # noqa: BLE001 - the safetensors reader raises its own error types
                raise WorkbenchError(
                    f"Model weights {file} are not a readable safetensors file ({type(exc).__name__}): the "
                    "download or copy is damaged; fetch the model again."
                ) from None


def downloads_allowed() -> bool:
    return os.environ.get(ALLOW_DOWNLOAD_ENV, "").lower() in ("1", "true", "yes")


def pretrained_kwargs(source: ModelSource) -> dict[str, Any]:
    """Arguments for every ``from_pretrained`` call on this source (offline unless downloads are allowed)."""
    kwargs: dict[str, Any] = {}
    if source.kind == "hub" and not downloads_allowed():
        kwargs["local_files_only"] = True
    return kwargs


def load_pipeline(
    source: ModelSource,
    *,
    torch_dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    controlnet: Any = None,
) -> Any:
    """Load the whole pipeline of ``source``; with ``controlnet`` the ControlNet variant of the family."""
    cls = pipeline_class(source.family, controlnet=controlnet is not None)
    kwargs = pretrained_kwargs(source)
    if controlnet is not None:
        kwargs["controlnet"] = controlnet
    if source.family == "sd15":
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    try:
        pipe = cls.from_pretrained(source.location, dtype=torch_dtype, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a damaged folder fails in many ways deep in diffusers; say which
        raise _not_available(source, exc) from exc
    return pipe.to(device)


def load_component(source: ModelSource, component: str, *, torch_dtype: torch.dtype = torch.float32) -> Any:
    """Load one component (``unet``, ``vae``, ``text_encoder``, ``tokenizer``, ``scheduler``...)."""
    import diffusers
    import transformers

    classes = {
        "unet": diffusers.UNet2DConditionModel,
        "vae": diffusers.AutoencoderKL,
        "text_encoder": transformers.CLIPTextModel,
        "text_encoder_2": transformers.CLIPTextModelWithProjection,
        "tokenizer": transformers.CLIPTokenizer,
        "tokenizer_2": transformers.CLIPTokenizer,
        "scheduler": diffusers.DDPMScheduler,
    }
    kwargs = {**pretrained_kwargs(source), "subfolder": component}
    if component not in ("tokenizer", "tokenizer_2", "scheduler"):
        kwargs["dtype"] = torch_dtype
    try:
        return classes[component].from_pretrained(source.location, **kwargs)
    except Exception as exc:  # noqa: BLE001 - as in load_pipeline
        raise _not_available(source, exc) from exc


def _not_available(source: ModelSource, exc: Exception) -> ModelNotAvailableError:
    cause = _first_line(exc)
    if source.kind == "hub":
        return ModelNotAvailableError(
            f"The weights of '{source.location}' are not on this machine ({cause}). On a machine with internet, "
            f"run `hf download {source.location}` and copy ~/.cache/huggingface here, or save the pipeline to a "
            f"folder and pass model=/path/to/folder; or set {ALLOW_DOWNLOAD_ENV}=1 to let the workbench download it."
        )
    return ModelNotAvailableError(
        f"Could not load the pipeline in {source.location} ({cause}). Check that the folder was written by "
        "diffusers `save_pretrained` and is complete."
    )


def _first_line(exc: Exception, limit: int = 160) -> str:
    """The error's first line, cut at a word with an ellipsis, so the sentence around it stays whole."""
    text = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"
