"""Optimizers: AdamW by default; 8-bit AdamW (bitsandbytes) and Prodigy (prodigyopt) when installed."""

from __future__ import annotations

import importlib.util
from functools import cache
from typing import Any

import torch

from workbench.errors import MissingDependencyError
from workbench.train.config import TrainConfig

_EXTRAS = {"adamw8bit": "bitsandbytes", "prodigy": "prodigyopt"}


@cache
def available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def make_optimizer(config: TrainConfig, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    betas = (config.adam_beta1, config.adam_beta2)
    name = config.optimizer
    if name in _EXTRAS and not available(_EXTRAS[name]):
        raise MissingDependencyError(
            f"optimizer={name} needs the '{_EXTRAS[name]}' package: run "
            f"`pip install 'headshot-workbench[train-extras]'` (or `pip install {_EXTRAS[name]}`), "
            "or use optimizer=adamw."
        )
    if name == "adamw8bit":
        import bitsandbytes as bnb

        return bnb.optim.AdamW8bit(
            groups, betas=betas, weight_decay=config.weight_decay, eps=config.adam_epsilon
        )
    if name == "prodigy":
        import prodigyopt

        # Prodigy estimates the step size itself: learning rates around 1.0 are the intended setting.
        return prodigyopt.Prodigy(
            groups, betas=betas, weight_decay=config.weight_decay, eps=config.adam_epsilon,
            safeguard_warmup=True, use_bias_correction=True,
        )  # fmt: skip
    return torch.optim.AdamW(groups, betas=betas, weight_decay=config.weight_decay, eps=config.adam_epsilon)
