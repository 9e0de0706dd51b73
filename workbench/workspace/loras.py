"""A subject's LoRA runs: the one reader and writer of ``subjects/<id>/loras/<run>/``.

Training writes, generation and the app read::

    pytorch_lora_weights.safetensors   diffusers format (pipe.load_lora_weights(folder))
    <subject>_kohya.safetensors        kohya format (ComfyUI, AUTOMATIC1111)
    <subject>_emb.safetensors          pivotal-tuning embeddings (only with pivotal_tuning)
    train.yaml                         the resolved config: how prompts must name the subject
    summary.json                       written last: its presence marks the run finished
    checkpoints/checkpoint-<step>/     resumable state
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.workspace.layout import Workspace

WEIGHTS = "pytorch_lora_weights.safetensors"
CONFIG_FILE = "train.yaml"
SUMMARY_FILE = "summary.json"
EMBEDDINGS_SUFFIX = "_emb.safetensors"
KOHYA_SUFFIX = "_kohya.safetensors"
CHECKPOINTS = "checkpoints"


@dataclass(frozen=True)
class LoraIdentity:
    """How prompts must name the subject for a LoRA: the token and class word it was trained with and, after
    pivotal tuning, the file of the new tokens' embeddings. Empty for a LoRA from elsewhere."""

    instance_token: str | None = None
    class_word: str | None = None
    embeddings_file: Path | None = None


@dataclass(frozen=True)
class LoraRun:
    """One training run's folder."""

    dir: Path

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def weights(self) -> Path:
        return self.dir / WEIGHTS

    @property
    def config_file(self) -> Path:
        return self.dir / CONFIG_FILE

    @property
    def summary_file(self) -> Path:
        return self.dir / SUMMARY_FILE

    @property
    def checkpoints(self) -> Path:
        return self.dir / CHECKPOINTS

    def kohya_file(self, subject: str) -> Path:
        return self.dir / f"{subject}{KOHYA_SUFFIX}"

    def embeddings_file(self, subject: str) -> Path:
        return self.dir / f"{subject}{EMBEDDINGS_SUFFIX}"

    @property
    def started(self) -> bool:
        return self.config_file.is_file()

    @property
    def finished(self) -> bool:
        return self.summary_file.is_file()

    def write_summary(self, summary: dict[str, Any]) -> Path:
        """Written last, atomically: a run with a summary is finished (and not resumable)."""
        tmp = self.summary_file.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(summary, indent=2, default=str))
        tmp.replace(self.summary_file)
        return self.summary_file

    def identity(self) -> LoraIdentity:
        return lora_identity(self.weights)


def registered_model_name(subject: str) -> str:
    """The MLflow registry name of a subject's LoRAs (one version per training run)."""
    return subject


def lora_run(workspace: Workspace, subject: str, run_name: str) -> LoraRun:
    return LoraRun(workspace.lora_dir(subject, run_name))


