"""Style presets as data: YAML files of lighting, backdrop, outfit, framing and "look" presets.

A style file names its category and maps preset names to a prompt fragment and, optionally, a negative
fragment and sampling settings::

    category: lighting
    presets:
      rembrandt:
        description: Short one-side key light, a triangle of light on the shadow cheek.
        prompt: Rembrandt lighting, single key light at 45 degrees, triangle of light on the cheek
        negative: flat lighting
        guidance_scale: 7.0       # optional: steps, guidance_scale, scheduler
    # a look bundles presets of other categories:
    category: look
    presets:
      corporate: {includes: [soft-studio, light-grey, business-suit, head-and-shoulders]}

Shipped files live in ``workbench/generate/styles/``; users add presets without code by putting YAML files in
a folder passed as ``style_dirs`` (a preset there overrides a shipped one of the same name).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from workbench.errors import WorkbenchError
from workbench.generate.config import SCHEDULERS

#: Order in which categories fill a combination (and in which their settings override each other: later wins).
CATEGORY_ORDER = ("framing", "outfit", "lighting", "backdrop")
_FIELDS = {"description", "prompt", "negative", "steps", "guidance_scale", "scheduler", "includes"}


@dataclass(frozen=True)
class Preset:
    name: str
    category: str
    prompt: str = ""
    negative: str = ""
    description: str = ""
    steps: int | None = None
    guidance_scale: float | None = None
    scheduler: str | None = None
    includes: tuple[str, ...] = ()
    source: str = ""  # the YAML file it came from

    def settings(self) -> dict[str, Any]:
        values = {"steps": self.steps, "guidance_scale": self.guidance_scale, "scheduler": self.scheduler}
        return {k: v for k, v in values.items() if v is not None}


@dataclass
class PresetLibrary:
    presets: dict[str, Preset] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Preset:
        if name not in self.presets:
            raise WorkbenchError(
                f"Unknown preset '{name}'. Available: {', '.join(sorted(self.presets))}. Add your own as YAML "
                "in a folder passed with style_dirs."
            )
        return self.presets[name]

    def names(self, category: str | None = None) -> list[str]:
        return sorted(n for n, p in self.presets.items() if category is None or p.category == category)

    def categories(self) -> list[str]:
        found = {p.category for p in self.presets.values() if p.category != "look"}
        return [c for c in CATEGORY_ORDER if c in found] + sorted(found - set(CATEGORY_ORDER))

    def expand(self, names: list[str]) -> list[list[Preset]]:
        """All combinations to vary across a batch: one preset per category.

        ``[rembrandt, butterfly, dark]`` gives (rembrandt, dark) and (butterfly, dark). A look stays a unit: each
        look gives its own combinations, where a plain preset named alongside replaces the look's member of that
        category (``[corporate, rembrandt]`` = corporate with Rembrandt lighting). The look itself rides along
        as the last element, so its settings (steps, CFG, scheduler) apply on top of its members'.
        """
        plain: dict[str, list[Preset]] = {}
        looks: list[Preset] = []
        for name in names:
            preset = self[name]
            if preset.category == "look":
                if preset not in looks:
                    looks.append(preset)
            elif preset not in plain.setdefault(preset.category, []):
                plain[preset.category].append(preset)
        combos = []
        for look in looks or [None]:
            by_category = {c: list(p) for c, p in plain.items()}
            if look is not None:
                for member in (self[m] for m in look.includes):
                    if member.category == "look":
                        raise WorkbenchError(f"Look '{look.name}' includes another look '{member.name}'.")
                    by_category.setdefault(member.category, [member])
            order = [c for c in self.categories() if c in by_category]
            for combo in itertools.product(*(by_category[c] for c in order)):
                combos.append(list(combo) + ([look] if look is not None else []))
        return combos


def shipped_styles_dir() -> Path:
    return Path(str(resources.files("workbench.generate") / "styles"))


def load_presets(style_dirs: list[str | Path] | None = None) -> PresetLibrary:
    """Shipped presets, then each user folder in order (a later definition of a name replaces an earlier one)."""
    library = PresetLibrary()
    folders = [shipped_styles_dir(), *(Path(d).expanduser() for d in (style_dirs or []))]
    for folder in folders:
        if not folder.is_dir():
            raise WorkbenchError(
                f"Style folder {folder} does not exist: create it or fix the style_dirs path."
            )
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            for preset in _read_style_file(path):
                library.presets[preset.name] = preset
    _check_includes(library)
    return library


def _read_style_file(path: Path) -> list[Preset]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise WorkbenchError(f"Style file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("category"), str):
        raise WorkbenchError(
            f"Style file {path} needs a `category:` (e.g. lighting) and a `presets:` mapping."
        )
    entries = data.get("presets") or {}
    if not isinstance(entries, dict):
        raise WorkbenchError(f"Style file {path}: `presets:` must map preset names to their fields.")
    category = data["category"]
    presets = []
    for name, values in entries.items():
        values = values or {}
        unknown = sorted(set(values) - _FIELDS)
        if unknown:
            raise WorkbenchError(
                f"Preset '{name}' in {path} has unknown field(s) {', '.join(unknown)}; "
                f"valid fields: {', '.join(sorted(_FIELDS))}."
            )
        scheduler = values.get("scheduler")
        if scheduler is not None and scheduler not in SCHEDULERS:
            raise WorkbenchError(
                f"Preset '{name}' in {path}: scheduler '{scheduler}' is not one of {', '.join(SCHEDULERS)}."
            )
        if category == "look" and not values.get("includes"):
            raise WorkbenchError(f"Look '{name}' in {path} needs `includes:` (a list of preset names).")
        if category != "look" and not values.get("prompt"):
            raise WorkbenchError(f"Preset '{name}' in {path} needs a `prompt:` fragment.")
        presets.append(
            Preset(
                name=str(name),
                category=category,
                prompt=str(values.get("prompt", "")).strip(),
                negative=str(values.get("negative", "")).strip(),
                description=str(values.get("description", "")).strip(),
                steps=int(values["steps"]) if values.get("steps") is not None else None,
                guidance_scale=float(values["guidance_scale"])
                if values.get("guidance_scale") is not None
                else None,
                scheduler=scheduler,
                includes=tuple(values.get("includes") or ()),
                source=str(path),
            )
        )
    return presets


def _check_includes(library: PresetLibrary) -> None:
    for preset in library.presets.values():
        missing = [m for m in preset.includes if m not in library.presets]
        if missing:
            raise WorkbenchError(
                f"Look '{preset.name}' ({preset.source}) includes unknown preset(s): {', '.join(missing)}."
            )
