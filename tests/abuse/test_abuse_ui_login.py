"""Issue 12, item 16: the app's password check is throttled (per username and globally); the bind guard holds."""

from __future__ import annotations

import pytest

from workbench.errors import WorkbenchError
from workbench.ui.launch import AuthCheck, check_bind, launch

pytestmark = pytest.mark.abuse


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _check(clock: Clock, **kwargs) -> AuthCheck:
    return AuthCheck([("ana", "right-pw"), ("bo", "other")], clock=clock, sleep=clock.sleep, **kwargs)


def test_right_password_passes_and_wrong_ones_are_slowed_down(clock):
    auth = _check(clock)
    assert auth("ana", "right-pw")
    assert not auth("ana", "guess-1") and not auth("ana", "guess-2")
    assert clock.slept and clock.slept[1] > clock.slept[0], "failures must be answered ever more slowly"
    assert not auth("nobody", "right-pw") and not auth("ana", "")


def test_repeated_failures_lock_the_username_out_even_for_the_right_password(clock, record_property):
    record_property("reliability.bad_inputs", 6)
    auth = _check(clock, free_failures=5, lockout_s=30)
    for i in range(5):
        assert not auth("ana", f"guess-{i}")
    assert auth.locked_for("ana") > 0
    assert not auth("ana", "right-pw"), "a locked-out user got in: the guesser would learn the password"
    assert auth("bo", "other"), "another user is not locked out by ana's failures"
    clock.now += auth.locked_for("ana") + 0.1
    assert auth("ana", "right-pw") and auth.locked_for("ana") == 0  # the lock-out ends; success resets it


def test_lockouts_grow_with_every_further_failure(clock, record_property):
    record_property("reliability.bad_inputs", 8)
    auth = _check(clock, free_failures=3, lockout_s=10, max_lockout_s=100)
    waits = []
    for i in range(8):
        clock.now += auth.locked_for("ana") + 0.1
        auth("ana", f"guess-{i}")
        waits.append(auth.locked_for("ana"))
    assert waits[:2] == [0, 0] and 0 < waits[2] < waits[3] < waits[4]
    assert max(waits) <= 100


def test_guessing_across_many_usernames_locks_every_login_out(clock, record_property):
    record_property("reliability.bad_inputs", 22)
    auth = _check(clock, global_failures=20, window_s=60, lockout_s=30, delay_s=0)
    for i in range(21):
        assert not auth(f"user{i}", "password")
    assert not auth("bo", "other"), "a burst of failures across usernames must lock every login out"
    clock.now += 31
    assert auth("bo", "other")


def test_launch_hands_gradio_the_throttled_check_and_keeps_the_bind_guard(workspace, monkeypatch):
    import workbench.ui.app as app_module

    seen = {}

    class _App:
        def launch(self, **kwargs):
            seen.update(kwargs)

    monkeypatch.delenv("WORKBENCH_UI_AUTH", raising=False)
    monkeypatch.setattr(app_module, "build_app", lambda workspace, **kwargs: _App())
    launch(workspace, host="0.0.0.0", auth="ana:pw")
    assert isinstance(seen["auth"], AuthCheck) and seen["auth"]("ana", "pw") and not seen["auth"]("ana", "x")
    with pytest.raises(WorkbenchError, match="Refusing to listen on 0.0.0.0 without authentication"):
        launch(workspace, host="0.0.0.0")
    with pytest.raises(WorkbenchError, match="public share link"):
        check_bind("127.0.0.1", True, None)
    with pytest.raises(WorkbenchError, match="not a TCP port"):
        launch(workspace, port=70000)
