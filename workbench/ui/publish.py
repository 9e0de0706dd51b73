"""Files handed to the browser, without serving the workspace itself, and uploads that do not outlive intake.

The app points Gradio's cache (``$GRADIO_TEMP_DIR``: uploads, and the copies Gradio serves) at the workspace's
``ui-cache/`` (:func:`use_workspace_cache`), so every file the app writes lives inside the workspace and
``forget`` finds it: the published copies of a subject's images under ``ui-cache/published/<subject>/``, and
uploads by their bytes. Uploads are deleted as soon as intake has copied them into the subject's folder.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

from PIL import Image

from workbench.errors import WorkbenchError
from workbench.workspace import Workspace

GRADIO_CACHE_ENV = "GRADIO_TEMP_DIR"
PUBLISHED = "published"  # the same folder name `forget` erases per subject
SHARED = "_shared"  # published files that belong to no subject (test-set plots, reference images)


def use_workspace_cache(workspace: Workspace) -> Path:
    """Make ``ui-cache/`` Gradio's upload and cache folder (call before the app's Blocks are built)."""
    folder = workspace.ui_cache_dir
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)  # uploads are face photos: readable by their owner only
    os.environ[GRADIO_CACHE_ENV] = str(folder)
    return folder


def upload_folders(workspace: Workspace) -> list[Path]:
    """Where the app's uploads land: the workspace's cache, and Gradio's current one if it is elsewhere."""
    folders = [workspace.ui_cache_dir.resolve()]
    current = os.environ.get(GRADIO_CACHE_ENV) or str(Path(tempfile.gettempdir()) / "gradio")
    if Path(current).resolve() not in folders:
        folders.append(Path(current).resolve())
    return folders


def discard_uploads(paths: Iterable[str | Path], workspace: Workspace) -> int:
    """Delete the temporary upload copies among ``paths`` (never a file outside an upload folder)."""
    folders = upload_folders(workspace)
    removed = 0
    for path in paths:
        path = Path(path).resolve()
        folder = next((f for f in folders if _inside(path, f) and path != f), None)
        if folder is None or not path.is_file():
            continue
        path.unlink()
        removed += 1
        if path.parent != folder and not any(path.parent.iterdir()):
            path.parent.rmdir()  # Gradio keeps each upload in a folder of its own
    return removed


class Publisher:
    """Copies the files a page may show into the app's cache, one folder per subject.

    Gradio serves any file under ``allowed_paths`` by URL, which would let one person fetch another's photos by
    guessing paths; instead, each file is copied to ``ui-cache/published/<subject>/<random>/`` (inside Gradio's
    cache folder, so Gradio serves it without another copy; the random part per app makes the URL unguessable).
    Without a workspace (tests of single handlers) a private temporary folder is used.
    """

    def __init__(self, workspace: Workspace | None = None) -> None:
        self.workspace = workspace
        self.token = secrets.token_hex(8)
        self.folder = (
            workspace.ui_cache_dir / PUBLISHED
            if workspace
            else Path(tempfile.mkdtemp(prefix="workbench-ui-"))
        )

    def _target(self, source: Path, *parts: str) -> Path:
        return self.folder / self._owner(source) / self.token / Path(*parts)

    def _owner(self, path: Path) -> str:
        """The subject a file belongs to (``subjects/<id>/...``), so that ``forget`` can erase its copies."""
        if self.workspace is not None:
            try:
                return path.resolve().relative_to(self.workspace.subjects_dir.resolve()).parts[0]
            except (ValueError, IndexError):
                pass
        return SHARED

    def __call__(self, path: str | Path) -> str:
        path = Path(path).resolve()
        if _inside(path, self.folder):
            return str(path)
        target = self._target(path, hashlib.sha256(str(path).encode()).hexdigest()[:16], path.name)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        return str(target)

    def thumbnail(self, path: str | Path, size: int = 320) -> str:
        """A small JPEG of any photo intake can read (HEIC and 48 MP JPEGs included); grey when unreadable."""
        path = Path(path)
        digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
        target = self._target(path, "thumbs", f"{digest}.jpg")
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

    def zip_files(self, files: list[Path], name: str) -> str:
        """``files`` as ``<name>.zip`` for download (the generated PNGs, with their parameters inside)."""
        digest = hashlib.sha256(str(files).encode()).hexdigest()[:16]
        target = self._target(Path(files[0]) if files else Path(name), "downloads", digest, f"{name}.zip")
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:  # PNGs are compressed already
            for path in files:
                archive.write(path, arcname=path.name)
        return str(target)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder.resolve())
        return True
    except ValueError:
        return False
