"""What each button does, as plain functions of plain values: thin calls into the stages, no Gradio here.

The app (``app.py``) binds these to components; tests call them directly. Every function takes the
:class:`~workbench.ui.sessions.Viewer` of the browser session and checks the subject through it, and raises
:class:`~workbench.errors.WorkbenchError` with the same sentence the CLI prints.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from workbench.errors import WorkbenchError
from workbench.ui.sessions import Viewer
from workbench.workspace import Workspace

MAX_PHOTOS = 20  # the 1-20; more photos add little likeness and much training time
MAX_PHOTO_MB = 25  # a 48 MP phone JPEG is ~15 MB; anything larger is rarely a photo of a face

MODEL_CHOICES = ["tiny", "tiny-sdxl", "sd15", "sdxl"]
CONTROL_CHOICES = ["none", "landmarks", "canny", "depth", "openpose"]
NO_RECIPE = "(defaults)"
NO_LORA = "(base model, no LoRA)"


# -- files the browser may see --------------------------------------------------------------------------------
class Publisher:
    """Hands files to the browser without serving the workspace itself.

    Gradio serves any file under ``allowed_paths`` by URL, which would let one session fetch another's photos
    by guessing paths; instead, files outside the current folder and the temp folder (which Gradio copies into
    its hashed cache) are copied into this app's own temp folder first.
    """

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="workbench-ui-"))

    def __call__(self, path: str | Path) -> str:
        path = Path(path).resolve()
        if _inside(path, Path.cwd()) or _inside(path, Path(tempfile.gettempdir())):
            return str(path)
        target = self.folder / hashlib.sha256(str(path).encode()).hexdigest()[:16] / path.name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        return str(target)

    def thumbnail(self, path: str | Path, size: int = 320) -> str:
        """A small JPEG of any photo intake can read (HEIC and 48 MP JPEGs included); grey when unreadable."""
        path = Path(path)
        target = (
            self.folder / "thumbs" / (hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16] + ".jpg")
        )
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            from workbench.intake.reading import read_image

            try:
                image = Image.fromarray(read_image(path))
                image.thumbnail((size, size))
            except WorkbenchError:  # the verdict next to it says why the file is unreadable
                image = Image.new("RGB", (size, size), (200, 200, 200))
            image.save(target, quality=85)
        return str(target)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder.resolve())
        return True
    except ValueError:
        return False


# -- subject ----------------------------------------------------------------------------------------------------
def check_uploads(
    files: list[str] | None, max_photos: int = MAX_PHOTOS, max_mb: float = MAX_PHOTO_MB
) -> list[Path]:
    """The upload limits, checked before anything is written: 1-20 photos, each at most ``max_mb`` MB."""
    paths = [Path(f) for f in (files or [])]
    if not paths:
        raise WorkbenchError(
            f"Upload 1 to {max_photos} photos of the subject first (15-20 give the best likeness)."
        )
    if len(paths) > max_photos:
        raise WorkbenchError(
            f"{len(paths)} photos uploaded; the limit is {max_photos}: keep the best {max_photos} "
            "(sharp, varied, recent) and upload again."
        )
    too_big = [p for p in paths if p.stat().st_size > max_mb * 1024 * 1024]
    if too_big:
        names = ", ".join(f"{p.name} ({p.stat().st_size / 1024 / 1024:.0f} MB)" for p in too_big)
        raise WorkbenchError(
            f"Photo(s) larger than {max_mb:g} MB: {names}. Export them at a smaller size (a few MB is plenty) "
            "and upload again."
        )
    return paths


def run_intake(workspace: Workspace, viewer: Viewer, name: str, files: list[str] | None) -> dict[str, Any]:
    """Check and file the photos; returns ``subject``, per-photo ``rows`` and set-level ``advice``."""
    from workbench.intake import IntakeConfig
    from workbench.intake import run_intake as intake_stage

    paths = check_uploads(files)
    subject = viewer.subject_id(name)
    viewer.check_free(workspace, subject)
    result = intake_stage(paths, subject, IntakeConfig(), workspace)
    viewer.claim(workspace, subject)
    rows = [_photo_row(photo) for photo in result.photos]
    return {"subject": subject, "rows": rows, "advice": _set_advice(result), "result": result}


def _photo_row(photo: dict[str, Any]) -> dict[str, Any]:
    advice = list(photo.get("reasons") or []) + list(photo.get("warnings") or [])
    return {
        "path": str(photo["path"]),
        "name": Path(str(photo["path"])).name,
        "accepted": bool(photo["accepted"]),
        "advice": " ".join(advice) or "Good photo.",
    }


def _set_advice(result: Any) -> list[str]:
    """Set-level findings, problems first (a passed check reads as reassurance, not as advice)."""
    findings = sorted(result.set_findings, key=lambda f: f.ok)
    return [("✓ " if f.ok else "⚠ ") + f.message for f in findings]


def photo_verdicts(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "photo": r["name"],
                "verdict": "accepted" if r["accepted"] else "rejected",
                "advice": r["advice"],
            }
            for r in rows
        ],  # fmt: skip
        columns=["photo", "verdict", "advice"],
    )


def subject_summary(workspace: Workspace, viewer: Viewer, subject: str | None) -> str:
    if not subject:
        return "No subject yet: type a name and upload 1-20 photos."
    viewer.require(workspace, subject)
    record = workspace.read_subject(subject)
    n_originals = len(list(workspace.originals_dir(subject).glob("*")))
    return f"Subject **{subject}**: {n_originals} photo(s) on file, token `{record.get('token', '?')}`."


# -- train ------------------------------------------------------------------------------------------------------
def recipe_dirs() -> list[Path]:
    """``experiments/train`` of the current folder and of the checkout the package runs from."""
    from workbench.config import PROJECT_ROOT

    return list(dict.fromkeys([Path.cwd() / "experiments" / "train", PROJECT_ROOT / "experiments" / "train"]))


def recipes() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in recipe_dirs():
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            found.setdefault(path.stem, path)
    return found


def train_config(recipe: str | None, model: str, **overrides: Any) -> Any:
    """The recipe (or the defaults) with the UI's fields on top; the same validation as ``workbench train``."""
    from workbench.train import TrainConfig

    if recipe and recipe != NO_RECIPE:
        path = recipes().get(recipe)
        if path is None:
            raise WorkbenchError(f"Recipe '{recipe}' is not in {', '.join(map(str, recipe_dirs()))}.")
        base = TrainConfig.from_yaml(path)
    else:
        base = TrainConfig()
    return base.replace(model=(model or "tiny").strip(), **overrides)


