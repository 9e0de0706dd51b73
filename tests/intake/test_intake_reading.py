"""Hostile uploads: every bad file gets a reason, no file crashes the batch, and the good files get through."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

from workbench.intake import IntakeConfig, PhotoRejected, decode_photo, run_intake

# Small photos keep the test fast; a 256 px crop and tolerated duplicates let every good variant through.
CONFIG = IntakeConfig(resolution=256, warn_only=["duplicate", "tilt"], retention_days=0)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (a decompression bomb) with almost no data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def _encoded(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def upload(tmp_path_factory, astronaut) -> tuple[Path, dict[str, bool]]:
    """A folder of uploads; the value says whether the file should be accepted."""
    folder = tmp_path_factory.mktemp("uploads")
    face = Image.fromarray(cv2.resize(astronaut, (320, 320), interpolation=cv2.INTER_AREA))
    jpeg = _encoded(face, "JPEG", quality=90)
    files: dict[str, tuple[bytes, bool]] = {
        "good.jpg": (jpeg, True),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], False),
        "empty.jpg": (b"", False),
        "notes.jpg": (b"these are my holiday notes, not a photo\n" * 20, False),
        "bomb.png": (_png_header_only(60_000, 60_000), False),
        "just-over-limit.png": (_png_header_only(10_000, 9_000), False),
        "animated.gif": (
            _encoded(face.convert("P"), "GIF", save_all=True, append_images=[face.rotate(10).convert("P")]),
            False,
        ),
        "cmyk.jpg": (_encoded(face.convert("CMYK"), "JPEG", quality=92), True),
        "palette.png": (_encoded(face.convert("P", palette=Image.Palette.ADAPTIVE, colors=256), "PNG"), True),
        "rgba.png": (_encoded(_with_alpha(face), "PNG"), True),
        "photo.webp": (_encoded(face, "WEBP", quality=90), True),
        "sixteen-bit.png": (
            cv2.imencode(".png", (np.asarray(face)[..., ::-1].astype(np.uint16) * 257))[1].tobytes(),
            True,
        ),
        "rotated-exif.jpg": (_rotated_with_exif(face), True),
        "lfw-tiny.png": (
            _encoded(Image.fromarray((data.lfw_subset()[0] * 255).astype(np.uint8)), "PNG"),
            False,
        ),
    }
    heic = _heic(face)
    if heic is not None:
        files["iphone.heic"] = (heic, True)
    for name, (content, _) in files.items():
        (folder / name).write_bytes(content)
    return folder, {name: ok for name, (_, ok) in files.items()}


def _with_alpha(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    alpha = np.full(image.size[::-1], 255, np.uint8)
    alpha[:40, :40] = 0  # a transparent corner: must become white, not black
    rgba.putalpha(Image.fromarray(alpha))
    return rgba


def _rotated_with_exif(image: Image.Image) -> bytes:
    # Stored sideways, with orientation 6 ("rotate 90 degrees clockwise to display"), as phones do.
    sideways = image.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encoded(sideways, "JPEG", quality=90, exif=exif)


def _heic(image: Image.Image) -> bytes | None:
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
        return _encoded(image, "HEIF", quality=90)
    except Exception:  # noqa: BLE001 - a pillow-heif build without an encoder
        return None


def test_hostile_uploads(upload, workspace):
    folder, expected = upload
    result = run_intake("hostile", CONFIG, workspace=workspace, photos=[folder])  # must not raise
    by_name = {p.name: p for p in result.photos}
    assert set(by_name) == set(expected)
    for name, should_accept in expected.items():
        photo = by_name[name]
        assert photo.accepted is should_accept, (name, photo.reasons)
        if not should_accept:
            assert photo.reasons and all(r.endswith(".") for r in photo.reasons), name
    reasons = {name: " ".join(p.reasons) for name, p in by_name.items()}
    assert "truncated or corrupt" in reasons["truncated.jpg"]
    assert "empty (0 bytes)" in reasons["empty.jpg"]
    assert "not an image" in reasons["notes.jpg"]
    assert "too large" in reasons["bomb.png"] and "decompression bomb" in reasons["just-over-limit.png"]
    assert "animated" in reasons["animated.gif"]
    assert "face" in reasons["lfw-tiny.png"].lower()
    assert by_name["rotated-exif.jpg"].details["exif_orientation"] == 6
    # Nothing a user gave is lost or altered: every file is kept byte-identical (an empty one holds nothing).
    originals = workspace.originals_dir("hostile")
    for name in set(expected) - {"empty.jpg"}:
        assert (
            hashlib.sha256((originals / name).read_bytes()).digest()
            == hashlib.sha256((folder / name).read_bytes()).digest()
        ), name


def test_conversions_keep_the_colours(upload, astronaut):
    folder, _ = upload
    reference = decode_photo((folder / "good.jpg").read_bytes()).image.astype(float)
    for name in ["cmyk.jpg", "palette.png", "photo.webp", "sixteen-bit.png", "rotated-exif.jpg"]:
        image = decode_photo((folder / name).read_bytes()).image
        assert image.shape == reference.shape and image.dtype == np.uint8, name
        assert np.abs(image.astype(float) - reference).mean() < 8, name  # upright and the same colours
    rgba = decode_photo((folder / "rgba.png").read_bytes()).image
    assert (rgba[:40, :40] == 255).all()  # transparency over white


def test_sixteen_bit_grey_is_scaled_not_clipped(astronaut):
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257
    data_16 = _encoded(Image.fromarray(grey), "PNG")
    assert Image.open(io.BytesIO(data_16)).mode.startswith("I")
    image = decode_photo(data_16).image
    assert abs(image.mean() - grey.mean() / 257) < 1  # Pillow's own convert would clip to white


@pytest.mark.parametrize(
    "content, kind",
    [(b"", "empty"), (b"GIF89a-not-really", "not_an_image"), (_png_header_only(60_000, 60_000), "too_large")],
    ids=["empty", "not-an-image", "bomb"],
)
def test_decode_rejects_with_a_kind(content, kind, tmp_path):
    from workbench.intake.reading import read_bytes

    path = tmp_path / "upload.jpg"
    path.write_bytes(content)
    with pytest.raises(PhotoRejected) as info:
        decode_photo(read_bytes(path))
    assert info.value.kind == kind and info.value.reason
