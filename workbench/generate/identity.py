"""Identity methods: how the subject's likeness gets into a generated image.

* ``lora`` — a DreamBooth-LoRA trained on the subject's photos (``workbench train``); loaded by the engine.
* ``ip-adapter-face`` — tuning-free: the subject's aligned face crops (from intake) go through a CLIP image
  encoder, and an IP-Adapter (e.g. ``h94/IP-Adapter`` ``ip-adapter-plus-face_sd15`` / ``_sdxl_vit-h``) feeds them
  to the UNet's cross-attention next to the prompt.
* ``ip-adapter-faceid`` — tuning-free: a face-recognition embedding of the subject (``h94/IP-Adapter-FaceID``).
  The published weights expect insightface ArcFace 512-d embeddings: install ``insightface`` + ``onnxruntime``,
  put the ``buffalo_l`` pack in ``~/.insightface/models/`` and run intake with ``face_backend=insightface``.
  Offline, the tiny adapter takes dlib's 128-d embedding, so the path runs end to end without downloads.

Everything goes through stock diffusers: ``load_ip_adapter`` (given a state dict: one code path for the tiny
adapters, hub files and local files), ``set_ip_adapter_scale`` and ``ip_adapter_image_embeds``.

Several reference photos are **averaged**: FaceID averages the face embeddings, face averages the CLIP image
features (the penultimate hidden states for the Plus resampler, the image embeds for the plain projection).
Why: the mean of several photos of one person is a steadier identity than any single photo (lighting and pose
average out), the cost per step stays that of one image (concatenating images would add 4-16 tokens per photo
to every cross-attention), and the result does not depend on the order of the photos. The embeds are computed
once per engine, so every image of a batch (and ``regenerate``) uses exactly the same tensors.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from workbench.errors import ModelNotAvailableError, WorkbenchError

IP_METHODS = ("ip-adapter-face", "ip-adapter-faceid")
# The published weights per (method, family): (hub repo, weight file, image encoder as repo:subfolder).
PUBLISHED: dict[tuple[str, str], tuple[str, str, str | None]] = {
    ("ip-adapter-face", "sd15"): (
        "h94/IP-Adapter", "models/ip-adapter-plus-face_sd15.safetensors", "h94/IP-Adapter:models/image_encoder",
    ),
    ("ip-adapter-face", "sdxl"): (
        "h94/IP-Adapter", "sdxl_models/ip-adapter-plus-face_sdxl_vit-h.safetensors",
        "h94/IP-Adapter:models/image_encoder",  # the ViT-H encoder: the "vit-h" in the adapter's name
    ),
    ("ip-adapter-faceid", "sd15"): ("h94/IP-Adapter-FaceID", "ip-adapter-faceid_sd15.bin", None),
    ("ip-adapter-faceid", "sdxl"): ("h94/IP-Adapter-FaceID", "ip-adapter-faceid_sdxl.bin", None),
}  # fmt: skip
INSIGHTFACE_ADVICE = (
    "The published FaceID adapters expect insightface ArcFace 512-d embeddings: `pip install "
    "'headshot-workbench[insightface]'` (insightface + onnxruntime), put the buffalo_l model pack in "
    "~/.insightface/models/buffalo_l, and re-run intake with face_backend=insightface."
)


@dataclass
class Identity:
    """A loaded tuning-free identity: what to pass to every pipeline call, and what to record."""

    method: str
    adapter: str  # where the adapter weights came from
    adapter_sha256: str
    image_encoder: str | None
    scale: float
    references: list[dict[str, Any]]  # crop, crop_sha256, source_sha256
    embeds: torch.Tensor  # (1, tokens..., dim): the averaged reference
    negative: torch.Tensor  # the unconditional counterpart (zeros / the encoder's output for a black image)
    spec: dict[str, Any] = field(default_factory=dict)  # the config values that rebuild it

    def pipeline_kwargs(self, guidance: bool) -> dict[str, Any]:
        """``ip_adapter_image_embeds`` for one call (diffusers repeats it over the batch)."""
        embeds = torch.cat([self.negative, self.embeds]) if guidance else self.embeds
        return {"ip_adapter_image_embeds": [embeds[:, None]]}

    def record(self) -> dict[str, Any]:
        return {
            "method": self.method, "adapter": self.adapter, "adapter_sha256": self.adapter_sha256,
            "image_encoder": self.image_encoder, "scale": self.scale, "references": self.references,
            "spec": self.spec,
        }  # fmt: skip


# -- references --------------------------------------------------------------------------------------------------
def select_references(workspace: Any, subject: str | None, names: list[str]) -> list[dict[str, Any]]:
    """The aligned crops that stand for the subject (all accepted photos, or the named ones), with their hashes."""
    from workbench.intake.dataset import METADATA

    if not subject:
        raise WorkbenchError("A tuning-free identity needs a subject: pass --subject ID (run intake first).")
    dataset = workspace.dataset_dir(subject)
    metadata = dataset / METADATA
    rows = (
        [json.loads(line) for line in metadata.read_text().splitlines() if line.strip()]
        if metadata.is_file()
        else []
    )
    if not rows:
        raise WorkbenchError(
            f"Subject '{subject}' has no accepted photos: run `workbench intake --subject {subject} PHOTO...` "
            "first (one clear selfie is enough for a tuning-free identity)."
        )
    by_name = {row["file_name"]: row for row in rows}
    unknown = sorted(set(names) - set(by_name))
    if unknown:
        raise WorkbenchError(
            f"references {unknown} are not crops of '{subject}': choose from {', '.join(sorted(by_name))}."
        )
    chosen = [by_name[n] for n in names] if names else rows
    return [
        {"crop": row["file_name"], "crop_sha256": _sha256(dataset / row["file_name"]),
         "source_sha256": row.get("source_sha256"), "path": str(dataset / row["file_name"])}
        for row in chosen
    ]  # fmt: skip


def check_references(workspace: Any, subject: str, recorded: list[dict[str, Any]]) -> None:
    """Regeneration needs the very crops an image was made from: fail if any changed or is gone."""
    now = {r["crop"]: r for r in select_references(workspace, subject, [])}
    for ref in recorded:
        if ref["crop"] not in now or now[ref["crop"]]["crop_sha256"] != ref["crop_sha256"]:
            raise WorkbenchError(
                f"The reference crop {ref['crop']} of '{subject}' is missing or changed since the image was made "
                "(intake was re-run): the tuning-free image cannot be reproduced."
            )


# -- adapter weights -----------------------------------------------------------------------------------------------
def adapter_state_dict(config: Any, method: str, source: Any, unet: Any) -> tuple[dict, str, str]:
    """(state dict, where it came from, its SHA-256) for ``config.ip_adapter`` and the model's family."""
    from workbench.models.tiny import build_tiny_ip_adapter

    spec = config.ip_adapter
    if spec == "tiny" or (spec == "auto" and source.is_tiny):
        state = build_tiny_ip_adapter(method, unet)
        return state, f"tiny:{method}", _state_sha256(state)
    if spec == "auto":
        repo, weight, _ = PUBLISHED[(method, source.family)]
        return _load_file(_hub_file(repo, config.ip_adapter_weight or weight, method)), repo, ""
    path = Path(spec).expanduser()
    if path.is_file():
        return _load_file(path), str(path.resolve()), ""
    if path.is_dir():
        weight = config.ip_adapter_weight or PUBLISHED[(method, source.family)][1].split("/")[-1]
        if not (path / weight).is_file():
            raise ModelNotAvailableError(
                f"No IP-Adapter file {weight} in {path}: pass ip_adapter_weight=FILE (a .safetensors or .bin in it)."
            )
        return _load_file(path / weight), str((path / weight).resolve()), ""
    if spec.count("/") == 1:
        weight = config.ip_adapter_weight or PUBLISHED[(method, source.family)][1]
        return _load_file(_hub_file(spec, weight, method)), spec, ""
    raise WorkbenchError(
        f"ip_adapter='{spec}' is neither auto, tiny, an existing file or folder, nor a hub id 'org/name'."
    )


