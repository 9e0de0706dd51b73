"""What one stage hands the next: the words a LoRA was trained on reach the generation prompts."""

import pytest

from workbench.demo import sample_photo_set
from workbench.generate import GenerateConfig, generate_batch, read_manifest
from workbench.generate.engine import build_engine
from workbench.intake import IntakeConfig, run_intake
from workbench.train import TrainConfig, train_lora

FAST = {"max_train_steps": 2, "validation_steps": 0, "validation_inference_steps": 1, "rank": 4}


@pytest.fixture
def subject(workspace, tmp_path):
    run_intake(sample_photo_set(tmp_path / "photos"), "handoff", IntakeConfig(resolution=64), workspace)
    return "handoff"


def _prompts(workspace, subject, lora):
    batch = generate_batch(
        GenerateConfig(subject=subject, lora=lora, presets=["corporate"], count=1, steps=1), workspace
    )
    return [record["prompt"] for record in read_manifest(batch.run_dir)]


def test_generation_uses_the_token_the_lora_was_trained_with(workspace, subject):
    assert workspace.read_subject(subject)["token"] == "ohwx"
    trained = train_lora(workspace, subject, TrainConfig(instance_token="zwx", class_word="woman", **FAST))
    (prompt,) = _prompts(workspace, subject, trained.lora_file)
    assert "zwx woman" in prompt and "ohwx" not in prompt


def test_pivotal_tuning_tokens_are_loaded_and_used(workspace, subject):
    trained = train_lora(workspace, subject, TrainConfig(pivotal_tuning=True, num_new_tokens=2, **FAST))
    assert trained.embeddings_file
    (prompt,) = _prompts(workspace, subject, trained.lora_file)
    assert "<s0><s1> person" in prompt
    engine = build_engine(GenerateConfig(subject=subject, lora=trained.lora_file), workspace)
    tokenizer = engine.pipe.tokenizer
    assert tokenizer("<s0><s1>", add_special_tokens=False).input_ids == tokenizer.convert_tokens_to_ids(
        ["<s0>", "<s1>"]
    )
    assert len(tokenizer) == 49408 + 2  # the new tokens are real vocabulary, not split into characters