def lora_runs(workspace: Workspace, subject: str, *, finished: bool | None = True) -> list[LoraRun]:
    """The subject's LoRA runs, newest first (run names start with a UTC timestamp); by default the finished."""
    root = workspace.subject_path(subject, "loras")
    runs = [LoraRun(p) for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    runs = [r for r in runs if r.started and (finished is None or r.finished == finished)]
    return sorted(runs, key=lambda r: r.name, reverse=True)


def find_resumable(workspace: Workspace, subject: str) -> LoraRun:
    """The newest run of ``subject`` that started but did not finish."""
    runs = lora_runs(workspace, subject, finished=False)
    if not runs:
        raise WorkbenchError(
            f"Nothing to resume for subject '{subject}': no unfinished training run in "
            f"{workspace.subject_path(subject, 'loras')}. Start a new run without --resume."
        )
    return runs[0]


def lora_identity(lora_file: Path) -> LoraIdentity:
    """The identity recorded beside a LoRA file of ours (``train.yaml`` and the embeddings file)."""
    import yaml

    folder = Path(lora_file).parent
    token = class_word = embeddings = None
    if (folder / CONFIG_FILE).is_file():
        trained = yaml.safe_load((folder / CONFIG_FILE).read_text()) or {}
        token, class_word = trained.get("instance_token") or None, trained.get("class_word") or None
    found = sorted(folder.glob(f"*{EMBEDDINGS_SUFFIX}"))
    if found:
        from safetensors import safe_open

        embeddings = found[0]
        with safe_open(str(embeddings), "pt") as handle:
            new_tokens = json.loads(handle.metadata()["tokens"])
        # Training replaced the identifier with the new tokens in every caption (trainer.pivotal_prompt).
        token = "".join(new_tokens)
    return LoraIdentity(token, class_word, embeddings)


def resolve_lora(spec: str | Path, workspace: Workspace | None = None) -> Path:
    """A LoRA file from a file, a folder (``pytorch_lora_weights.safetensors`` or its only .safetensors) or an
    MLflow run (``mlflow:<run_id>``: the run's logged LoRA artifact is downloaded into the tracking store)."""
    spec = str(spec)
    if spec.startswith("mlflow:"):
        return _lora_from_mlflow(spec.removeprefix("mlflow:"), workspace or Workspace.resolve())
    path = Path(spec).expanduser()
    if path.is_file():
        if path.suffix != ".safetensors":
            raise WorkbenchError(
                f"LoRA {path} is not a .safetensors file (diffusers/peft LoRA format expected)."
            )
        return check_lora_file(path.resolve())
    if path.is_dir():
        return check_lora_file(_lora_in_folder(path, spec))
    raise WorkbenchError(
        f"LoRA '{spec}' not found: pass a .safetensors file, a folder holding one (e.g. the subject's "
        "loras/<run>/), or mlflow:<run_id> of a training run."
    )


# Key fragments of every LoRA layout diffusers loads: peft (lora_A/B), kohya (lora_down/up), old diffusers.
_LORA_KEY_PARTS = ("lora_A", "lora_B", "lora_down", "lora_up", "lora.down", "lora.up", "lora_linear_layer")


def check_lora_file(path: Path) -> Path:
    """Refuse, before any model loads, a file that is not a readable safetensors file with LoRA weights in it."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as handle:
            keys = list(handle.keys())
    except Exception as exc:  # noqa: BLE001 - the safetensors reader raises its own error types on garbage
        raise WorkbenchError(
            f"LoRA {path} is not a readable safetensors file ({type(exc).__name__}: "
            f"{(str(exc).splitlines() or [''])[0][:120]}): pass the LoRA a training run wrote, or re-export it."
        ) from None
    if not any(part in key for key in keys for part in _LORA_KEY_PARTS):
        raise WorkbenchError(
            f"{path} holds no LoRA weights ({len(keys)} tensors, none named lora_A/lora_B or lora_down/lora_up): "
            "it is not a LoRA; pass the pytorch_lora_weights.safetensors of a training run."
        )
    return path


def _lora_in_folder(path: Path, spec: str) -> Path:
    if (path / WEIGHTS).is_file():
        return (path / WEIGHTS).resolve()
    candidates = sorted(path.rglob("*.safetensors"))
    if len(candidates) == 1:
        return candidates[0].resolve()
    found = ", ".join(str(c.relative_to(path)) for c in candidates) or "none"
    raise WorkbenchError(
        f"LoRA folder {path} ({spec}) has no {WEIGHTS} and not exactly one .safetensors file "
        f"(found: {found}); pass the file itself."
    )


def _lora_from_mlflow(run_id: str, workspace: Workspace) -> Path:
    import mlflow

    from workbench.tracking import configure_tracking

    configure_tracking(workspace)
    client = mlflow.MlflowClient()
    stack, found = [""], []
    while stack:
        for item in client.list_artifacts(run_id, stack.pop() or None):
            if item.is_dir:
                stack.append(item.path)
            elif item.path.endswith(".safetensors"):
                found.append(item.path)
    preferred = [p for p in found if p.endswith(WEIGHTS)] or found
    if len(preferred) != 1:
        raise WorkbenchError(
            f"MLflow run {run_id} has {len(found)} .safetensors artifacts ({', '.join(found) or 'none'}); "
            "pass the LoRA file path instead."
        )
    target = workspace.cache_dir / "mlflow-loras" / run_id
    local = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path=preferred[0], dst_path=str(target)
    )
    return Path(local).resolve()
