"""Style presets: the shipped YAML, user folders, prompt building and every preset rendering on both tiny shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.errors import WorkbenchError
from workbench.generate import (
    SCHEDULERS,
    GenerateConfig,
    build_job,
    load_presets,
    plan_images,
    run_generate,
)
from workbench.generate.engine import build_engine

FAST = {"steps": 2, "resolution": 64, "batch_size": 2}  # tiny, 2 steps, 64 px
REQUIRED = {
    "lighting": {"soft-studio", "rembrandt", "butterfly", "high-key", "low-key", "window-light"},
    "backdrop": {"dark", "light-grey", "office", "outdoor-bokeh"},
    "framing": {"head-and-shoulders", "three-quarter"},
}


def test_shipped_presets_cover_the_studio_basics():
    library = load_presets()
    for category, names in REQUIRED.items():
        assert names <= set(library.names(category)), category
    assert library.names("outfit")
    for name in library.names("look"):  # every look's members exist and span categories
        members = [library[m] for m in library[name].includes]
        assert len({m.category for m in members}) == len(members)


def test_prompt_has_token_class_word_and_fragments():
    library = load_presets()
    combo = library.expand(["rembrandt", "dark", "business-suit", "head-and-shoulders"])
    assert len(combo) == 1
    job = build_job(combo[0], token="ohwx", class_word="woman", family="sd15")
    assert job.prompt.startswith("professional headshot photo of ohwx woman")
    for name in ("rembrandt", "dark", "business-suit", "head-and-shoulders"):
        assert library[name].prompt in job.prompt
    assert "flat lighting" in job.negative_prompt and "cartoon" in job.negative_prompt
    assert ", ," not in job.prompt


def test_settings_precedence_config_then_presets_then_model():
    library = load_presets()
    look = library.expand(["executive"])[0]  # executive: steps 35, cfg 7.0, dpmpp-2m-karras
    job = build_job(look, token="t", class_word="c", family="sdxl")
    assert (job.steps, job.guidance_scale, job.scheduler) == (35, 7.0, "dpmpp-2m-karras")
    job = build_job(
        look, token="t", class_word="c", family="sdxl", steps=3, guidance_scale=2.0, scheduler="ddim"
    )
    assert (job.steps, job.guidance_scale, job.scheduler) == (3, 2.0, "ddim")
    plain = build_job(library.expand(["office"])[0], token="t", class_word="c", family="sdxl")
    assert (plain.steps, plain.guidance_scale, plain.scheduler) == (30, 6.0, None)


def test_presets_of_one_category_vary_across_the_batch(workspace, subject):
    config = GenerateConfig(presets=["rembrandt", "butterfly", "dark"], count=5)
    plan = plan_images(config, {"token": "ohwx", "class_word": "woman"}, "sd15")
    assert [p.seed for p in plan] == [0, 1, 2, 3, 4]
    assert [p.job.presets for p in plan] == [("rembrandt", "dark"), ("butterfly", "dark")] * 2 + [
        ("rembrandt", "dark")
    ]


def test_subject_without_token_falls_back_to_sks_person():
    config = GenerateConfig(presets=["office"], count=1)
    assert "of sks person" in plan_images(config, {"subject_id": "bob"}, "sd15")[0].job.prompt


def test_user_folder_adds_and_overrides_presets(tmp_path: Path):
    (tmp_path / "mine.yaml").write_text(
        "category: lighting\npresets:\n  rembrandt: {prompt: my own rembrandt}\n  neon: {prompt: neon rim light}\n"
    )
    (tmp_path / "props.yaml").write_text(
        "category: props\npresets:\n  glasses: {prompt: wearing round glasses}\n"
    )
    library = load_presets([tmp_path])
    assert library["rembrandt"].prompt == "my own rembrandt"
    job = build_job(library.expand(["neon", "glasses"])[0], token="t", class_word="c", family="sd15")
    assert "neon rim light" in job.prompt and job.prompt.endswith("wearing round glasses")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("category: lighting\npresets:\n  x: {prompt: a, colour: red}\n", "unknown field"),
        ("category: lighting\npresets:\n  x: {prompt: a, scheduler: heun}\n", "not one of"),
        ("category: look\npresets:\n  x: {includes: [nope]}\n", "unknown preset"),
        ("presets: {}\n", "category"),
    ],
)
def test_bad_style_files_say_what_is_wrong(tmp_path: Path, text: str, message: str):
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(WorkbenchError, match=message):
        load_presets([tmp_path])


def test_unknown_preset_lists_the_available_ones():
    with pytest.raises(WorkbenchError, match="Available: .*rembrandt"):
        load_presets().expand(["rembrant"])


@pytest.mark.parametrize("model", ["tiny", "tiny-sdxl"])
def test_every_preset_renders(model: str, workspace, subject):
    library = load_presets()
    base = GenerateConfig(model=model, **FAST)
    engine = build_engine(base, workspace)
    seen = set()
    for category in [*library.categories(), "look"]:
        names = library.names(category)
        config = base.replace(presets=names, count=len(names), run_name=f"all-{category}")
        result = run_generate(subject, config, workspace=workspace, engine=engine)
        assert result.generated == len(names)
        for record in result.records:
            seen.update(record.presets)
            image = np.asarray(Image.open(result.out_dir / record.file))
            assert image.shape == (64, 64, 3) and image.std() > 0
    assert seen == set(library.presets)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_every_scheduler_swaps_from_the_pipeline_config(scheduler: str, workspace):
    engine = build_engine(GenerateConfig(**FAST), workspace)
    images = engine.run("a photo", "", [0], steps=2, guidance_scale=5.0, scheduler=scheduler)
    assert images[0].size == (64, 64)
    expected = {"ddim": "DDIM", "dpmpp-2m": "DPMSolverMultistep", "dpmpp-2m-karras": "DPMSolverMultistep",
                "euler": "EulerDiscrete", "euler-a": "EulerAncestral", "unipc": "UniPC"}[scheduler]  # fmt: skip
    assert type(engine.pipe.scheduler).__name__.startswith(expected)
    if scheduler == "dpmpp-2m-karras":
        assert engine.pipe.scheduler.config.use_karras_sigmas


def test_looks_stay_units_and_plain_presets_replace_their_members():
    library = load_presets()
    combos = library.expand(["executive", "creative"])
    assert [[p.name for p in c] for c in combos] == [
        ["head-and-shoulders", "business-suit", "rembrandt", "dark", "executive"],
        ["head-and-shoulders", "smart-casual", "window-light", "outdoor-bokeh", "creative"],
    ]
    mixed = library.expand(["corporate", "rembrandt", "butterfly"])
    assert [[p.name for p in c][2] for c in mixed] == ["rembrandt", "butterfly"]
    assert all(c[-1].name == "corporate" and "light-grey" in [p.name for p in c] for c in mixed)


def test_every_preset_combination_fits_the_clip_context(tmp_path):
    """CLIP reads 77 tokens and drops the rest silently, so a long prompt loses its last styles."""
    import itertools

    from workbench.generate import build_job, load_presets
    from workbench.models.tokenizer import build_clip_tokenizer

    tokenizer = build_clip_tokenizer(tmp_path)
    library = load_presets()
    categories = [c for c in library.categories() if c != "look"]
    combos = [
        list(c) for c in itertools.product(*[[library[n] for n in library.names(c)] for c in categories])
    ]
    combos += [combo for look in library.names("look") for combo in library.expand([look])]
    for combo in combos:
        job = build_job(combo, token="ohwx", class_word="person", family="sd15")
        for text in (job.prompt, job.negative_prompt):
            assert len(tokenizer(text).input_ids) <= 77, f"{[p.name for p in combo]}: {text!r} is too long"
