"""The train stage: DreamBooth-LoRA for SD 1.5 and SDXL with diffusers + peft + accelerate.

``train_lora(workspace, subject, TrainConfig(...))`` -> :class:`TrainResult`; ``python -m workbench.train``
is the same as ``workbench train`` and is what ``accelerate launch`` starts on every process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.train.config import TrainConfig, parse_overrides

if TYPE_CHECKING:
    from workbench.train.run import TrainResult, train_lora

__all__ = ["TrainConfig", "TrainResult", "parse_overrides", "registered_model_name", "train_lora"]


def __getattr__(name: str) -> Any:
    # torch/diffusers load only when training is asked for, so `import workbench.train` stays cheap.
    if name in ("TrainResult", "train_lora", "registered_model_name"):
        from workbench.train import run

        return getattr(run, name)
    raise AttributeError(name)
