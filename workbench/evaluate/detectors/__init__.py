"""Detector plug-ins for the detectability protocol in :mod:`workbench.evaluate.detect`.

========  ==========  =====================================================================================
name      kind        what
========  ==========  =====================================================================================
spectral  probe       high-frequency noise-residual spectrum; no weights (:mod:`.spectral`)
clip      probe       CLIP ViT image embeddings (UnivFD's feature), probe fitted here (:mod:`.univfd`)
univfd    pretrained  UnivFD's published head on CLIP ViT-L/14 (Ojha et al., CVPR 2023; MIT) (:mod:`.univfd`)
commfor   pretrained  Community Forensics ViT-S/16 (Park & Owens, CVPR 2025; MIT) (:mod:`.commfor`)
========  ==========  =====================================================================================

Every plug-in records its source, licence and the SHA-256 of the weights it read (:class:`DetectorInfo`).
"""

from __future__ import annotations

from typing import Literal

from workbench.errors import WorkbenchError
from workbench.evaluate.detectors.base import Detector, DetectorInfo, sha256_file

DetectorName = Literal["spectral", "clip", "univfd", "commfor"]
DETECTORS: tuple[str, ...] = ("spectral", "clip", "univfd", "commfor")
# The content-matched crop side each plug-in reads as is: UnivFD centre-crops 224 px without resizing;
# Community Forensics resizes the shorter side to 440 before its 384 px centre crop; the spectral probe
# needs a crop near the faces' native resolution (shrinking by s erases traces above 1/(2s) cycles/px).
DEFAULT_INPUT_SIZE: dict[str, int] = {"spectral": 256, "clip": 224, "univfd": 224, "commfor": 440}

__all__ = [
    "DEFAULT_INPUT_SIZE", "DETECTORS", "Detector", "DetectorInfo", "DetectorName", "load_detector",
    "sha256_file",
]  # fmt: skip


def load_detector(
    name: str,
    *,
    weights: str | None = None,
    clip_model: str | None = None,
    input_size: int = 256,
    device: str = "cpu",
) -> Detector:
    """A plug-in by name. ``weights``: UnivFD's head file, or Community Forensics' folder / hub id / file
    (default ``OwensLab/commfor-model-384``); ``clip_model``: the CLIP backbone (default
    ``openai/clip-vit-large-patch14``); ``input_size``: the crop side for the weight-free spectral probe."""
    if name == "spectral":
        from workbench.evaluate.detectors.spectral import SpectralProbe

        return SpectralProbe(input_size)
    if name in ("clip", "univfd"):
        from workbench.evaluate.detectors.univfd import CLIP_HUB_ID, ClipProbe, UnivFD

        backbone = clip_model or CLIP_HUB_ID
        return ClipProbe(backbone, device) if name == "clip" else UnivFD(weights, backbone, device)
    if name == "commfor":
        from workbench.evaluate.detectors.commfor import CommunityForensics

        return CommunityForensics(weights, device)
    raise WorkbenchError(f"Unknown detector '{name}': choose from {', '.join(DETECTORS)}.")
