"""ControlNet for SD 1.5 and SDXL: conditioning images from a reference photo or the pose gallery, and weights.

A control is written ``TYPE:REFERENCE[:scale[:start[:end]]]``, for example ``landmarks:pose:three-quarter-left``,
``canny:/photos/ref.jpg:0.6:0:0.5`` or ``landmarks:/photos/ref.jpg``. Types:

- ``landmarks``: the dlib 68-point face landmarks of the reference (or a gallery pose) drawn as coloured lines on
  black, like the face-landmark / MediaPipe-face ControlNets' annotators; steers face direction and pose.
- ``canny``: OpenCV Canny edges; steers composition.
- ``depth``: a monocular depth estimator (transformers ``depth-estimation``) when its weights are present.
- ``openpose``: controlnet-aux's OpenPose detector, where controlnet-aux (and torchvision) can import.

References are centre-cropped to a square and resized to the output size, so the conditioning image lines up
with the output pixel for pixel. Weights come from ``controlnet_models`` (TYPE=SOURCE), else the usual hub ids;
``tiny`` builds a small ControlNet from the tiny UNet for tests.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from workbench.errors import MissingDependencyError, ModelNotAvailableError, WorkbenchError
from workbench.generate.gallery import draw_landmarks, list_poses, load_pose

CONTROL_TYPES = ("landmarks", "canny", "depth", "openpose")
# The usual public weights per (family, type). SDXL has no widely used face-landmark ControlNet: pass one.
DEFAULT_CONTROLNETS: dict[tuple[str, str], str | None] = {
    ("sd15", "landmarks"): "CrucibleAI/ControlNetMediaPipeFace",
    ("sd15", "canny"): "lllyasviel/control_v11p_sd15_canny",
    ("sd15", "depth"): "lllyasviel/control_v11f1p_sd15_depth",
    ("sd15", "openpose"): "lllyasviel/control_v11p_sd15_openpose",
    ("sdxl", "landmarks"): None,
    ("sdxl", "canny"): "diffusers/controlnet-canny-sdxl-1.0",
    ("sdxl", "depth"): "diffusers/controlnet-depth-sdxl-1.0",
    ("sdxl", "openpose"): "thibaud/controlnet-openpose-sdxl-1.0",
}
TINY_CONTROLNET_SEED = 1234


@dataclass(frozen=True)
class ControlSpec:
    type: str
    reference: str  # image path or pose:NAME
    scale: float = 1.0
    start: float = 0.0
    end: float = 1.0

    def describe(self) -> str:
        return f"{self.type}:{self.reference}:{self.scale:g}:{self.start:g}:{self.end:g}"


def parse_control(text: str) -> ControlSpec:
    """``TYPE:REFERENCE[:scale[:start[:end]]]``; ``pose:NAME`` references a gallery pose."""
    head, _, rest = text.partition(":")
    if head not in CONTROL_TYPES or not rest:
        raise WorkbenchError(
            f"Control '{text}' must be TYPE:REFERENCE[:scale[:start[:end]]] with TYPE one of "
            f"{', '.join(CONTROL_TYPES)} (e.g. landmarks:pose:front or canny:photo.jpg:0.7)."
        )
    parts = rest.split(":")
    if parts[0] == "pose":
        reference, numbers = f"pose:{parts[1] if len(parts) > 1 else ''}", parts[2:]
    else:
        reference, numbers = parts[0], parts[1:]
    try:
        values = [float(v) for v in numbers]
    except ValueError:
        raise WorkbenchError(f"Control '{text}': scale, start and end must be numbers.") from None
    if len(values) > 3:
        raise WorkbenchError(f"Control '{text}' has too many fields: TYPE:REFERENCE[:scale[:start[:end]]].")
    scale, start, end = (values + [1.0, 0.0, 1.0][len(values) :])[:3]
    if not 0.0 <= start < end <= 1.0:
        raise WorkbenchError(f"Control '{text}': need 0 <= start < end <= 1 (got start={start}, end={end}).")
    spec = ControlSpec(head, reference, scale, start, end)
    if reference.startswith("pose:"):
        if head != "landmarks":
            raise WorkbenchError(
                f"Control '{text}': gallery poses are landmark drawings; use landmarks:{reference}."
            )
        if reference[5:] not in list_poses():
            raise WorkbenchError(
                f"Control '{text}': no pose '{reference[5:]}'; choose from {', '.join(list_poses())}."
            )
    elif not Path(reference).expanduser().is_file():
        raise WorkbenchError(f"Control '{text}': reference image {reference} does not exist.")
    return spec


def parse_model_overrides(items: list[str]) -> dict[str, str]:
    overrides = {}
    for item in items:
        kind, sep, source = item.partition("=")
        if not sep or kind not in CONTROL_TYPES or not source:
            raise WorkbenchError(
                f"ControlNet model '{item}' must be TYPE=SOURCE with TYPE one of {', '.join(CONTROL_TYPES)} "
                "(e.g. canny=lllyasviel/control_v11p_sd15_canny, canny=/models/my-canny, canny=tiny)."
            )
        overrides[kind] = source
    return overrides


# -- conditioning images -------------------------------------------------------------------------------------------
def square_reference(path: str | Path, size: int) -> Image.Image:
    """The reference photo, EXIF-rotated, centre-cropped to a square and resized to ``size``."""
    from workbench.intake.reading import read_image  # HEIC, colour profiles, EXIF: as uploads are read

    image = Image.fromarray(read_image(Path(path).expanduser()))
    return ImageOps.fit(image, (size, size), Image.Resampling.LANCZOS)


def landmarks_image(reference: str | Path | Image.Image, size: int) -> Image.Image:
    """dlib's 68 landmarks of the largest face, drawn on black at the output size."""
    from workbench.faces import get_backend

    if isinstance(reference, str) and reference.startswith("pose:"):
        return draw_landmarks(load_pose(reference[5:]) * size, size)
    # Detect on a 512-px square so small outputs (tiny models) still get a face found.
    square = reference if isinstance(reference, Image.Image) else square_reference(reference, 512)
    faces = get_backend("dlib").detect(np.asarray(square))
    if not faces or faces[0].landmarks is None:
        raise WorkbenchError(
            f"No face found in the landmarks reference {reference}: use a photo with one clear, frontal-ish face, "
            "or a gallery pose (landmarks:pose:front)."
        )
    return draw_landmarks(faces[0].landmarks * (size / square.width), size)


