"""Built-in resources by name: training recipes, sweeps, eval suites, test-set definitions and baselines.

A name is looked up in layers, first hit wins:

1. an explicit path that exists (``./my-recipe.yaml``, ``/data/suite.yaml``);
2. the user's own folders under the current directory (``./experiments/train/<name>.yaml``, ``./eval/...``);
3. the built-in copies that ship with the package.

The repo's top-level ``experiments/`` and ``eval/`` folders are the one copy of the built-ins. pyproject.toml
ships them in the wheel as ``workbench/_builtin/experiments`` and ``workbench/_builtin/eval``; a source
checkout (the editable install) reads them in place, because setuptools' editable finder cannot serve a
remapped folder nested inside a package (pypa/setuptools#1801).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from workbench.errors import WorkbenchError


@dataclass(frozen=True)
class Kind:
    folder: str  # under the current directory, the checkout and the wheel's workbench/_builtin/
    suffixes: tuple[str, ...]
    label: str  # for messages: "No <label> 'x'"


KINDS: dict[str, Kind] = {
    "train": Kind("experiments/train", (".yaml", ".yml"), "training recipe"),
    "sweeps": Kind("experiments/sweeps", (".yaml", ".yml"), "sweep"),
    "studies": Kind("experiments/studies", (".yaml", ".yml"), "study"),
    "suites": Kind("eval/suites", (".yaml", ".yml"), "eval suite"),
    "testsets": Kind("eval/testsets", (".yaml", ".yml"), "test set"),
    "baselines": Kind("eval/baselines", (".json",), "baseline"),
}

# The kind a stage's ``from_yaml`` looks in when given a bare name (``--recipe sdxl-fast``).
STAGE_KINDS: dict[str, str] = {"train": "train", "sweep": "sweeps", "study": "studies", "eval": "suites"}


def builtin_dir(kind: str) -> Path:
    """The folder of a kind's built-ins: inside the installed package, else in the source checkout."""
    top, _, rest = _kind(kind).folder.partition("/")
    # Wheels install unpacked, so the package's files are plain paths.
    packaged = Path(str(files("workbench") / "_builtin" / top))
    checkout = Path(__file__).resolve().parents[1] / top
    return (checkout if checkout.is_dir() and not packaged.is_dir() else packaged) / rest


def search_dirs(kind: str) -> list[Path]:
    """Where names of ``kind`` are looked up, in order: the current directory's folder, then the built-ins."""
    return list(dict.fromkeys([Path.cwd() / _kind(kind).folder, builtin_dir(kind)]))


def available(kind: str) -> dict[str, Path]:
    """Every name of ``kind`` and the file it resolves to (a user's file shadows a built-in of that name)."""
    found: dict[str, Path] = {}
    for folder in search_dirs(kind):
        if folder.is_dir():
            for suffix in _kind(kind).suffixes:
                for path in sorted(folder.glob(f"*{suffix}")):
                    found.setdefault(path.name.removesuffix(suffix), path)
    return found


def names(kind: str) -> list[str]:
    """The names of ``kind`` (user's and built-in), sorted: for choice lists and error messages."""
    return sorted(available(kind))


def find(kind: str | None, name_or_path: str | Path) -> Path:
    """The file that ``name_or_path`` names: an existing path, or a name of ``kind`` with or without suffix.

    An old repo-relative path (``experiments/train/tiny-demo.yaml``, as recipes name each other) resolves
    through the layers too, to the kind its folder names; ``kind=None`` accepts only paths and such paths.
    """
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    from_folder = _kind_of(path)
    kind = from_folder or kind
    if kind is None:
        raise WorkbenchError(f"File {path} does not exist: check the path.")
    spec = _kind(kind)
    if from_folder or len(path.parts) == 1:
        name = path.name
        for suffix in spec.suffixes:
            name = name.removesuffix(suffix)
        hit = available(kind).get(name)
        if hit is not None:
            return hit
    known = ", ".join(names(kind)) or "(none)"
    where = ", ".join(str(d) for d in search_dirs(kind))
    raise WorkbenchError(
        f"No {spec.label} '{name_or_path}': use one of {known}, or the path of a {spec.suffixes[0]} file "
        f"(looked in {where})."
    )


def _kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise ValueError(f"Unknown resource kind '{kind}': use one of {', '.join(KINDS)}.")
    return KINDS[kind]


def _kind_of(path: Path) -> str | None:
    """The kind whose folder a relative path starts with (``eval/suites/x.yaml`` -> ``suites``)."""
    for kind, spec in KINDS.items():
        folder = Path(spec.folder).parts
        if not path.is_absolute() and path.parts[:-1] == folder:
            return kind
    return None
