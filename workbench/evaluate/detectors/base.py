"""What every detector plug-in shares: its record (source, licence, weights hash) and offline weight lookup.

A plug-in is one of two kinds:

* ``probe``: it turns content-matched crops into features; the detectability protocol fits a cross-validated
  linear probe on them (nothing published is scored, so the question is "is *any* linear difference there").
* ``pretrained``: it turns crops into the published detector's logit (higher = generated); nothing is fitted,
  so its AUC is the published detector's, on these images.

Weights are found on this machine only -- a local file or folder, or a hub id already in the Hugging Face
cache (``local_files_only=True``) -- and a missing one raises :class:`ModelNotAvailableError` naming the
``hf download`` command, because an evaluation must never hang on, or silently depend on, a download.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from workbench.errors import ModelNotAvailableError, WorkbenchError

Kind = Literal["probe", "pretrained"]


@dataclass(frozen=True)
class DetectorInfo:
    """Everything a report needs to say which detector produced a figure, and to re-obtain the same one."""

    name: str
    kind: Kind
    source: str  # paper and repository URL
    licence: str
    input_size: int  # side (px) of the content-matched crop the plug-in expects
    weights: str | None = None  # the weights file read (None for a weight-free probe)
    sha256: str | None = None  # of that file, so two runs can prove they used the same detector
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the backbone's own file and hash

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Detector:
    """A plug-in: ``detector(crops)`` gives features (kind ``probe``) or logits (kind ``pretrained``)."""

    info: DetectorInfo

    def __call__(self, crops: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    @property
    def kind(self) -> Kind:
        return self.info.kind


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, read in 1 MiB chunks (a ViT-L checkpoint is 1.7 GB; hashing it takes seconds)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def weights_files(folder: Path) -> list[Path]:
    """The files a ``from_pretrained`` of ``folder`` reads: safetensors (sharded or not), else a .bin."""
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("pytorch_model*.bin"))
    if not files:
        raise ModelNotAvailableError(
            f"{folder} holds no weights (*.safetensors or pytorch_model.bin): the download is incomplete; "
            "run `hf download` for the repository again."
        )
    return files


def hash_files(files: list[Path]) -> str:
    """One file's SHA-256; for shards, that of the sorted ``name:sha256`` lines (stable, re-checkable)."""
    if len(files) == 1:
        return sha256_file(files[0])
    lines = "".join(f"{f.name}:{sha256_file(f)}\n" for f in sorted(files))
    return hashlib.sha256(lines.encode()).hexdigest()


def is_hub_id(spec: str) -> bool:
    return spec.count("/") == 1 and not spec.startswith((".", "/", "~")) and not Path(spec).suffix


def resolve_local(spec: str, *, what: str, alternative: str, hub_id: str) -> Path:
    """A local file/folder as is, or a hub id's snapshot folder from the local Hugging Face cache only.

    ``what`` names the model in the error, ``hub_id`` is where its published weights live, and
    ``alternative`` says what else the user can do (one clause).
    """
    path = Path(spec).expanduser()
    if path.exists():
        return path
    if not is_hub_id(spec):
        raise ModelNotAvailableError(
            f"{what} weights '{spec}' are not on this machine (no such file or folder): get them with "
            f"`hf download {hub_id} --local-dir <folder>` and pass that folder, or {alternative}."
        )
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(spec, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        raise ModelNotAvailableError(
            f"{what} weights '{spec}' are not in the local Hugging Face cache and this evaluation never "
            f"downloads: run `hf download {spec}` on a machine with internet (then copy the cache over), or "
            f"{alternative}."
        ) from None


def load_state_dict(path: Path) -> dict[str, Any]:
    """Tensors from a .safetensors file, or from a .pt/.pth with ``torch.load(weights_only=True)`` (no pickle
    code runs); published checkpoints saved on a GPU are mapped to the CPU."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(path)))
    if path.suffix not in (".pt", ".pth", ".bin"):
        raise WorkbenchError(f"{path.name}: expected a .safetensors, .pt or .pth weights file.")
    import torch

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling refusal is the same user-facing problem
        raise WorkbenchError(
            f"{path.name} is not a plain tensor checkpoint ({type(exc).__name__}): convert it to "
            "safetensors, or use the published file unchanged."
        ) from None
    if not isinstance(state, dict):
        raise WorkbenchError(f"{path.name} does not hold a state dict: use the published weights file.")
    return state
