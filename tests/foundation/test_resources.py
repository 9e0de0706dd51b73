"""Built-in recipes, suites, test sets and baselines are found by name from any folder; the user's own win."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench import resources
from workbench.errors import WorkbenchError


def test_every_kind_has_builtins_found_from_another_folder(tmp_path):
    assert Path.cwd() == tmp_path  # conftest: each test runs in its own folder, not the checkout
    for kind in resources.KINDS:
        names = resources.names(kind)
        assert names, kind
        assert resources.find(kind, names[0]).is_relative_to(resources.builtin_dir(kind))


@pytest.mark.parametrize(
    "given",
    ["tiny-demo", "tiny-demo.yaml", "experiments/train/tiny-demo.yaml"],
    ids=["name", "file", "repo path"],
)
def test_a_recipe_by_name_file_name_or_old_repo_path(given):
    assert resources.find("train", given) == resources.builtin_dir("train") / "tiny-demo.yaml"


def test_the_users_folder_shadows_a_builtin_of_the_same_name(tmp_path):
    from workbench.train import TrainConfig

    own = tmp_path / "experiments" / "train"
    own.mkdir(parents=True)
    (own / "tiny-demo.yaml").write_text("stage: train\nmodel: tiny-sdxl\n")
    (own / "mine.yaml").write_text("stage: train\nrank: 2\n")

    assert resources.find("train", "tiny-demo") == own / "tiny-demo.yaml"
    assert resources.find("train", "experiments/train/tiny-demo.yaml").resolve() == own / "tiny-demo.yaml"
    assert TrainConfig.from_yaml("tiny-demo").model == "tiny-sdxl"
    assert TrainConfig.from_yaml("mine").rank == 2
    names = resources.names("train")
    assert "mine" in names and "sdxl-fast" in names and names.count("tiny-demo") == 1
    assert resources.available("train")["sdxl-fast"].parent == resources.builtin_dir("train")


def test_an_explicit_path_wins(tmp_path):
    path = tmp_path / "elsewhere" / "sdxl-fast.yaml"
    path.parent.mkdir()
    path.write_text("stage: train\n")
    assert resources.find("train", path) == path


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(WorkbenchError, match=r"No eval suite 'nope'.*default.*skin-tone-ladder"):
        resources.find("suites", "nope")
    with pytest.raises(WorkbenchError, match=r"No training recipe.*sdxl-fast.*tiny-demo"):
        resources.find("train", "experiments/train/nope.yaml")
    with pytest.raises(WorkbenchError, match="does not exist"):
        resources.find(None, "nope.yaml")


def test_stage_recipes_suites_and_baselines_load_by_name():
    from workbench.evaluate import load_suite
    from workbench.evaluate.report import compare_baseline
    from workbench.sweep import SweepConfig

    suite = load_suite("skin-tone-ladder")
    assert suite.baseline and compare_baseline({}, suite.baseline)["metrics"]
    assert SweepConfig.from_yaml("lora-rank-lr").grid