def loras(workspace: Workspace, viewer: Viewer, subject: str | None) -> list[tuple[str, str]]:
    """(label, path) of the subject's finished LoRAs, newest first."""
    if not subject or not viewer.can_see(workspace, subject):
        return []
    from workbench.train.export import DIFFUSERS_WEIGHTS

    # The diffusers-format file of each run (its kohya export and pivotal embeddings are not LoRAs to load).
    root = workspace.subject_path(subject, "loras")
    files = sorted(root.glob(f"*/{DIFFUSERS_WEIGHTS}"), key=lambda p: p.parent.name, reverse=True)
    return [(f"{f.parent.name}/{f.name}", str(f)) for f in files]


# -- generate ---------------------------------------------------------------------------------------------------
def preset_choices() -> list[str]:
    from workbench.generate import load_presets

    library = load_presets()
    return library.names("look") + [n for c in library.categories() for n in library.names(c)]


def generate_config(
    subject: str,
    model: str,
    lora: str | None,
    presets: list[str],
    count: int,
    seed: int,
    steps: int | None,
    control: str,
    reference: str | None,
    control_scale: float,
    run_name: str,
) -> Any:
    from workbench.generate import GenerateConfig

    controls = []
    if control and control != "none":
        if not reference:
            raise WorkbenchError(
                f"The {control} ControlNet needs a reference image: add one, or choose 'none'."
            )
        controls = [f"{control}:{reference}:{control_scale:g}"]
    return GenerateConfig(
        subject=subject,
        model=(model or "tiny").strip(),
        lora=None if not lora or lora == NO_LORA else lora,
        presets=list(presets or []),
        count=int(count),
        seed=int(seed),
        steps=int(steps) if steps else None,
        controls=controls,
        run_name=run_name,
    )