def _load_file(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """A published IP-Adapter file as the ``{"image_proj", "ip_adapter"}`` dict ``load_ip_adapter`` takes."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        flat = load_file(str(path))
        state: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
        for key, value in flat.items():
            head, _, rest = key.partition(".")
            if head in state:
                state[head][rest] = value
        return state
    return torch.load(path, map_location="cpu", weights_only=True)


def _hub_file(repo: str, weight: str, method: str) -> Path:
    """A file of a hub repo from the local cache (or downloaded when allowed); never waits on a network."""
    from huggingface_hub import hf_hub_download

    from workbench.models.sources import ALLOW_DOWNLOAD_ENV, downloads_allowed

    try:
        return Path(hf_hub_download(repo, weight, local_files_only=not downloads_allowed()))
    except Exception as exc:  # noqa: BLE001 - every hub failure (offline, gated, missing file) means the same
        extra = " models/image_encoder/config.json models/image_encoder/model.safetensors" if method == (
            "ip-adapter-face") else ""  # fmt: skip
        raise ModelNotAvailableError(
            f"The IP-Adapter {repo}/{weight} is not on this machine ({type(exc).__name__}). On a machine with "
            f"internet run `hf download {repo} {weight}{extra}` and copy ~/.cache/huggingface here, pass "
            f"ip_adapter=/path/to/{Path(weight).name}, or set {ALLOW_DOWNLOAD_ENV}=1."
        ) from exc


def load_image_encoder(config: Any, method: str, source: Any, dtype: torch.dtype) -> tuple[Any, Any, str]:
    """(CLIPVisionModelWithProjection, CLIPImageProcessor, where from) for the face adapter."""
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    from workbench.models.sources import ALLOW_DOWNLOAD_ENV, downloads_allowed
    from workbench.models.tiny import build_tiny_image_encoder

    spec = config.image_encoder
    if spec == "tiny" or (spec is None and (config.ip_adapter == "tiny" or source.is_tiny)):
        encoder, processor = build_tiny_image_encoder()
        return encoder.to(dtype), processor, "tiny"
    spec = spec or PUBLISHED[(method, source.family)][2]
    location, _, subfolder = spec.partition(":") if not Path(spec).expanduser().exists() else (spec, "", "")
    try:
        encoder = CLIPVisionModelWithProjection.from_pretrained(
            location, subfolder=subfolder or None, dtype=dtype, local_files_only=not downloads_allowed()
        )
    except (OSError, ValueError) as exc:
        raise ModelNotAvailableError(
            f"The CLIP image encoder {spec} is not on this machine ({type(exc).__name__}). Run "
            f"`hf download {location}{' --include ' + repr(subfolder + '/*') if subfolder else ''}` on a machine "
            f"with internet, pass image_encoder=/path/to/folder, or set {ALLOW_DOWNLOAD_ENV}=1."
        ) from exc
    size = encoder.config.image_size
    processor = CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    return encoder, processor, spec


# -- attaching to a pipeline ---------------------------------------------------------------------------------------
def attach_identity(
    pipe: Any, config: Any, source: Any, workspace: Any, subject: str | None
) -> Identity | None:
    """Load the tuning-free adapter into ``pipe`` (already on its device) and encode the references once."""
    method = config.identity_method
    if method not in IP_METHODS:
        return None
    references = select_references(workspace, subject, list(config.references))
    state, adapter, sha = adapter_state_dict(config, method, source, pipe.unet)
    sha = sha or _state_sha256(state)
    encoder_source = None
    device, dtype = pipe.unet.device, pipe.unet.dtype
    if method == "ip-adapter-face":
        encoder, processor, encoder_source = load_image_encoder(config, method, source, dtype)
        pipe.register_modules(image_encoder=encoder.to(device), feature_extractor=processor)
    else:
        _check_faceid_size(state, workspace, subject)
    try:
        pipe.load_ip_adapter(state, subfolder=None, weight_name=None, image_encoder_folder=None)
    except (KeyError, RuntimeError, ValueError) as exc:
        raise WorkbenchError(
            f"The IP-Adapter {adapter} does not fit model '{source.spec}' ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:160]}); use the adapter made for this family ({source.family})."
        ) from exc
    pipe.set_ip_adapter_scale(config.ip_adapter_scale)
    embeds, negative = reference_embeds(pipe, method, workspace, subject, references)
    spec = {"identity": method, "ip_adapter": config.ip_adapter, "ip_adapter_weight": config.ip_adapter_weight,
            "image_encoder": config.image_encoder, "ip_adapter_scale": config.ip_adapter_scale,
            "references": [r["crop"] for r in references]}  # fmt: skip
    return Identity(
        method=method, adapter=adapter, adapter_sha256=sha, image_encoder=encoder_source,
        scale=config.ip_adapter_scale, references=[{k: v for k, v in r.items() if k != "path"} for r in references],
        embeds=embeds.to(device, dtype), negative=negative.to(device, dtype), spec=spec,
    )  # fmt: skip


def reference_embeds(
    pipe: Any, method: str, workspace: Any, subject: str, references: list[dict[str, Any]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(averaged reference, its unconditional counterpart) for an adapter already loaded into ``pipe``.

    The only per-photo work of a tuning-free identity: a server keeps the adapter loaded and calls this alone.
    """
    if method == "ip-adapter-face":
        return _face_embeds(pipe, references)
    return _faceid_embeds(workspace, subject, references)


def _face_embeds(pipe: Any, references: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
    from diffusers.models.embeddings import ImageProjection
    from PIL import Image

    images = [Image.open(r["path"]).convert("RGB") for r in references]
    layer = pipe.unet.encoder_hid_proj.image_projection_layers[0]
    # The Plus resampler reads the encoder's penultimate hidden states; the plain projection its image embeds.
    hidden = not isinstance(layer, ImageProjection)
    with torch.inference_mode():
        positive, negative = pipe.encode_image(images, pipe.unet.device, 1, hidden)
    return positive.float().mean(0, keepdim=True), negative.float().mean(0, keepdim=True)


def _faceid_embeds(
    workspace: Any, subject: str, references: list[dict[str, Any]]
) -> tuple[torch.Tensor, torch.Tensor]:
    from workbench.intake.dataset import read_references

    stored = read_references(workspace.intake_dir(subject))
    if stored is None:
        raise WorkbenchError(f"Subject '{subject}' has no face embeddings: run intake again.")
    rows = [stored["file_names"].index(r["crop"]) for r in references if r["crop"] in stored["file_names"]]
    if not rows:
        raise WorkbenchError(
            f"None of the chosen references of '{subject}' has a face embedding: run intake again."
        )
    mean = torch.as_tensor(stored["embeddings"][rows], dtype=torch.float32).mean(0, keepdim=True)
    return mean, torch.zeros_like(mean)


def _check_faceid_size(state: dict, workspace: Any, subject: str) -> None:
    from workbench.intake.dataset import read_references

    expected = int(state["image_proj"]["proj.0.weight"].shape[1])
    stored = read_references(workspace.intake_dir(subject))
    have = int(stored["embeddings"].shape[1]) if stored is not None else 0
    if have != expected:
        backend = stored["backend"] if stored is not None else "none"
        raise WorkbenchError(
            f"This FaceID adapter takes {expected}-d face embeddings, but '{subject}' has {have}-d ones "
            f"(face backend: {backend}). "
            + (INSIGHTFACE_ADVICE if expected == 512 else "Use the tiny adapter (ip_adapter=tiny) with dlib.")
        )


def _state_sha256(state: dict[str, dict[str, torch.Tensor]]) -> str:
    digest = hashlib.sha256()
    for part in sorted(state):
        for key in sorted(state[part]):
            value = state[part][key]
            if isinstance(value, torch.Tensor):
                digest.update(f"{part}.{key}".encode())
                digest.update(value.detach().cpu().contiguous().float().numpy().tobytes())
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
