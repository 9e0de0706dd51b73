"""Does an image still carry its provenance mark?

The generate stage writes (a) the generation parameters as PNG text (key ``parameters`` or ``workbench``) and
(b) an XMP packet declaring IPTC DigitalSourceType ``trainedAlgorithmicMedia``. Re-encoding, screenshots and
most social-media uploads strip both; this reader says which survived. It reads the raw bytes for the XMP
packet (PNG iTXt, JPEG APP1, WebP/TIFF alike) so it does not depend on an XMP library.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image

AI_SOURCE_TYPE = "trainedAlgorithmicMedia"
IPTC_SOURCE_TYPE_URI = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
PARAMETER_KEYS = ("parameters", "workbench")
_XMP = re.compile(rb"<x:xmpmeta.*?</x:xmpmeta>", re.DOTALL)
_SOURCE = re.compile(r"DigitalSourceType[^>]*?(?:>|=\")\s*([^<\"]+)")


@dataclass(frozen=True)
class Provenance:
    xmp_present: bool
    digital_source_type: str | None
    ai_marked: bool  # the XMP says trainedAlgorithmicMedia
    parameters_present: bool  # PNG text with the generation parameters

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def read_provenance(path: str | Path) -> Provenance:
    path = Path(path)
    raw = path.read_bytes()
    packets = [m.group(0).decode("utf-8", "replace") for m in _XMP.finditer(raw)]
    try:
        with Image.open(path) as im:
            text = dict(getattr(im, "text", None) or {})
            info_xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
    except OSError:
        text, info_xmp = {}, None
    if info_xmp:
        packets.append(info_xmp.decode("utf-8", "replace") if isinstance(info_xmp, bytes) else str(info_xmp))
    if "XML:com.adobe.xmp" in text:
        packets.append(text["XML:com.adobe.xmp"])
    source = None
    for packet in packets:
        match = _SOURCE.search(packet)
        if match:
            source = match.group(1).strip()
            break
    marked = any(AI_SOURCE_TYPE in p for p in packets)
    return Provenance(bool(packets), source, marked, any(k in text for k in PARAMETER_KEYS))
