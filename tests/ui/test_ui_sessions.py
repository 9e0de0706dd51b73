"""Who sees which subject: everything on loopback; with logins, each person their own; the operator all."""

from __future__ import annotations

import mlflow
import pytest

from workbench.config import StageConfig
from workbench.errors import WorkbenchError
from workbench.tracking import stage_run
from workbench.ui import runs as R
from workbench.ui.context import AppContext
from workbench.ui.handlers import evaluate as E
from workbench.ui.handlers import generate as G
from workbench.ui.handlers import subject as S
from workbench.ui.sessions import OWNER_FIELD, Viewer
from workbench.workspace import Workspace


def _create(workspace: Workspace, viewer: Viewer, name: str) -> str:
    """What the Subject tab does around intake (check the id is free, file the subject, claim it), plus one
    finished LoRA and one generation run for the lists."""
    subject = viewer.subject_id(name)
    viewer.check_free(workspace, subject)
    workspace.write_subject(subject, token="ohwx")
    lora = workspace.subject_path(subject, "loras", "train-1")
    lora.mkdir(parents=True)
    for name in ("train.yaml", "summary.json", "pytorch_lora_weights.safetensors"):
        (lora / name).write_text("model: tiny\n" if name == "train.yaml" else "{}")
    generation = workspace.generation_dir(subject, "generate-1")
    generation.mkdir(parents=True)
    (generation / "manifest.jsonl").write_text('{"index": 0, "seed": 0, "file": "0000-seed0.png"}\n')
    viewer.claim(workspace, subject)
    return subject


def _login(name: str | None, *, operator: bool = False) -> Viewer:
    return AppContext(Workspace.resolve(), logins=True, operator=operator).viewer(_Request(name))


class _Request:  # what the app reads from gr.Request
    def __init__(self, username: str | None) -> None:
        self.username = username


def test_loopback_lists_every_subject_on_disk(workspace: Workspace) -> None:
    local = AppContext(workspace).viewer(_Request(None))
    workspace.write_subject("from-cli", token="ohwx")  # `workbench intake`, or a notebook
    made_here = _create(workspace, local, "alice")
    assert made_here == "alice"  # one researcher: ids as typed
    assert OWNER_FIELD not in workspace.read_subject(made_here)
    # A reload is a new request: it still lists everything on disk.
    assert AppContext(workspace).viewer(_Request(None)).subjects(workspace) == ["alice", "from-cli"]
    assert S.subjects(workspace, local) == (["alice", "from-cli"], "alice")  # newest first selected


def test_with_logins_each_person_sees_only_their_own(workspace: Workspace) -> None:
    ana, bo = _login("ana"), _login("bo")
    a = _create(workspace, ana, "alice")
    b = _create(workspace, bo, "alice")  # the same name typed by someone else
    assert a != b and a.startswith("alice-") and b.startswith("alice-")
    assert workspace.read_subject(a)[OWNER_FIELD] == "ana"
    workspace.write_subject("from-cli", token="ohwx")

    assert ana.subjects(workspace) == [a] and bo.subjects(workspace) == [b]
    # Ownership follows the login, not the browser: ana on another machine still sees hers.
    assert _login("ana").subjects(workspace) == [a] and _login("ana").subject_id("alice") == a
    # Handlers that list a subject's files show nothing of someone else's subject, whatever the client sends.
    assert G.loras(workspace, bo, a) == [] and E.generation_runs(workspace, bo, a) == []
    assert G.loras(workspace, ana, a) and E.generation_runs(workspace, ana, a) == [
        ("generate-1 (1 images)", "generate-1")
    ]
    for call in (lambda: bo.require(workspace, a), lambda: S.summary(workspace, bo, a)):
        with pytest.raises(WorkbenchError, match="No subject 'alice-.*' here"):
            call()


def test_a_login_cannot_take_over_another_persons_subject(workspace: Workspace) -> None:
    owner, intruder = _login("carol"), _login("mallory")
    subject = _create(workspace, owner, "carol")
    assert intruder.subject_id(subject) not in (
        subject,
        *workspace.subjects(),
    )  # the full id: a new one of theirs
    with pytest.raises(WorkbenchError, match="taken"):
        intruder.check_free(workspace, subject)
    workspace.write_subject("from-cli", token="ohwx")
    with pytest.raises(WorkbenchError, match="taken"):  # nor one made outside the app
        intruder.check_free(workspace, "from-cli")


def test_the_operator_sees_every_subject(workspace: Workspace) -> None:
    a = _create(workspace, _login("dan"), "dan")
    workspace.write_subject("from-cli", token="ohwx")
    operator = _login("root", operator=True)
    assert operator.subjects(workspace) == sorted([a, "from-cli"])
    assert operator.subject_id("eve") == "eve"
    assert _login("dan").subjects(workspace) == [a]


def test_with_logins_a_request_without_one_is_refused() -> None:
    with pytest.raises(WorkbenchError, match="needs a login"):
        _login(None)


def test_runs_tab_lists_only_the_runs_one_may_see(workspace: Workspace) -> None:
    a = _create(workspace, _login("fay"), "fay")
    b = _create(workspace, _login("gus"), "gus")
    for subject in (a, b):
        with stage_run(workspace, "train", StageConfig(), subject_id=subject):
            mlflow.log_metric("loss", 0.5)
    mine = R.visible_runs(workspace, _login("fay"))
    assert [r.data.tags[R.SUBJECT_TAG] for r in mine] == [a]
    assert len(R.visible_runs(workspace, Viewer())) == 2  # loopback: the researcher's own workspace
    assert len(R.visible_runs(workspace, _login("root", operator=True))) == 2
    frame = R.runs_frame(mine)
    assert list(frame["status"]) == ["FINISHED"]
    assert "loss" in set(R.compare_frame(mine)["key"])


def test_upload_limits_have_clear_messages(tmp_path) -> None:
    with pytest.raises(WorkbenchError, match="Upload 1 to 20 photos"):
        S.check_uploads([])
    files = []
    for i in range(21):
        files.append(tmp_path / f"{i}.jpg")
        files[-1].write_bytes(b"0" * 10)
    with pytest.raises(WorkbenchError, match="21 photos uploaded; the limit is 20"):
        S.check_uploads([str(f) for f in files])
    big = tmp_path / "big.jpg"
    big.write_bytes(b"0" * (2 * 1024 * 1024))
    with pytest.raises(WorkbenchError, match=r"larger than 1 MB: big.jpg \(2 MB\)"):
        S.check_uploads([str(big)], max_mb=1)
    assert S.check_uploads([str(files[0])]) == [files[0]]
