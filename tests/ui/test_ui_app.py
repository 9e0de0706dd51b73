"""The built app: choice lists from the package, clear empty states, and the Train tab used as its buttons do."""

from __future__ import annotations

import re

import gradio as gr
import pytest

from workbench.train import TrainConfig
from workbench.ui import runs as R
from workbench.ui.app import build_app
from workbench.workspace import Workspace


@pytest.fixture
def app(workspace: Workspace) -> gr.Blocks:
    return build_app(workspace)


def _component(app: gr.Blocks, elem_id: str):
    found = [b for b in app.blocks.values() if getattr(b, "elem_id", None) == elem_id]
    assert len(found) == 1, elem_id
    return found[0]


def _handler(app: gr.Blocks, name: str):
    """The bound method a button calls (its ``__self__`` is the tab)."""
    found = {getattr(f.fn, "__name__", None): f.fn for f in app.fns.values()}
    return found[name]


def _values(choices: list) -> list:
    return [c[1] if isinstance(c, tuple) else c for c in choices]


def test_choice_lists_are_the_packages(app: gr.Blocks) -> None:
    from workbench.evaluate.config import METRICS
    from workbench.generate import CONTROL_TYPES, SCHEDULERS
    from workbench.models import PRESET_NAMES

    assert _values(_component(app, "train-model").choices) == list(PRESET_NAMES)
    assert _values(_component(app, "gen-model").choices) == list(PRESET_NAMES)
    assert _values(_component(app, "gen-scheduler").choices)[1:] == list(SCHEDULERS)
    assert _values(_component(app, "eval-metrics").choices) == list(METRICS)
    control = [b for b in app.blocks.values() if getattr(b, "label", None) == "Control"][0]
    assert _values(control.choices) == ["none", *CONTROL_TYPES]
    # The Train tab opens on the fast demo recipe, its values in the widgets.
    demo = TrainConfig.from_yaml("tiny-demo")
    assert _component(app, "train-recipe").value == "tiny-demo"
    assert _component(app, "train-steps").value == demo.max_train_steps
    assert _component(app, "train-rank").value == demo.rank


def test_before_any_run_tables_and_plots_say_why_they_are_empty(app: gr.Blocks) -> None:
    for elem_id, words in (("group-table", "No evaluation yet"), ("intake-table", "No photos checked yet"),
                           ("runs-table", "No runs yet"), ("compare-table", "Nothing to compare yet")):  # fmt: skip
        table = _component(app, elem_id).value
        assert table["headers"] == [words] and table["data"][0][0].endswith("."), elem_id
    for elem_id, words in (("train-status", "No training yet"), ("generate-status", "No images yet"),
                           ("eval-summary", "No evaluation yet"), ("blind-progress", "participant")):  # fmt: skip
        assert words in _component(app, elem_id).value, elem_id
    assert "No curves yet" in _component(app, "curves-note").value


def _train(app: gr.Blocks, subject: str, recipe: str, changes: dict, extra: str) -> tuple[str, str]:
    """Pick ``recipe``, change some widgets, press Train, press Cancel after the first steps; the last status
    line and the run id."""
    tab = _handler(app, "on_train").__self__  # the Train tab the button belongs to
    filled = dict(zip(tab.fields, tab.on_recipe(recipe), strict=True))  # what the widgets now show
    widgets = [changes.get(name, value) for name, value in filled.items()]
    request = gr.Request(username=None, session_hash="page-1")
    status, cancelled = "", False
    for status, _note, _loss, _likeness in tab.on_train(
        subject, recipe, extra, *widgets, request, lambda *a, **k: None
    ):
        # Cancel once a step is shown: the watcher polls every 0.5 s, so the first one seen may be step 3.
        if re.search(r"step \d+ of", status) and not cancelled:
            cancelled = tab.on_cancel(request) or True
    assert tab.ctx.jobs.running("local", "train") is None
    run_id = status.split("MLflow run `")[1].split("`")[0]
    return status, run_id


def test_train_tab_keeps_the_recipe_and_overrides_only_what_the_user_changed(
    workspace: Workspace, subject: str
) -> None:
    app = build_app(workspace)
    # sdxl-faces on the tiny SDXL preset: the user changes the model and, to keep a CPU test short, the
    # resolution and the class images (a KEY=VALUE line); Cancel after the first steps of 1200.
    changes = {"model": "tiny-sdxl", "resolution": 64}
    extra = "num_class_images=2\nclass_inference_steps=1"
    status, first = _train(app, subject, "sdxl-faces", changes, extra)
    assert re.search(r"Training cancelled after \d+ of 1200 steps", status), status
    assert f"MLflow run `{first}` is **KILLED**" in status
    assert R.run_status(workspace, first) == "KILLED"  # the app's line comes from the tracking store

    params = R.run_params(workspace, first)
    recipe = TrainConfig.from_yaml("sdxl-faces")
    assert params["rank"] == str(recipe.rank) == "32"
    assert params["max_train_steps"] == str(recipe.max_train_steps) == "1200"
    changed = {"model", "resolution", "num_class_images", "class_inference_steps"}
    for key, value in recipe.to_flat().items():  # every other value is the recipe's
        if key not in changed:
            assert params[key] == ("" if value is None else str(value)), key
    assert params["model"] == "tiny-sdxl" and params["resolution"] == "64"

    # Change one more widget: only that param differs between the two runs.
    _, second = _train(app, subject, "sdxl-faces", {**changes, "rank": 8}, extra)
    again = R.run_params(workspace, second)
    assert {k for k in params if params[k] != again.get(k)} == {"rank"} and again["rank"] == "8"
