"""A real Stable Diffusion CLIP tokenizer built offline from the BPE file that open-clip-torch ships.

SD 1.5 and SDXL use OpenAI's CLIP BPE (49,408 tokens). open-clip-torch bundles the same merges as
``bpe_simple_vocab_16e6.txt.gz``; we rebuild ``vocab.json`` + ``merges.txt`` from it in the order OpenAI's
tokenizer assigns ids, so token ids match the hub tokenizer exactly.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

from transformers import CLIPTokenizer

from workbench.errors import MissingDependencyError

_N_MERGES = 49152 - 256 - 2  # OpenAI CLIP keeps this many merges: 256 bytes x2 + merges + 2 specials = 49408


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable-unicode table (the base alphabet of the BPE)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


def bundled_bpe_path() -> Path:
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "The offline CLIP tokenizer needs the BPE file from open-clip-torch: "
            "run `pip install --no-deps open-clip-torch` (the project's setup script does this)."
        )
    # Located by path, never imported: open_clip's __init__ imports torchvision, which breaks CPU installs.
    return Path(spec.submodule_search_locations[0]) / "bpe_simple_vocab_16e6.txt.gz"


def write_clip_tokenizer_files(folder: Path) -> Path:
    """Write vocab.json and merges.txt for the CLIP BPE into ``folder``."""
    lines = gzip.open(bundled_bpe_path()).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : _N_MERGES + 1]]
    alphabet = list(_bytes_to_unicode().values())
    tokens = alphabet + [t + "</w>" for t in alphabet] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    return folder


def build_clip_tokenizer(folder: Path, pad_token: str = "<|endoftext|>") -> CLIPTokenizer:
    """SD 1.5 pads with ``<|endoftext|>``; SDXL's second tokenizer pads with ``!`` (id 0)."""
    if not (folder / "vocab.json").is_file():
        write_clip_tokenizer_files(folder)
    return CLIPTokenizer.from_pretrained(str(folder), pad_token=pad_token, model_max_length=77)
