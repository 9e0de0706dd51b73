"""The CUDA code paths (bf16 training, the generation speed path) on the tiny presets.

Marked ``gpu``: skipped by default; run with ``pytest -m gpu`` on a machine with CUDA. CI has no GPU.
"""

import pytest
import torch

from workbench.demo import sample_photo_set
from workbench.generate import GenerateConfig, run_generate
from workbench.intake import IntakeConfig, run_intake
from workbench.train import TrainConfig, run_train

pytestmark = pytest.mark.gpu


@pytest.fixture
def cuda():
    if not torch.cuda.is_available():
        pytest.fail("`pytest -m gpu` needs a CUDA device; none is visible")
    return torch.device("cuda")


@pytest.mark.parametrize("model", ["tiny", "tiny-sdxl"])
def test_bf16_training_and_fast_generation_on_cuda(cuda, model, workspace, tmp_path):
    run_intake(
        "gpu", IntakeConfig(resolution=64), workspace=workspace, photos=sample_photo_set(tmp_path / "photos")
    )
    config = TrainConfig(
        model=model, max_train_steps=10, mixed_precision="bf16", gradient_checkpointing=True,
        validation_steps=0, validation_inference_steps=2, rank=4,
    )  # fmt: skip
    trained = run_train("gpu", config, workspace=workspace)
    assert trained.final_loss == trained.final_loss  # finite, not NaN
    batch = run_generate(
        "gpu",
        GenerateConfig(model=model, lora=str(trained.lora_file), count=4, steps=2, batch_size=4),
        workspace=workspace,
    )
    assert len(batch.images) == 4
    params = batch.records[0].params
    assert params["device"].startswith("cuda") and params["dtype"] == "bfloat16"
