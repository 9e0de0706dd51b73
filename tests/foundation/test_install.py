"""A wheel installed non-editable finds its built-in recipes and eval suites from an unrelated folder.

The test builds a wheel from the checkout's files, installs it into a fresh virtual environment and runs the
``workbench`` console script there. To skip reinstalling torch and friends, the new environment also sees this
environment's site-packages through a ``.pth`` file, after the wheel's own (and without this environment's
editable finder), so ``workbench`` itself must come from the wheel.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def cli_commands(photos: list[Path], workspace: Path) -> list[list[str]]:
    """The ``workbench`` command lines the installed wheel must run (the one place to update CLI flags)."""
    ws = ["--workspace", str(workspace)]
    return [
        ["eval", "--suite", "skin-tone-ladder", *ws],
        ["intake", "--subject", "S", *map(str, photos), *ws],
        # The recipe trains at the model's native size, so on tiny-sdxl it runs at 64 px in seconds.
        ["train", "--subject", "S", "--recipe", "sdxl-fast", "model=tiny-sdxl", "max_train_steps=2", *ws],
    ]  # fmt: skip


# What the wheel is built from, copied out of the working tree so that the build writes no build/ folder here.
BUILD_INPUTS = ["pyproject.toml", "setup.py", "README.md", "workbench", "experiments", "eval"]


def _source_tree(dest: Path) -> Path:
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def _build_wheel(out: Path, tmp: Path) -> Path:
    src = _source_tree(tmp / "src")
    # Offline with this environment's setuptools; an isolated build would fetch setuptools from the index.
    offline = ["--no-build-isolation", "--no-index"] if importlib.util.find_spec("setuptools") else []
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", *offline, "-w", str(out), str(src)], check=True)
    [wheel] = out.glob("headshot_workbench-*.whl")
    return wheel


def _venv_with_wheel(wheel: Path, path: Path) -> Path:
    venv.create(path, with_pip=False)
    python = path / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", str(python)]
    subprocess.run([*pip, "install", "--no-deps", "--no-index", str(wheel)], check=True)
    # Only after the install: pip must not see (and offer to replace) this environment's editable workbench.
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    ours = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (Path(site) / "_checkout_dependencies.pth").write_text("\n".join(ours) + "\n")
    return path


@pytest.mark.slow
def test_wheel_install_runs_builtin_suite_and_recipe_from_another_folder(tmp_path):
    from workbench.demo import sample_photo_set

    wheel = _build_wheel(tmp_path / "dist", tmp_path)
    env_dir = _venv_with_wheel(wheel, tmp_path / "venv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}

    def run(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run(args, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        return done

    probe = "import workbench.resources as r; print(r.__file__); print(r.builtin_dir('suites'))"
    where = run(str(env_dir / "bin" / "python"), "-c", probe)
    for path in map(Path, where.stdout.split()):  # the wheel's code and data, not the checkout's
        assert path.exists() and path.is_relative_to(env_dir) and not path.is_relative_to(ROOT), path
    photos = sample_photo_set(tmp_path / "photos")
    for command in cli_commands(photos, tmp_path / "workspace"):
        run(str(env_dir / "bin" / "workbench"), *command)
