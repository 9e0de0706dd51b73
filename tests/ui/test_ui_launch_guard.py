"""The bind/auth guard: loopback by default, nothing public without a login."""

from __future__ import annotations

import pytest

from workbench.errors import WorkbenchError
from workbench.ui.launch import AUTH_ENV_VAR, check_bind, is_loopback, launch, parse_auth, resolve_auth


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_addresses_need_no_auth(host: str) -> None:
    assert is_loopback(host)
    check_bind(host, share=False, credentials=None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.5", "workstation.lan"])
def test_other_addresses_without_auth_refuse_with_a_clear_message(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(WorkbenchError, match=f"Refusing to listen on {host} without authentication") as info:
        check_bind(host, share=False, credentials=None)
    assert "--auth user:password" in str(info.value) and AUTH_ENV_VAR in str(info.value)


def test_share_without_auth_refuses() -> None:
    with pytest.raises(WorkbenchError, match="public share link without authentication"):
        check_bind("127.0.0.1", share=True, credentials=None)


def test_with_auth_any_address_and_share_are_allowed() -> None:
    check_bind("0.0.0.0", share=True, credentials=[("ana", "s3cret")])


def test_launch_refuses_before_building_or_binding_anything(
    workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(AUTH_ENV_VAR, raising=False)
    with pytest.raises(WorkbenchError, match="Refusing to listen on 0.0.0.0"):
        launch(workspace, host="0.0.0.0", port=1)  # port 1 would fail if it ever tried to bind


def test_cli_prints_the_refusal_and_exits_2(capsys: pytest.CaptureFixture, monkeypatch) -> None:
    from workbench.cli.ui import ui

    monkeypatch.delenv(AUTH_ENV_VAR, raising=False)
    with pytest.raises(WorkbenchError, match="Refusing to listen on 0.0.0.0"):
        ui(host="0.0.0.0", port=1)


def test_auth_forms(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_auth("ana:pw") == [("ana", "pw")]
    assert parse_auth("ana:pw, bo:p:w") == [("ana", "pw"), ("bo", "p:w")]
    auth_file = tmp_path / "users.txt"
    auth_file.write_text("# team\nana:pw\n\nbo:x\n")
    assert parse_auth(f"@{auth_file}") == [("ana", "pw"), ("bo", "x")]
    monkeypatch.setenv(AUTH_ENV_VAR, "env:pw")
    assert resolve_auth(None) == [("env", "pw")]
    assert resolve_auth("flag:pw") == [("flag", "pw")]
    for bad in ("nopassword", "ana:", ":pw", f"@{tmp_path / 'missing.txt'}"):
        with pytest.raises(WorkbenchError):
            parse_auth(bad)


@pytest.mark.parametrize(("auth", "operator", "logins"), [(None, False, False), ("ana:pw", False, True),
                                                          ("ana:pw", True, True)])  # fmt: skip
def test_a_login_makes_ownership_follow_it(
    workspace, monkeypatch: pytest.MonkeyPatch, auth, operator, logins
):
    """Loopback without a login: one researcher, every subject. With --auth: each login its own subjects."""
    import workbench.ui.app as app_module

    built = {}

    class _App:
        def launch(self, **kwargs):
            built["auth"] = kwargs["auth"]

    def fake_build_app(workspace, **kwargs):
        built.update(kwargs)
        return _App()

    monkeypatch.delenv(AUTH_ENV_VAR, raising=False)
    monkeypatch.setattr(app_module, "build_app", fake_build_app)
    launch(workspace, auth=auth, all_subjects=operator)
    assert built["logins"] is logins and built["operator_sees_all"] is operator
    assert (built["auth"].credentials if auth else built["auth"]) == ([("ana", "pw")] if auth else None)
