"""The train stage: DreamBooth-LoRA for SD 1.5 and SDXL with diffusers + peft + accelerate.

``run_train(subject, TrainConfig(...), workspace=ws)`` -> :class:`TrainResult`; ``python -m workbench.train``
is the same as ``workbench train`` and is what ``accelerate launch`` starts on every process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.config import parse_overrides
from workbench.train.config import TrainConfig

if TYPE_CHECKING:
    from workbench.train.run import TrainResult, run_train
    from workbench.workspace.loras import registered_model_name

__all__ = ["TrainConfig", "TrainResult", "parse_overrides", "registered_model_name", "run_train"]


def __getattr__(name: str) -> Any:
    # torch/diffusers load only when training is asked for, so `import workbench.train` stays cheap.
    if name in ("TrainResult", "run_train", "registered_model_name"):
        from workbench.train import run

        return getattr(run, name)
    raise AttributeError(name)
