"""Provenance on every output: generation parameters in PNG text chunks and an "AI-generated" mark in XMP.

Each PNG carries
- ``workbench:generation`` (iTXt, JSON): every parameter needed to regenerate the image bit for bit;
- ``parameters`` (iTXt): the same in the A1111 text layout that image browsers and ComfyUI show;
- ``XML:com.adobe.xmp`` (iTXt): an XMP packet with IPTC ``Iptc4xmpExt:DigitalSourceType`` =
  ``trainedAlgorithmicMedia``, the IPTC/C2PA vocabulary term for "created by a trained model";
- optionally an invisible watermark (``invisible-watermark``'s DWT-DCT, only when that package is importable).

:func:`read_provenance` reads all of it back from a PNG, and finds the XMP packet in any file that kept it
(JPEG, WebP, TIFF), so the evaluation can check whether the mark survives a re-encode.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
#: Terms that say "made (at least partly) by a model".
AI_SOURCE_TYPES = {
    DIGITAL_SOURCE_TYPE,
    "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia",
    "http://cv.iptc.org/newscodes/digitalsourcetype/algorithmicMedia",
}
PARAMS_KEY = "workbench:generation"
XMP_KEY = "XML:com.adobe.xmp"
WATERMARK_TEXT = b"HSWB"  # 32 bits
NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "dc": "http://purl.org/dc/elements/1.1/",
}
_XMP_PACKET = re.compile(rb"<x:xmpmeta.*?</x:xmpmeta>", re.DOTALL)


def software() -> str:
    try:
        return f"Headshot Workbench {metadata.version('headshot-workbench')}"
    except metadata.PackageNotFoundError:
        return "Headshot Workbench"


def xmp_packet(description: str, created: str | None = None) -> str:
    created = created or datetime.now(timezone.utc).isoformat(timespec="seconds")
    text = _escape(description)
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        f'<x:xmpmeta xmlns:x="{NS["x"]}">\n'
        f' <rdf:RDF xmlns:rdf="{NS["rdf"]}">\n'
        '  <rdf:Description rdf:about=""\n'
        f'    xmlns:Iptc4xmpExt="{NS["Iptc4xmpExt"]}"\n'
        f'    xmlns:xmp="{NS["xmp"]}"\n'
        f'    xmlns:dc="{NS["dc"]}"\n'
        f'    Iptc4xmpExt:DigitalSourceType="{DIGITAL_SOURCE_TYPE}"\n'
        f'    xmp:CreatorTool="{_escape(software())}"\n'
        f'    xmp:CreateDate="{created}">\n'
        f'   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">{text}</rdf:li></rdf:Alt></dc:description>\n'
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    )


def a1111_text(params: dict[str, Any]) -> str:
    """The A1111 "parameters" layout (prompt, negative, then key: value pairs)."""
    pairs = {
        "Steps": params.get("steps"), "Sampler": params.get("scheduler") or params.get("scheduler_class"),
        "CFG scale": params.get("guidance_scale"), "Seed": params.get("seed"),
        "Size": f"{params.get('width')}x{params.get('height')}", "Model": params.get("model"),
        "Lora": f"{params.get('lora')}:{params.get('lora_scale')}" if params.get("lora") else None,
        "ControlNet": "; ".join(c["spec"] for c in params.get("controls", [])) or None,
        "Presets": ", ".join(params.get("presets", [])) or None, "Software": software(),
    }  # fmt: skip
    tail = ", ".join(f"{k}: {v}" for k, v in pairs.items() if v is not None)
    return f"{params.get('prompt', '')}\nNegative prompt: {params.get('negative_prompt', '')}\n{tail}"


def save_png(image: Image.Image, path: str | Path, params: dict[str, Any]) -> Path:
    """Write ``image`` with its parameters and the AI-generated mark; atomic (temp file + rename)."""
    path = Path(path)
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", software())
    info.add_itxt(PARAMS_KEY, json.dumps(params, sort_keys=True, default=str))
    info.add_itxt("parameters", a1111_text(params))
    info.add_itxt(XMP_KEY, xmp_packet(f"AI-generated image ({software()}); seed {params.get('seed')}."))
    fd, tmp = tempfile.mkstemp(suffix=".png.part", dir=path.parent)
    os.close(fd)
    try:
        image.save(tmp, format="PNG", pnginfo=info)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


# -- invisible watermark (optional) ------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def watermark_available() -> bool:
    return importlib.util.find_spec("imwatermark") is not None


def apply_watermark(image: Image.Image) -> tuple[Image.Image, str | None]:
    """Embed ``HSWB`` with DWT-DCT when invisible-watermark is installed and the image is big enough."""
    if not watermark_available() or min(image.size) < 256:
        return image, None
    from imwatermark import WatermarkEncoder

    encoder = WatermarkEncoder()
    encoder.set_watermark("bytes", WATERMARK_TEXT)
    bgr = np.asarray(image.convert("RGB"))[:, :, ::-1]
    marked = encoder.encode(np.ascontiguousarray(bgr), "dwtDct")
    return Image.fromarray(np.ascontiguousarray(marked[:, :, ::-1])), "dwtDct:" + WATERMARK_TEXT.decode()


def read_watermark(image: Image.Image) -> str | None:
    if not watermark_available() or min(image.size) < 256:
        return None
    from imwatermark import WatermarkDecoder

    decoder = WatermarkDecoder("bytes", len(WATERMARK_TEXT) * 8)
    bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
    try:
        found = decoder.decode(bgr, "dwtDct")
    except Exception:  # a too-damaged or too-small image
        return None
    return found.decode("latin-1") if found == WATERMARK_TEXT else None


# -- reading -----------------------------------------------------------------------------------------------------
def read_provenance(path: str | Path) -> dict[str, Any]:
    """What an image says about its origin.

    Returns ``parameters`` (the generation JSON or None), ``parameters_text`` (A1111 layout), ``xmp`` (the packet),
    ``digital_source_type``, ``ai_generated`` (the XMP term is one of the IPTC "made by a model" terms),
    ``watermark`` (the decoded text or None) and ``watermark_checked`` (whether a decoder was available).
    """
    path = Path(path)
    with Image.open(path) as image:
        image.load()
        info = dict(image.info)
        format_ = image.format
        watermark = read_watermark(image)
    raw_params = info.get(PARAMS_KEY)
    params = json.loads(raw_params) if isinstance(raw_params, str) else None
    xmp = info.get(XMP_KEY) or info.get("xmp")
    if isinstance(xmp, bytes):
        xmp = xmp.decode("utf-8", "replace")
    if not xmp:  # any container that kept the packet verbatim (JPEG APP1, WebP XMP chunk, TIFF tag 700)
        match = _XMP_PACKET.search(path.read_bytes())
        xmp = match.group(0).decode("utf-8", "replace") if match else None
    source_type = digital_source_type(xmp) if xmp else None
    return {
        "path": str(path),
        "format": format_,
        "parameters": params,
        "parameters_text": info.get("parameters"),
        "xmp": xmp,
        "digital_source_type": source_type,
        "ai_generated": source_type in AI_SOURCE_TYPES,
        "watermark": watermark,
        "watermark_checked": watermark_available(),
    }


def digital_source_type(xmp: str) -> str | None:
    """``Iptc4xmpExt:DigitalSourceType`` from an XMP packet, written as an attribute or as an element."""
    match = _XMP_PACKET.search(xmp.encode("utf-8"))
    if match is None:
        return None
    try:
        root = ET.fromstring(match.group(0))
    except ET.ParseError:
        return None
    key = f"{{{NS['Iptc4xmpExt']}}}DigitalSourceType"
    for element in root.iter():
        if key in element.attrib:
            return element.attrib[key].strip()
        if element.tag == key:
            resource = element.attrib.get(f"{{{NS['rdf']}}}resource")
            return (resource or element.text or "").strip() or None
    return None


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
