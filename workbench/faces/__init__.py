"""Face analysis behind one interface; the backend is a config choice recorded with every run."""

from __future__ import annotations

from functools import lru_cache

from workbench.errors import WorkbenchError
from workbench.faces.base import Face, FaceBackend, as_rgb_uint8, compare, same_person

BACKENDS = ("dlib", "mediapipe", "insightface", "arcface")


@lru_cache(maxsize=8)
def get_backend(name: str = "dlib", **options) -> FaceBackend:
    """The named backend, built once per process (model files are large and slow to load)."""
    if name == "dlib":
        from workbench.faces.dlib_backend import DlibBackend

        return DlibBackend(**options)
    if name == "mediapipe":  # optional: raises MissingDependencyError naming the extra to install
        from workbench.faces.mediapipe_backend import MediapipeBackend

        return MediapipeBackend(**options)
    if name == "insightface":  # optional: needs the package and a model pack already on this machine
        from workbench.faces.insightface_backend import InsightFaceBackend

        return InsightFaceBackend(**options)
    if name == "arcface":  # dlib detection + any ArcFace ONNX file already on this machine (never downloaded)
        from workbench.faces.arcface_backend import ArcFaceBackend

        return ArcFaceBackend(**options)
    raise WorkbenchError(f"Unknown face backend '{name}': choose one of {', '.join(BACKENDS)}.")


__all__ = ["BACKENDS", "Face", "FaceBackend", "as_rgb_uint8", "compare", "get_backend", "same_person"]
