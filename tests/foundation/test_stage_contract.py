"""The contract every stage follows (see :mod:`workbench.stage`), checked the same way for all four.

In the spirit of diffusers' ``PipelineTesterMixin``: one test class, parametrized over the stages, each stage
described by a small :class:`StageCase` (its tiny config, its own inputs, and where to inject a failure). A new
stage proves it follows the contract by adding a case here, not by writing new tests.

One chain intake -> train -> generate -> eval on the tiny preset is run once for the module, in its own
workspace and tracking store; the contract's "finished run" checks read its results. The FAILED and KILLED
checks run a stage again in each test's fresh workspace (conftest), on a copy of the chain's subject folder.
"""

from __future__ import annotations

import dataclasses
import inspect
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pytest

from workbench.demo import sample_photo_set
from workbench.stage import STAGE_SPECS, RecordingEvents, StageResult, StageStopped
from workbench.workspace import Workspace

SUBJECT = "contract"


def _nothing(workspace: Workspace, chain: dict[str, Any]) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class StageCase:
    """One stage under the contract: a tiny config, what it takes from earlier stages, where it can fail."""

    name: str  # a key of STAGE_SPECS, and the stage name of its MLflow run and progress events
    config: dict[str, Any]
    breaks: str  # a function the stage calls inside its tracked run; the FAILED check makes it raise
    # (workspace, chain) -> config fields naming what earlier stages wrote, and the stage's own inputs
    chained_config: Callable[[Workspace, dict[str, Any]], dict[str, Any]] = _nothing
    inputs: Callable[[Workspace, dict[str, Any]], dict[str, Any]] = _nothing

    def call(self, workspace: Workspace, chain: dict[str, Any], events: RecordingEvents):
        config_cls, run = STAGE_SPECS[self.name].load()
        config = config_cls(**self.config, **self.chained_config(workspace, chain))
        return run(SUBJECT, config, workspace=workspace, events=events, **self.inputs(workspace, chain))


def _run_folder(chain: dict[str, Any], stage: str) -> str:
    return chain["results"][stage].out_dir.name


CASES = [
    StageCase(
        "intake", {"resolution": 64}, "workbench.intake.pipeline.save_embeddings",
        inputs=lambda ws, chain: {"photos": chain["photos"]},
    ),
    StageCase(
        "train",
        {"model": "tiny", "max_train_steps": 2, "validation_steps": 0, "validation_prompts": [], "rank": 4,
         "checkpointing_steps": 0},
        "workbench.train.trainer.optimizer_step",
    ),
    # batch_size=1: a stop request is honoured between pipeline calls, so two images make two calls.
    StageCase(
        "generate", {"model": "tiny", "count": 2, "steps": 2, "batch_size": 1},
        "workbench.generate.engine.build_engine",
        chained_config=lambda ws, chain: {"lora": str(ws.lora_dir(SUBJECT, _run_folder(chain, "train")))},
    ),
    StageCase(
        "eval", {"n_boot": 20}, "workbench.evaluate.suite.analyse",
        inputs=lambda ws, chain: {"images": ws.generation_dir(SUBJECT, _run_folder(chain, "generate"))},
    ),
]  # fmt: skip


@pytest.fixture(scope="module")
def chain(tmp_path_factory, model_cache, empty_tracking_db) -> dict[str, Any]:
    """Every stage run once, in order, each with its own RecordingEvents; the run statuses read back."""
    root = tmp_path_factory.mktemp("stage-contract")
    shutil.copyfile(empty_tracking_db, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mp = pytest.MonkeyPatch()
    try:
        mp.chdir(root)  # keep anything a stage writes to the current folder inside this test's folder
        mp.setenv("WORKBENCH_WORKSPACE", str(root / "workspace"))
        mp.setenv("WORKBENCH_CACHE", str(model_cache))
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("HF_HUB_OFFLINE", "1")
        workspace = Workspace.resolve()
        chain: dict[str, Any] = {"workspace": workspace, "photos": sample_photo_set(root / "photos"),
                                 "results": {}, "events": {}}  # fmt: skip
        for case in CASES:
            events = RecordingEvents()
            chain["results"][case.name] = case.call(workspace, chain, events)
            chain["events"][case.name] = events
        client = mlflow.MlflowClient(uri)
        chain["status"] = {
            name: client.get_run(result.run_id).info.status for name, result in chain["results"].items()
        }
    finally:
        mlflow.set_tracking_uri(None)
        mp.undo()
    return chain


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request) -> StageCase:
    return request.param


