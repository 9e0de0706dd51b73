"""Fixtures for the intake tests: real faces from packages, written to disk the way users upload them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session")
def dlib_backend():
    from workbench.faces import get_backend

    return get_backend("dlib")


@pytest.fixture(scope="session")
def save_jpeg():
    """Write a JPEG as a camera would, optionally with an EXIF capture date ("YYYY:MM:DD HH:MM:SS")."""
    return _save_jpeg


def _save_jpeg(image: np.ndarray, path: Path, quality: int = 92, date: str | None = None) -> Path:
    exif = Image.Exif()
    if date:
        exif.get_ifd(0x8769)[0x9003] = date  # DateTimeOriginal, "YYYY:MM:DD HH:MM:SS"
    Image.fromarray(image).save(path, quality=quality, exif=exif)
    return path
