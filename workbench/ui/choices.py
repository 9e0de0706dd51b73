"""Choice lists, read from the package's own registries so the app never re-types what the package knows."""

from __future__ import annotations

NO_RECIPE = "(defaults)"
NO_LORA = "(base model, no LoRA)"


def models() -> list[str]:
    """Model presets (``workbench.models.PRESET_NAMES``); the dropdowns also take a hub id or a folder."""
    from workbench.models import PRESET_NAMES

    return list(PRESET_NAMES)


def control_types() -> list[str]:
    from workbench.generate import CONTROL_TYPES

    return ["none", *CONTROL_TYPES]


def schedulers() -> list[str]:
    from workbench.generate import SCHEDULERS

    return list(SCHEDULERS)


def metrics() -> list[str]:
    from workbench.evaluate.config import METRICS

    return list(METRICS)


def presets() -> list[str]:
    """Style presets: the looks first, then every category's presets."""
    from workbench.generate import load_presets

    library = load_presets()
    return library.names("look") + [n for c in library.categories() for n in library.names(c)]


def recipes() -> list[str]:
    """Training recipes (the user's ``experiments/train`` over the built-ins)."""
    from workbench import resources

    return [NO_RECIPE, *resources.names("train")]


def suites() -> list[str]:
    """Evaluation suites that evaluate a subject's images (those bound to a test set evaluate that instead)."""
    import yaml

    from workbench import resources

    found = []
    for name, path in sorted(resources.available("suites").items()):
        if not (yaml.safe_load(path.read_text()) or {}).get("testset"):
            found.append(name)
    return found
