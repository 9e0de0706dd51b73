"""A recipe fills the widgets, and only what the user changed overrides it (train, generate and evaluate)."""

from __future__ import annotations

import pytest
import yaml

from workbench import resources
from workbench.errors import WorkbenchError
from workbench.train import TrainConfig
from workbench.ui import choices, forms
from workbench.ui.handlers import evaluate as E
from workbench.ui.handlers import generate as G
from workbench.ui.handlers import train as T


def _as_widgets(values: dict) -> dict:
    """What Gradio hands back: numbers as floats, text as typed (with stray spaces)."""
    return {
        k: float(v) if type(v) is int else (f" {v} " if isinstance(v, str) else v) for k, v in values.items()
    }


def test_choosing_a_recipe_fills_the_widgets_with_its_values() -> None:
    recipe = yaml.safe_load(resources.find("train", "sdxl-faces").read_text())
    filled = T.fill("sdxl-faces")
    assert filled["rank"] == recipe["rank"] == 32 and filled["max_train_steps"] == recipe["max_train_steps"]
    assert filled["model"] == "sdxl" and filled["learning_rate"] == recipe["learning_rate"]
    assert recipe["resolution"] is None and filled["resolution"] == 0  # "not set": the model's native size
    assert T.fill(choices.NO_RECIPE) == forms.form_values(TrainConfig(), forms.TRAIN_FIELDS)


@pytest.mark.parametrize("recipe", resources.names("train"))
def test_untouched_widgets_never_override_the_recipe(recipe: str) -> None:
    # The bug this replaces: the widgets' own defaults (rank 4, 20 steps) were applied over every recipe.
    untouched = _as_widgets(T.fill(recipe))
    assert T.train_config(recipe, untouched) == TrainConfig.from_yaml(recipe)


def test_a_changed_widget_overrides_only_its_own_field() -> None:
    widgets = _as_widgets(T.fill("sdxl-faces"))
    config = T.train_config("sdxl-faces", {**widgets, "model": "tiny-sdxl", "rank": 8.0})
    recipe = TrainConfig.from_yaml("sdxl-faces")
    differ = {k for k, v in config.to_dict().items() if recipe.to_dict()[k] != v}
    assert differ == {"model", "rank"} and config.rank == 8 and config.model == "tiny-sdxl"
    assert config.max_train_steps == 1200 and config.pivotal_tuning  # what the recipe says holds


def test_extra_options_and_clearing_an_optional_field() -> None:
    widgets = {**_as_widgets(T.fill("sdxl-faces")), "resolution": 0.0}  # 0: the model's own resolution
    config = T.train_config(
        "sdxl-faces", widgets, "# comment\nwith_prior_preservation=false\n\nnum_class_images=4"
    )
    assert config.resolution is None and not config.with_prior_preservation and config.num_class_images == 4
    with pytest.raises(WorkbenchError, match="rank"):
        T.train_config("sdxl-faces", {**widgets, "rank": 2.5})
    with pytest.raises(WorkbenchError, match="Unknown train option"):
        T.train_config("sdxl-faces", widgets, "rnak=4")


def test_generate_leaves_sampling_to_the_presets_unless_changed(workspace) -> None:
    from workbench.generate import GenerateConfig

    untouched = _as_widgets(G.fill(None))
    assert untouched["scheduler"].strip() == forms.UNSET and untouched["steps"] == 0  # "0 = preset"
    config = forms.apply(G.base_config(None), untouched)
    assert config == GenerateConfig()  # steps/scheduler None: each preset's own settings apply
    config = forms.apply(G.base_config(None), {**untouched, "scheduler": "euler", "count": 3.0})
    assert (config.scheduler, config.count, config.steps) == ("euler", 3, None)


def test_a_lora_fills_the_model_it_was_trained_on(tmp_path) -> None:
    run = tmp_path / "train-1"
    run.mkdir()
    (run / "train.yaml").write_text("stage: train\nmodel: tiny-sdxl\nrank: 4\n")
    (run / "pytorch_lora_weights.safetensors").write_bytes(b"")
    lora = str(run / "pytorch_lora_weights.safetensors")
    assert G.fill(lora)["model"] == "tiny-sdxl"  # generating an SDXL LoRA on an SD 1.5 model would fail
    config = forms.apply(G.base_config(lora), _as_widgets(G.fill(lora)))
    assert (config.model, config.lora) == ("tiny-sdxl", lora)


def test_an_eval_suite_fills_the_measurements() -> None:
    from workbench.evaluate import load_suite

    assert E.fill("detectability")["metrics"] == load_suite("detectability").metrics
    suite = load_suite("default")
    reordered = {"metrics": list(reversed(E.fill("default")["metrics"]))}  # a checkbox group's own order
    assert forms.apply(suite, reordered) == suite
    assert forms.apply(suite, {"metrics": ["likeness"]}).metrics == ["likeness"]


def test_choice_lists_come_from_the_package() -> None:
    from workbench.evaluate.config import METRICS
    from workbench.generate import CONTROL_TYPES, SCHEDULERS
    from workbench.models import PRESET_NAMES

    assert choices.models() == list(PRESET_NAMES)
    assert choices.control_types() == ["none", *CONTROL_TYPES]
    assert choices.schedulers() == list(SCHEDULERS) and choices.metrics() == list(METRICS)
    assert choices.recipes() == [choices.NO_RECIPE, *resources.names("train")]
    assert (
        "default" in choices.suites() and "skin-tone-ladder" not in choices.suites()
    )  # that one is a test set's
