import json
import time

import pytest
import torch

from workbench.errors import ModelNotAvailableError, WorkbenchError
from workbench.models import load_pipeline, resolve_model
from workbench.models.tokenizer import build_clip_tokenizer


def test_offline_tokenizer_matches_the_real_clip_ids(tmp_path):
    tokenizer = build_clip_tokenizer(tmp_path)
    # Reference ids from OpenAI's CLIP tokenizer (openai/clip-vit-large-patch14), as used by SD 1.5.
    assert tokenizer("a photo of sks person").input_ids == [49406, 320, 1125, 539, 48136, 2533, 49407]
    assert len(tokenizer) == 49408
    assert build_clip_tokenizer(tmp_path, pad_token="!").pad_token_id == 0


@pytest.mark.parametrize("preset, family, encoders", [("tiny", "sd15", 1), ("tiny-sdxl", "sdxl", 2)])
def test_tiny_presets_build_both_shapes_and_generate(preset, family, encoders, model_cache):
    source = resolve_model(preset, model_cache)
    assert (source.kind, source.family) == ("tiny", family)
    pipe = load_pipeline(source)
    assert (
        sum(name.startswith("text_encoder") and c is not None for name, c in pipe.components.items())
        == encoders
    )
    if family == "sdxl":
        assert pipe.unet.config.addition_embed_type == "text_time"
    image = pipe(
        "a photo", num_inference_steps=2, height=64, width=64, generator=torch.Generator().manual_seed(0)
    )
    assert image.images[0].size == (64, 64)


def test_tiny_weights_are_identical_in_every_build(tmp_path, model_cache):
    a = load_pipeline(resolve_model("tiny", model_cache)).unet.state_dict()
    b = load_pipeline(resolve_model("tiny", tmp_path)).unet.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_local_folder_is_a_model_source(model_cache):
    folder = resolve_model("tiny-sdxl", model_cache).location
    source = resolve_model(folder)
    assert (source.kind, source.family, source.resolution) == ("local", "sdxl", 64)


def test_missing_hub_weights_fail_fast_with_instructions(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    start = time.perf_counter()
    with pytest.raises(ModelNotAvailableError, match="hf download stabilityai") as error:
        load_pipeline(resolve_model("sdxl"))
    assert time.perf_counter() - start < 20  # never waits on the network
    assert str(error.value).endswith("to let the workbench download it.")  # a whole sentence, not cut off


def test_unknown_source_and_non_pipeline_folder_are_explained(tmp_path):
    with pytest.raises(WorkbenchError, match="neither a preset"):
        resolve_model("no-such-model")
    (tmp_path / "weights.json").write_text(json.dumps({}))
    with pytest.raises(WorkbenchError, match="not a diffusers pipeline"):
        resolve_model(str(tmp_path))
