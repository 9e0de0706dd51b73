"""`workbench quick`: one selfie in, tuning-free headshots out, offline on the tiny preset, one parent run."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
from PIL import Image

from workbench.cli import main
from workbench.generate import read_provenance


@pytest.fixture
def selfie(tmp_path: Path, astronaut) -> Path:
    path = tmp_path / "selfie.jpg"
    Image.fromarray(astronaut).save(path, quality=92)
    return path


def test_quick_runs_end_to_end_offline(selfie, workspace, capsys):
    code = main(["quick", str(selfie), "--count", "3", "--preset", "corporate", "executive", "--method",
                 "ip-adapter-faceid", "--json", "--workspace", str(workspace.root)])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)  # stdout holds exactly the JSON document
    assert len(summary["images"]) == 3 and all(Path(p).is_file() for p in summary["images"])
    assert 0 < summary["first_image_s"] <= summary["timings_s"]["total"]
    assert summary["per_image_s"] > 0
    assert set(summary["runs"]) == {"intake", "generate", "eval"}
    parent = mlflow.get_run(summary["parent_run_id"])
    assert parent.info.status == "FINISHED" and parent.data.metrics["first_image_s"] > 0
    for run_id in summary["runs"].values():
        child = mlflow.get_run(run_id)
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.status == "FINISHED"
    identity = read_provenance(summary["images"][0])["parameters"]["identity"]
    assert identity["method"] == "ip-adapter-faceid" and identity["references"][0]["crop"] == "000.png"
    assert "eval.ranking.usable_yield" in summary["metrics"]


def test_a_rejected_selfie_stops_with_intake_advice(tmp_path, workspace, capsys):
    flat = tmp_path / "wall.jpg"
    Image.new("RGB", (400, 400), (180, 170, 160)).save(flat)
    assert main(["quick", str(flat), "--workspace", str(workspace.root)]) == 2
    error = capsys.readouterr().err
    assert "The selfie was not accepted" in error and "face" in error.lower()
    assert not workspace.subject_path("selfie", "generations").exists()


def test_quick_help_lists_its_options(capsys):
    with pytest.raises(SystemExit):
        main(["quick", "--help"])
    out = capsys.readouterr().out
    for flag in ("--preset", "--count", "--json", "--method", "--model"):
        assert flag in out
