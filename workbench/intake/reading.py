"""Reading whatever a person uploads: every failure becomes a reason for that file, never a crash.

The original bytes are read once; the same bytes are hashed, stored byte-identical in the subject's
``originals/`` and decoded, so what we analyse is exactly what we keep.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from workbench.errors import WorkbenchError

# Files that a folder of photos often holds and that nobody means to upload.
_JUNK = {"thumbs.db", "desktop.ini"}
# Animated formats: one frame of an animation is not a photo of the subject.
_ANIMATED_FORMATS = {"GIF", "PNG", "WEBP"}
_EXIF_IFD, _DATETIME_ORIGINAL, _DATETIME, _ORIENTATION = 0x8769, 0x9003, 0x0132, 0x0112


class PhotoRejected(Exception):
    """A file that cannot be used, with the sentence that tells the user why and what to do."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass
class Photo:
    image: np.ndarray  # RGB uint8, EXIF orientation applied
    format: str
    mode: str  # the file's own pixel mode before conversion
    orientation: int  # EXIF orientation tag (1 = upright)
    capture_date: datetime | None


@lru_cache(maxsize=1)
def _register_heif() -> bool:
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


def collect_inputs(photos: list[str | Path]) -> list[Path]:
    """Files as given, folders expanded (recursively, sorted); hidden and system files in folders are skipped."""
    found: list[Path] = []
    for item in photos:
        path = Path(item).expanduser()
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                # Links and special files are kept here so that read_bytes refuses them with a reason.
                wanted = child.is_file() or child.is_symlink() or not child.is_dir()
                if wanted and not child.name.startswith(".") and child.name.lower() not in _JUNK:
                    found.append(child)
        else:
            found.append(path)  # a missing file is reported as such, not raised
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path if path.is_symlink() or not path.exists() else path.resolve(), path)
    return list(unique.values())


def read_bytes(path: Path) -> bytes:
    if path.is_symlink():
        # A link could make intake copy any file the user can read (e.g. /etc/passwd) into the subject.
        raise PhotoRejected(
            "symlink", f"{path.name} is a symbolic link, not a photo: upload the photo file itself."
        )
    if not path.exists():
        raise PhotoRejected("missing", f"The file {path} does not exist: check the path.")
    if not stat.S_ISREG(os.lstat(path).st_mode):
        raise PhotoRejected(
            "special",
            f"{path.name} is not a regular file (a device, pipe or folder): upload photo files only.",
        )
    data = path.read_bytes()
    if not data:
        raise PhotoRejected(
            "empty", "The file is empty (0 bytes): the upload or copy failed; export the photo again."
        )
    return data


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def store_original(data: bytes, name: str, originals_dir: Path) -> Path:
    """Keep the uploaded bytes unchanged; a different file with the same name gets its hash in the name."""
    originals_dir.mkdir(parents=True, exist_ok=True)
    digest = sha256(data)
    target = originals_dir / name
    if target.exists() and sha256(target.read_bytes()) != digest:
        target = originals_dir / f"{Path(name).stem}-{digest[:8]}{Path(name).suffix}"
    if not target.exists() or sha256(target.read_bytes()) != digest:
        tmp = target.with_name(f".{target.name}.part")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    return target


def decode_photo(data: bytes, max_megapixels: float = 80.0) -> Photo:
    """Decode ``data`` into an upright sRGB uint8 array, or raise :class:`PhotoRejected` with the reason."""
    _register_heif()
    with warnings.catch_warnings():
        # Pillow only warns between 89 and 179 MP; an upload that big is refused, not decoded.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise PhotoRejected("too_large", _too_large(str(exc))) from None
        except UnidentifiedImageError:
            raise PhotoRejected(
                "not_an_image",
                "This is not an image we can read: upload a JPEG, PNG, WebP or HEIC photo.",
            ) from None
        except Exception as exc:  # noqa: BLE001 - any decoder failure is the file's problem, not ours
            raise PhotoRejected(
                "corrupt", f"The file could not be opened ({exc}): export the photo again."
            ) from None

        width, height = image.size
        if width * height > max_megapixels * 1e6:
            raise PhotoRejected(
                "too_large",
                f"The image claims {width}x{height} pixels ({width * height / 1e6:.0f} MP), more than the "
                f"{max_megapixels:.0f} MP limit: it may be a decompression bomb; export a smaller copy.",
            )
        if image.format in _ANIMATED_FORMATS and getattr(image, "n_frames", 1) > 1:
            raise PhotoRejected(
                "animated",
                f"This is an animated {image.format} ({image.n_frames} frames): upload a still photo instead.",
            )
        try:
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise PhotoRejected("too_large", _too_large(str(exc))) from None
        except Exception as exc:  # noqa: BLE001
            raise PhotoRejected(
                "corrupt",
                f"The file is truncated or corrupt ({exc}): copy or export the original photo again.",
            ) from None
    if width < 16 or height < 16:
        raise PhotoRejected(
            "too_small", f"The image is only {width}x{height} pixels: upload the full-size photo."
        )

    exif = image.getexif()
    orientation = int(exif.get(_ORIENTATION, 1) or 1)
    capture_date = _capture_date(exif)
    file_format, mode = image.format or "unknown", image.mode
    image = ImageOps.exif_transpose(image)
    return Photo(_to_rgb(image), file_format, mode, orientation, capture_date)


def read_image(path: str | Path) -> np.ndarray:
    """Any image file as sRGB uint8, decoded as uploads are (EXIF orientation, ICC profile, 16-bit, alpha,
    HEIC); the one loader every stage uses for photos, references and outputs alike."""
    try:
        return decode_photo(Path(path).read_bytes()).image
    except (OSError, PhotoRejected) as exc:
        raise WorkbenchError(
            f"Cannot read image {path}: {exc}. Remove it from the folder or re-export it."
        ) from exc


def _too_large(detail: str) -> str:
    return f"The image is too large to decode safely ({detail.split('.')[0]}): export a smaller copy."


def _to_rgb(image: Image.Image) -> np.ndarray:
    """Any Pillow mode to sRGB uint8: colour profiles applied, 16-bit scaled, transparency over white."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # Pillow's convert("L") clips 16-bit values at 255 (a white image); scale the full range instead.
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if array.max() > 255 else 255.0
        gray = np.clip(np.round(array / peak * 255.0), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.stack([gray] * 3, axis=-1))
    if mode == "F":
        array = np.asarray(image, dtype=np.float64)
        scale = 255.0 if array.max() <= 1.0 else 255.0 / max(array.max(), 1e-9)
        gray = np.clip(np.round(array * scale), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.stack([gray] * 3, axis=-1))
    if mode in ("P", "PA"):
        image = image.convert("RGBA")
    elif mode in ("LA", "La", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    image = _to_srgb(image)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def _to_srgb(image: Image.Image) -> Image.Image:
    """Apply an embedded ICC profile (CMYK print profiles, Display P3 from phones) to get sRGB."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA", "CMYK", "L"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        mode = "RGB" if image.mode != "RGBA" else "RGBA"
        converted = ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode=mode)
        return converted if converted is not None else image
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image  # a broken profile: plain conversion is still far better than refusing the photo


def _capture_date(exif: Image.Exif) -> datetime | None:
    try:
        value = exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
    except Exception:  # noqa: BLE001 - malformed EXIF must not reject an otherwise good photo
        return None
    if not value:
        return None
    try:
        return datetime.strptime(str(value).strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
