"""Prompts from a subject and a combination of presets, plus the sampling settings the presets ask for.

The template names one slot per category (``{framing}``, ``{outfit}``, ``{lighting}``, ``{backdrop}``) and the
subject (``{subject}`` = "<token> <class word>", e.g. "sks person"); a fragment of a category that has no slot
(a user's own category) is appended at the end, so user presets always reach the prompt.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any

from workbench.generate.presets import Preset

DEFAULT_TEMPLATE = (
    # Kept short: CLIP reads 77 tokens and silently drops the rest (tests check every look fits).
    "professional headshot photo of {subject}, {framing}, {outfit}, {lighting}, {backdrop}, 85mm, photorealistic"
)
DEFAULT_NEGATIVE = (
    "cartoon, illustration, painting, 3d render, deformed face, asymmetrical eyes, "
    "blurry, lowres, jpeg artifacts, watermark, text, plastic skin"
)
FALLBACK_TOKEN, FALLBACK_CLASS = "sks", "person"
#: Sampling defaults when neither the config nor a preset sets a value.
DEFAULT_STEPS = 30
DEFAULT_GUIDANCE = {"sd15": 7.0, "sdxl": 6.0}


@dataclass(frozen=True)
class PromptJob:
    """Everything one combination of presets decides: prompts and sampling settings."""

    presets: tuple[str, ...]
    prompt: str
    negative_prompt: str
    steps: int
    guidance_scale: float
    scheduler: str | None  # None keeps the model's own scheduler


def subject_words(subject: dict[str, Any] | None) -> tuple[str, str]:
    """The identifier token and class word from ``subject.json`` (``sks``/``person`` when absent)."""
    subject = subject or {}
    return str(subject.get("token") or FALLBACK_TOKEN), str(subject.get("class_word") or FALLBACK_CLASS)


def build_prompt(template: str, token: str, class_word: str, combo: list[Preset]) -> str:
    fragments: dict[str, list[str]] = {}
    for preset in combo:
        if preset.prompt:
            fragments.setdefault(preset.category, []).append(preset.prompt)
    slots = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    values = {k: ", ".join(v) for k, v in fragments.items()}
    values.update(token=token, class_word=class_word, subject=f"{token} {class_word}")
    text = template.format_map(_Blank(values))
    leftovers = [", ".join(v) for k, v in fragments.items() if k not in slots]
    return _tidy(", ".join([text, *leftovers]))


def build_negative(base: str, combo: list[Preset]) -> str:
    return _tidy(", ".join([base, *(p.negative for p in combo if p.negative)]))


def build_job(
    combo: list[Preset],
    *,
    token: str,
    class_word: str,
    family: str,
    template: str | None = None,
    negative: str | None = None,
    steps: int | None = None,
    guidance_scale: float | None = None,
    scheduler: str | None = None,
) -> PromptJob:
    """Config values win over preset values, which win over the model's defaults; later presets win ties."""
    settings: dict[str, Any] = {}
    for preset in combo:
        settings.update(preset.settings())
    return PromptJob(
        presets=tuple(p.name for p in combo),
        prompt=build_prompt(template or DEFAULT_TEMPLATE, token, class_word, combo),
        negative_prompt=build_negative(DEFAULT_NEGATIVE if negative is None else negative, combo),
        steps=int(steps if steps is not None else settings.get("steps", DEFAULT_STEPS)),
        guidance_scale=float(
            guidance_scale
            if guidance_scale is not None
            else settings.get("guidance_scale", DEFAULT_GUIDANCE[family])
        ),
        scheduler=scheduler if scheduler is not None else settings.get("scheduler"),
    )


class _Blank(dict):
    """Slots with no preset chosen become empty (and their commas are tidied away)."""

    def __missing__(self, key: str) -> str:
        return ""


def _tidy(text: str) -> str:
    parts = [p.strip() for p in re.split(r",", text)]
    return ", ".join(p for p in parts if p)