def caption(record: dict[str, Any]) -> str:
    presets = "/".join(record.get("presets", []))
    return (
        f"seed {record.get('seed')} · {presets} · {record.get('steps')} steps · "
        f"CFG {record.get('guidance_scale')} · {record.get('scheduler') or record.get('scheduler_class', '')}"
    )


def generation_runs(workspace: Workspace, viewer: Viewer, subject: str | None) -> list[tuple[str, str]]:
    if not subject or not viewer.can_see(workspace, subject):
        return []
    root = workspace.subject_path(subject, "generations")
    runs = sorted((p for p in root.iterdir() if p.is_dir()), reverse=True) if root.is_dir() else []
    return [(p.name, str(p)) for p in runs]


def zip_folder(folder: Path, target_dir: Path, pattern: str = "*.png") -> Path:
    """A zip of the run's images (PNG with their parameters inside) for download."""
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{folder.name}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:  # PNGs are compressed already
        for path in sorted(folder.glob(pattern)):
            archive.write(path, arcname=path.name)
    return target


# -- evaluate ---------------------------------------------------------------------------------------------------
def group_rows(groups: dict[str, Any]) -> pd.DataFrame:
    """The per-group tables of the report, flattened: one row per (column, metric, group) with its CI."""
    rows = []
    for column, per_metric in groups.items():
        if "skipped" in per_metric:
            rows.append(
                {"by": column, "metric": "", "group": "", "estimate": "", "95% CI": per_metric["skipped"]}
            )
            continue
        for metric, summary in per_metric.items():
            for group, e in summary.get("groups", {}).items():
                rows.append({
                    "by": column, "metric": summary.get("label", metric), "group": group,
                    "estimate": f"{e['est']:.3g}", "95% CI": f"[{e['lo']:.3g}, {e['hi']:.3g}]", "n": e["n"],
                    "worst": "yes" if group == summary.get("worst_group") else "",
                })  # fmt: skip
    return pd.DataFrame(rows, columns=["by", "metric", "group", "estimate", "95% CI", "n", "worst"])


def headline(summary: dict[str, Any], metrics: dict[str, float]) -> str:
    lines = [
        f"**{summary.get('n_images', '?')} images** evaluated against {summary.get('n_references', 0)} photos."
    ]
    ranking = summary.get("ranking")
    if ranking:
        ci = ranking.get("usable_yield", {})
        lines.append(
            f"Usable: **{ranking['usable']} of {ranking['total']}** (yield {ci.get('est', 0):.0%}, "
            f"95% CI {ci.get('lo', 0):.0%}-{ci.get('hi', 0):.0%})."
        )
    detect = summary.get("detect") or {}
    if isinstance(detect, dict) and "accuracy" in detect:
        acc = detect["accuracy"]
        lines.append(
            f"Detector ({detect.get('backend', '?')}) accuracy on held-out images: {acc['est']:.2f} "
            f"[{acc['lo']:.2f}, {acc['hi']:.2f}] (0.5 = cannot tell)."
        )
    rows = []
    for key in sorted(metrics):
        if key.startswith(("timing", "groups.")) or key.endswith((".lo", ".hi")):
            continue
        value, lo, hi = metrics[key], metrics.get(f"{key}.lo"), metrics.get(f"{key}.hi")
        ci = f"[{lo:.3g}, {hi:.3g}]" if lo is not None and hi is not None else ""
        rows.append(f"| {key} | {value:.3g} | {ci} |")
    lines.append("| metric | estimate | 95% CI |\n|---|---|---|\n" + "\n".join(rows))
    return "\n\n".join(lines)


def environ_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")
