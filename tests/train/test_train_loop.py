"""The training loop learns: on a fixed batch (same image, noise and timestep) the loss falls, both shapes."""

from __future__ import annotations

import pytest
import torch

from workbench.models import resolve_model
from workbench.train import data as D
from workbench.train import trainer


@pytest.mark.parametrize("model", ["tiny", "tiny-sdxl"])
def test_loss_goes_down_on_a_fixed_batch(workspace, subject, make_config, monkeypatch, model):
    config = make_config(
        model, "learning_rate=1e-2", "snr_gamma=null", "max_train_steps=30", "rank=8", "max_grad_norm=0"
    )
    # The same noise and timestep every step, so the loss measures fitting, not sampling luck.
    monkeypatch.setattr(trainer, "step_generator", lambda seed, micro, rank: torch.Generator().manual_seed(7))
    source = resolve_model(model, workspace.cache_dir)
    examples = D.read_dataset(workspace.dataset_dir(subject), source.resolution)[:1]
    session = trainer.setup(
        config, source, examples, ["a photo of ohwx woman"], trainer.make_accelerator(config)
    )
    losses = [trainer.optimizer_step(session) for _ in range(config.max_train_steps)]
    # LoRA on the tiny UNet's two attention blocks has little capacity: it plateaus ~25% below the start.
    assert sum(losses[-5:]) / 5 < 0.85 * sum(losses[:5]) / 5, losses
    assert sum(b < a for a, b in zip(losses, losses[1:], strict=False)) >= 0.8 * (len(losses) - 1), losses


def test_batches_cover_every_example_each_epoch():
    seen = [trainer.batch_indices(3, step, 5, 1, 0, 1)[0] for step in range(10)]
    assert sorted(seen[:5]) == list(range(5)) and sorted(seen[5:]) == list(range(5))
    # Two processes split the same stream: together they see what one process with twice the batch sees.
    one = trainer.batch_indices(3, 0, 5, 2, 0, 1)
    two = trainer.batch_indices(3, 0, 5, 1, 0, 2) + trainer.batch_indices(3, 0, 5, 1, 1, 2)
    assert one == two
