"""Two browser sessions do not see each other's subjects (unless the operator says so)."""

from __future__ import annotations

import pytest

from workbench.errors import WorkbenchError
from workbench.ui import handlers as H
from workbench.ui import runs as R
from workbench.ui.sessions import OWNER_FIELD, Viewer
from workbench.workspace import Workspace


def _create(workspace: Workspace, viewer: Viewer, name: str) -> str:
    """What the Subject tab does around intake: pick the session's id, check it is free, claim it."""
    subject = viewer.subject_id(name)
    viewer.check_free(workspace, subject)
    workspace.write_subject(subject, token="ohwx")
    (workspace.originals_dir(subject)).mkdir(parents=True, exist_ok=True)
    (workspace.subject_path(subject, "loras", "train-1")).mkdir(parents=True)
    (workspace.subject_path(subject, "loras", "train-1", "pytorch_lora_weights.safetensors")).write_bytes(
        b"x"
    )
    (workspace.generation_dir(subject, "generate-1")).mkdir(parents=True)
    viewer.claim(workspace, subject)
    return subject


def test_two_sessions_see_only_their_own_subjects(workspace: Workspace) -> None:
    alice_session, bob_session = Viewer.from_session("session-a"), Viewer.from_session("session-b")
    a = _create(workspace, alice_session, "alice")
    b = _create(workspace, bob_session, "alice")  # the same name typed in another session
    assert a != b and a.startswith("alice-") and b.startswith("alice-")
    assert workspace.read_subject(a)[OWNER_FIELD] != "session-a"  # the session hash itself is never stored

    assert alice_session.subjects(workspace) == [a]
    assert bob_session.subjects(workspace) == [b]
    # Handlers that list a subject's files refuse someone else's subject, whatever the client sends.
    assert H.loras(workspace, bob_session, a) == [] and H.generation_runs(workspace, bob_session, a) == []
    assert H.loras(workspace, alice_session, a)
    with pytest.raises(WorkbenchError, match="No subject 'alice-.*' in this session"):
        bob_session.require(workspace, a)
    with pytest.raises(WorkbenchError, match="No subject"):
        H.subject_summary(workspace, bob_session, a)
    # A new page load of the same session keeps its subjects.
    assert Viewer.from_session("session-a").subjects(workspace) == [a]


def test_a_session_cannot_take_over_another_sessions_subject(workspace: Workspace) -> None:
    owner, intruder = Viewer.from_session("s1"), Viewer.from_session("s2")
    subject = _create(workspace, owner, "carol")
    # Typing the full id of someone else's subject makes a new subject of one's own...
    assert intruder.subject_id(subject) not in (subject, *workspace.subjects())
    # ...and writing into that id directly is refused.
    with pytest.raises(WorkbenchError, match="taken"):
        intruder.check_free(workspace, subject)


def test_operator_sees_all_and_cli_subjects(workspace: Workspace) -> None:
    a = _create(workspace, Viewer.from_session("s1"), "dan")
    workspace.write_subject("cli-subject", token="ohwx")  # made by `workbench intake`, no session
    operator = Viewer.from_session("s3", sees_all=True)
    assert operator.subjects(workspace) == sorted([a, "cli-subject"])
    assert operator.subject_id("eve") == "eve"  # no session suffix in operator mode
    assert Viewer.from_session("s1").subjects(workspace) == [a]


def test_runs_tab_lists_only_the_sessions_runs(workspace: Workspace) -> None:
    import mlflow

    from workbench.config import StageConfig
    from workbench.tracking import stage_run

    a = _create(workspace, Viewer.from_session("s1"), "fay")
    b = _create(workspace, Viewer.from_session("s2"), "gus")
    for subject in (a, b):
        with stage_run(workspace, "train", StageConfig(), subject_id=subject):
            mlflow.log_metric("loss", 0.5)
    mine = R.list_runs(workspace, Viewer.from_session("s1").subjects(workspace))
    assert [r.data.tags[R.SUBJECT_TAG] for r in mine] == [a]
    assert len(R.list_runs(workspace, None)) == 2
    table = R.compare_frame(R.list_runs(workspace, None))
    assert "loss" in set(table["key"])


def test_no_session_is_refused() -> None:
    with pytest.raises(WorkbenchError, match="reload the page"):
        Viewer.from_session(None)


def test_upload_limits_have_clear_messages(tmp_path) -> None:
    with pytest.raises(WorkbenchError, match="Upload 1 to 20 photos"):
        H.check_uploads([])
    files = []
    for i in range(21):
        files.append(tmp_path / f"{i}.jpg")
        files[-1].write_bytes(b"0" * 10)
    with pytest.raises(WorkbenchError, match="21 photos uploaded; the limit is 20"):
        H.check_uploads([str(f) for f in files])
    big = tmp_path / "big.jpg"
    big.write_bytes(b"0" * (2 * 1024 * 1024))
    with pytest.raises(WorkbenchError, match=r"larger than 1 MB: big.jpg \(2 MB\)"):
        H.check_uploads([str(big)], max_mb=1)
    assert H.check_uploads([str(files[0])]) == [files[0]]