def canny_image(
    reference: str | Path | Image.Image, size: int, low: int = 100, high: int = 200
) -> Image.Image:
    import cv2

    square = reference if isinstance(reference, Image.Image) else square_reference(reference, size)
    edges = cv2.Canny(np.asarray(square.convert("L")), low, high)
    return Image.fromarray(np.stack([edges] * 3, axis=-1))


def depth_image(reference: str | Path, size: int, depth_model: str) -> Image.Image:
    estimator = _depth_estimator(depth_model)
    depth = estimator(square_reference(reference, max(size, 384)))["depth"]
    return depth.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)


@lru_cache(maxsize=2)
def _depth_estimator(depth_model: str) -> Any:
    from transformers import pipeline

    folder = _local_model_folder(depth_model)
    try:
        return pipeline("depth-estimation", model=str(folder))
    except Exception as exc:  # transformers raises OSError, ValueError or TypeError for an unusable folder
        raise ModelNotAvailableError(
            f"The depth estimator in {folder} ({depth_model}) could not be loaded: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        ) from exc


def _local_model_folder(spec: str) -> Path:
    """A local folder as is; a hub id from the local Hugging Face cache (downloaded only when allowed)."""
    from huggingface_hub import snapshot_download

    from workbench.models.sources import downloads_allowed

    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    try:
        return Path(snapshot_download(spec, local_files_only=not downloads_allowed()))
    except Exception as exc:  # not in the cache (or no network)
        raise ModelNotAvailableError(
            f"The depth control needs depth-estimator weights '{spec}', which are not on this machine. "
            f"Download them on a machine with internet (`hf download {spec}`) or pass "
            "depth_model=/path/to/folder; or use landmarks/canny controls instead. "
            f"({type(exc).__name__})"
        ) from exc


def openpose_image(reference: str | Path, size: int) -> Image.Image:
    if importlib.util.find_spec("controlnet_aux") is None:
        raise MissingDependencyError(
            "The openpose control needs controlnet-aux (`pip install headshot-workbench[controlnet]`), which "
            "imports torchvision: install it only where a torchvision matching torch exists (GPU machines). "
            "Use landmarks:REFERENCE for face direction instead."
        )
    try:
        from controlnet_aux import OpenposeDetector
    except Exception as exc:  # its __init__ imports torchvision, which fails on CPU-only installs
        raise MissingDependencyError(
            f"controlnet-aux is installed but cannot import ({type(exc).__name__}: {exc}); it needs a torchvision "
            "that matches torch. Use landmarks:REFERENCE instead."
        ) from exc
    try:
        detector = OpenposeDetector.from_pretrained("lllyasviel/Annotators")
    except Exception as exc:
        raise ModelNotAvailableError(
            "The openpose control needs the annotator weights 'lllyasviel/Annotators' (body_pose_model.pth, "
            "hand_pose_model.pth, facenet.pth) in the Hugging Face cache; download them on a machine with "
            f"internet. ({type(exc).__name__})"
        ) from exc
    pose = detector(square_reference(reference, 512), include_face=True, include_hand=False)
    return pose.convert("RGB").resize((size, size), Image.Resampling.NEAREST)


def conditioning_image(spec: ControlSpec, size: int, depth_model: str) -> Image.Image:
    if spec.type == "landmarks":
        return landmarks_image(spec.reference, size)
    if spec.type == "canny":
        return canny_image(spec.reference, size)
    if spec.type == "depth":
        return depth_image(spec.reference, size, depth_model)
    return openpose_image(spec.reference, size)


# -- weights ---------------------------------------------------------------------------------------------------------
def controlnet_source(kind: str, family: str, overrides: dict[str, str], model_is_tiny: bool) -> str:
    if kind in overrides:
        return overrides[kind]
    if model_is_tiny:
        return "tiny"
    default = DEFAULT_CONTROLNETS[(family, kind)]
    if default is None:
        raise WorkbenchError(
            f"There is no standard {kind} ControlNet for {family}: pass one with "
            f"controlnet_models={kind}=HUB_ID_OR_FOLDER (--controlnet-model {kind}=...)."
        )
    return default


def tiny_controlnet(unet: Any, vae_scale_factor: int) -> Any:
    """A ControlNet copied from the (tiny) UNet; its zero-convolutions get small seeded weights, so the
    conditioning image visibly changes the output (a freshly initialised ControlNet has no effect at all)."""
    from diffusers import ControlNetModel

    # The conditioning embedding must downsample by the VAE's factor (the tiny VAE's is 4, not 8).
    n_down = int(math.log2(vae_scale_factor))
    channels = tuple(16 * 2**i for i in range(n_down + 1))
    with torch.random.fork_rng(devices=[]):  # seeded, without touching the caller's random state
        torch.manual_seed(TINY_CONTROLNET_SEED)
        net = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=channels)
    generator = torch.Generator().manual_seed(TINY_CONTROLNET_SEED)
    with torch.no_grad():
        zero_convs = [
            *net.controlnet_down_blocks,
            net.controlnet_mid_block,
            net.controlnet_cond_embedding.conv_out,
        ]
        for conv in zero_convs:
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * 0.05)
    return net


def load_controlnet(source: str, *, unet: Any, vae_scale_factor: int, dtype: torch.dtype) -> Any:
    from diffusers import ControlNetModel

    from workbench.models.sources import downloads_allowed

    if source == "tiny":
        return tiny_controlnet(unet, vae_scale_factor).to(dtype)
    location, _, subfolder = source.partition(
        "#"
    )  # hub_id#subfolder, e.g. CrucibleAI/ControlNetMediaPipeFace
    if not subfolder and location == "CrucibleAI/ControlNetMediaPipeFace":
        subfolder = "diffusion_sd15"
    kwargs: dict[str, Any] = {"dtype": dtype}
    if subfolder:
        kwargs["subfolder"] = subfolder
    if not Path(location).expanduser().exists() and not downloads_allowed():
        kwargs["local_files_only"] = True
    try:
        return ControlNetModel.from_pretrained(location, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelNotAvailableError(
            f"The ControlNet weights '{source}' are not on this machine: download them on a machine with "
            f"internet (`hf download {location}`), pass a local folder with "
            "controlnet_models=TYPE=/path, or set WORKBENCH_ALLOW_DOWNLOAD=1. "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]})"
        ) from exc
