"""What each tab shows, from plain values: status lines, gallery labels, verdicts, reports, the blind test."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from workbench.errors import WorkbenchError
from workbench.evaluate.stats import Estimate
from workbench.intake.set_checks import Finding
from workbench.stage import Progress, StageStopped
from workbench.ui.handlers import blindtest as B
from workbench.ui.handlers import evaluate as E
from workbench.ui.handlers import generate as G
from workbench.ui.handlers import subject as S
from workbench.ui.handlers import train as T
from workbench.ui.handlers.common import StageJob
from workbench.ui.jobs import Tick
from workbench.ui.sessions import Viewer
from workbench.workspace.generations import ImageRecord


def _train_job() -> StageJob:
    return StageJob("alice", T.train_config("tiny-demo", {}), lambda events: None)


def test_train_status_while_running_and_when_done(workspace) -> None:
    job = _train_job()
    starting = T.view(workspace, job, Tick("train", None, None, ()))
    assert (
        "loading the model" in starting.status and starting.loss is None and "No curves yet" in starting.note
    )
    running = T.view(workspace, job, Tick("train", None, Progress("train", 3, 60), ()))
    assert running.status == "Training `alice` on `tiny`: step 3 of 60…"
    result = SimpleNamespace(
        steps=60, seconds=12.5, final_loss=0.1234, lora_file=Path("w.safetensors"), run_id="r1"
    )
    done = T.view(
        workspace, job, Tick("train", "r1", Progress("train", 60, 60), (), True, "FINISHED", result)
    )
    assert done.status.startswith("Done: 60 steps in 12.5 s, final loss 0.1234") and "FINISHED" in done.status
    failed = Tick(
        "train", "r1", None, (), True, "FAILED", error=WorkbenchError("Out of memory: lower the rank.")
    )
    with pytest.raises(WorkbenchError, match="lower the rank"):  # shown as the toast, in the CLI's words
        T.view(workspace, job, failed)


def test_train_status_after_cancel(workspace) -> None:
    tick = Tick("train", None, Progress("train", 7, 60), (), True, "KILLED", error=StageStopped("stopped"))
    text = T.view(workspace, _train_job(), tick).status
    assert text.startswith("Training cancelled after 7 of 60 steps. The run is **KILLED**.")
    assert "workbench train --subject alice --resume" in text


def test_generate_shows_each_image_as_it_is_saved_with_its_parameters(workspace, tmp_path) -> None:
    config = SimpleNamespace(n_images=4)
    job = G.GenerateJob("alice", config, tmp_path / "run", lambda events: None)
    record = ImageRecord(index=0, seed=7, file="0000-seed7.png", presets=("corporate", "studio"), steps=30,
                         guidance_scale=7.0, scheduler="ddim")  # fmt: skip
    tick = Tick("generate", "r2", Progress("generate", 1, 4, unit="img", item=record), (record,))
    shown = G.view(workspace, job, tick, publish=str)  # type: ignore[arg-type]
    assert shown.status == "Generating 1 of 4…" and shown.download is None
    assert shown.images == [
        (str(tmp_path / "run" / "0000-seed7.png"), "seed 7 · corporate/studio · 30 steps · CFG 7.0 · ddim")
    ]
    stopped = Tick("generate", None, tick.progress, (record,), True, "KILLED", error=StageStopped("stopped"))
    shown = G.view(workspace, job, stopped, publish=str)  # type: ignore[arg-type]
    assert "Generation cancelled after 1 of 4 images" in shown.status and len(shown.images) == 1


def test_control_needs_a_reference() -> None:
    assert G.control_specs("none", None, 1.0) == []
    assert G.control_specs("canny", "ref.png", 0.75) == ["canny:ref.png:0.75"]
    with pytest.raises(WorkbenchError, match="canny ControlNet needs a reference image"):
        G.control_specs("canny", None, 1.0)


def test_intake_verdicts_gallery_and_set_advice() -> None:
    photos = [SimpleNamespace(path="/x/a.jpg", name="a.jpg", accepted=True, reasons=[], warnings=[]),
              SimpleNamespace(path="/x/b.jpg", name="b.jpg", accepted=False, reasons=["No face was found."],
                              warnings=["Blurry."])]  # fmt: skip
    findings = [Finding("count", True, 2, 15, "2 photos."), Finding("pose", False, 0, 1, "Add profiles.")]
    result = SimpleNamespace(photos=photos, set_findings=findings, n_accepted=1, subject="alice")
    rows = S.photo_rows(result)
    assert S.verdicts(rows).to_dict("records")[1] == {"photo": "b.jpg", "verdict": "rejected",
                                                       "advice": "No face was found. Blurry."}  # fmt: skip
    assert S.gallery(rows, lambda p: f"thumb:{p}")[0] == ("thumb:/x/a.jpg", "✓ a.jpg: Good photo.")
    advice = S.set_advice(result)
    assert advice.startswith("**1 of 2 photos accepted** for subject `alice`.")
    assert advice.index("⚠ Add profiles.") < advice.index("✓ 2 photos.")  # problems first


def test_evaluation_report_as_text_and_tables() -> None:
    summary = {"n_images": 4, "n_references": 6, "ranking": {"usable": 3, "total": 4,
               "usable_yield": Estimate(0.75, 0.3, 0.95, 4, "wilson")},
               "detect": {"backend": "spectral", "auc": Estimate(0.5, 0.32, 0.68, 40, "delong"), "p_value": 0.61},
               "backends": {"skipped": "second backend not used: no ArcFace ONNX model"}}  # fmt: skip
    metrics = {"likeness.verification_rate": 0.75, "likeness.verification_rate.lo": 0.3,
               "likeness.verification_rate.hi": 0.95, "timing.faces_per_second": 9.0}  # fmt: skip
    text = E.headline(summary, metrics)
    assert (
        "Usable: **3 of 4** (yield 75%, 95% CI 30%-95%)" in text
        and "AUC on content-matched held-out photos vs outputs: 0.50 [0.32, 0.68] (0.5 = cannot tell), p = 0.610"
        in text
        and "Backends: second backend not used: no ArcFace ONNX model." in text
    )
    assert "| likeness.verification_rate | 0.75 | [0.3, 0.95] |" in text and "timing" not in text
    groups = {"mst_band": {"face_found": {"label": "face found rate", "worst_group": "MST 4-6",
              "groups": {"MST 4-6": {"est": 0.5, "lo": 0.1, "hi": 0.9, "n": 4}}}},
              "fitzpatrick": {"skipped": "no column 'fitzpatrick'"}}  # fmt: skip
    rows = E.group_rows(groups).to_dict("records")
    assert (
        rows[0]["95% CI"] == "[0.1, 0.9]" and rows[0]["worst"] == "yes" and "no column" in rows[1]["95% CI"]
    )
    assert list(E.group_rows({}).columns) == ["No groups"]
    table = pd.DataFrame([{"file": "/r/a.png", "rank": 1, "usable": True, "score": 0.9},
                          {"file": "/r/b.png", "rank": 2, "usable": False, "reasons": "blurry", "score": 0.1},
                          {"file": "", "rank": 3, "usable": False, "score": 0.0}])  # fmt: skip
    assert E.ranked(table, str) == [
        ("/r/a.png", "#1 ✓ usable · score 0.90"),
        ("/r/b.png", "#2 ✗ blurry · score 0.10"),
    ]


def test_blind_test_session_moves_item_by_item(workspace) -> None:
    assert B.show(None).text == B.NOT_STARTED
    with pytest.raises(WorkbenchError, match="Press Start"):
        B.answer(workspace, Viewer(), None, "ai")
    workspace.write_subject("alice", token="ohwx")
    with pytest.raises(WorkbenchError, match="participant"):
        B.start(workspace, Viewer(), "alice", "  ", "single", 4)
    items = [{"item": "s-000", "mode": "2afc", "images": ["l.png", "r.png"], "truth": "left"}]
    state = {"subject": "alice", "participant": "p1", "items": items, "index": 0}
    view = B.show(state)
    assert (view.text, view.left, view.right, view.pair, view.asking) == (
        "Item 1 of 1: which one is AI?", "l.png", "r.png", True, True)  # fmt: skip
    state = B.answer(workspace, Viewer(), state, "left")
    assert B.show(state).text.startswith("Done: 1 answers stored") and not B.show(state).asking
    score = B.score(workspace, Viewer(), "alice", "P1")
    assert "Two images (2AFC): accuracy **100%**" in score and "**P1**" in score
    with pytest.raises(
        WorkbenchError, match="No subject 'alice' here"
    ):  # someone else's subject, with logins
        B.answer(workspace, Viewer(login="bo", sees_all=False), {**state, "index": 0}, "left")
