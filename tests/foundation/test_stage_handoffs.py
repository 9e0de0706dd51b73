"""What one stage hands the next: the words a LoRA was trained on reach the generation prompts."""

import pytest

from workbench.demo import sample_photo_set
from workbench.generate import GenerateConfig, run_generate
from workbench.generate.engine import build_engine
from workbench.intake import IntakeConfig, run_intake
from workbench.train import TrainConfig, run_train
from workbench.workspace.generations import GenerationRun

FAST = {"max_train_steps": 2, "validation_steps": 0, "validation_inference_steps": 1, "rank": 4}


@pytest.fixture
def subject(workspace, tmp_path):
    run_intake("handoff", IntakeConfig(resolution=64), workspace=workspace,
               photos=sample_photo_set(tmp_path / "photos"))  # fmt: skip
    return "handoff"


def _prompts(workspace, subject, lora):
    config = GenerateConfig(lora=str(lora), presets=["corporate"], count=1, steps=1)
    batch = run_generate(subject, config, workspace=workspace)
    return [record.prompt for record in GenerationRun(batch.out_dir).records()]


def test_generation_uses_the_token_the_lora_was_trained_with(workspace, subject):
    assert workspace.read_subject(subject)["token"] == "ohwx"
    config = TrainConfig(instance_token="zwx", class_word="woman", **FAST)
    trained = run_train(subject, config, workspace=workspace)
    (prompt,) = _prompts(workspace, subject, trained.lora_file)
    assert "zwx woman" in prompt and "ohwx" not in prompt


def test_pivotal_tuning_tokens_are_loaded_and_used(workspace, subject):
    config = TrainConfig(pivotal_tuning=True, num_new_tokens=2, **FAST)
    trained = run_train(subject, config, workspace=workspace)
    assert trained.embeddings_file
    (prompt,) = _prompts(workspace, subject, trained.lora_file)
    assert "<s0><s1> person" in prompt
    engine = build_engine(GenerateConfig(lora=str(trained.lora_file)), workspace)
    tokenizer = engine.pipe.tokenizer
    assert tokenizer("<s0><s1>", add_special_tokens=False).input_ids == tokenizer.convert_tokens_to_ids(
        ["<s0>", "<s1>"]
    )
    assert len(tokenizer) == 49408 + 2  # the new tokens are real vocabulary, not split into characters