@pytest.fixture
def ready(case: StageCase, chain: dict[str, Any], workspace: Workspace) -> StageCase:
    """This test's fresh workspace with what the stage needs from the stages before it (intake needs none)."""
    if case.name != "intake":
        shutil.copytree(chain["workspace"].subject_dir(SUBJECT), workspace.subject_dir(SUBJECT))
    return case


def _status(run_id: str) -> str:
    return mlflow.MlflowClient().get_run(run_id).info.status


def test_every_stage_has_a_case():
    assert {c.name for c in CASES} == set(STAGE_SPECS)


class TestStageContract:
    def test_signature(self, case: StageCase):
        _, run = STAGE_SPECS[case.name].load()
        params = list(inspect.signature(run).parameters.values())
        assert [p.name for p in params[:2]] == ["subject", "config"]
        assert (
            params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and params[0].default is params[0].empty
        )
        assert params[1].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and params[1].default is None
        by_name = {p.name: p for p in params}
        assert by_name["workspace"].kind is inspect.Parameter.KEYWORD_ONLY
        assert by_name["workspace"].default is inspect.Parameter.empty  # no hidden default workspace
        assert by_name["events"].kind is inspect.Parameter.KEYWORD_ONLY and by_name["events"].default is None
        # The stage's own inputs come after, keyword-only: nothing positional besides subject and config.
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[2:])

    def test_result_is_a_typed_stage_result_of_a_finished_run(self, case: StageCase, chain):
        result = chain["results"][case.name]
        assert dataclasses.is_dataclass(result) and isinstance(result, StageResult)
        assert type(result) is not StageResult  # each stage extends it with its own typed fields
        assert isinstance(result.run_id, str) and result.run_id
        assert isinstance(result.out_dir, Path) and result.out_dir.is_dir()
        assert chain["status"][case.name] == "FINISHED"
        events = chain["events"][case.name]
        assert events.started == [(case.name, result.run_id)]
        assert events.finished == [(case.name, result.run_id, "FINISHED")]

    def test_progress_is_reported(self, case: StageCase, chain):
        updates = [u for u in chain["events"][case.name].updates if u.stage == case.name]
        assert updates, f"{case.name} reported no progress"
        assert all(u.total is not None and 0 <= u.done <= u.total for u in updates)
        assert [u.done for u in updates] == sorted(u.done for u in updates)  # never goes backwards
        assert updates[-1].done == updates[-1].total  # a finished run's bar is full

    def test_a_failure_ends_the_run_failed(self, ready: StageCase, chain, workspace, monkeypatch):
        def broken(*args, **kwargs):
            raise RuntimeError("injected failure")

        monkeypatch.setattr(ready.breaks, broken)
        events = RecordingEvents()
        with pytest.raises(RuntimeError, match="injected failure"):
            ready.call(workspace, chain, events)
        [(stage, run_id)] = events.started
        assert stage == ready.name and _status(run_id) == "FAILED"
        assert events.finished == [(ready.name, run_id, "FAILED")]

    def test_a_stop_request_ends_the_run_killed(self, ready: StageCase, chain, workspace):
        events = RecordingEvents(stop_after=1)  # the Cancel button, pressed after the first step
        with pytest.raises(StageStopped):
            ready.call(workspace, chain, events)
        [(stage, run_id)] = events.started
        assert stage == ready.name and _status(run_id) == "KILLED"
        assert events.finished == [(ready.name, run_id, "KILLED")]
        assert len([u for u in events.updates if u.stage == ready.name]) == 1  # it stopped at the next step
