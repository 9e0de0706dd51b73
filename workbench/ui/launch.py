"""Starting the app safely: loopback by default, and no public address or share link without a login.

The workspace holds people's faces (biometric data), so the guard refuses, before anything binds, to serve it
beyond this machine unless authentication is configured: ``--auth user:password``, ``$WORKBENCH_UI_AUTH``, or
an auth file (one ``user:password`` per line) given as ``--auth @/path/to/file``.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.workspace import Workspace

AUTH_ENV_VAR = "WORKBENCH_UI_AUTH"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
_LOOPBACK_NAMES = {"localhost", "ip6-localhost", "ip6-loopback"}

Credentials = list[tuple[str, str]]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; every other address (0.0.0.0 included) is reachable from outside."""
    host = host.strip().strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to a public interface


def parse_auth(value: str | None) -> Credentials | None:
    """``user:password``, several comma-separated, or ``@FILE`` with one ``user:password`` per line."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        if not path.is_file():
            raise WorkbenchError(
                f"Auth file {path} does not exist: write one 'user:password' per line in it."
            )
        entries = [line.strip() for line in path.read_text().splitlines()]
        entries = [e for e in entries if e and not e.startswith("#")]
        source = f"auth file {path}"
    else:
        entries = [e.strip() for e in value.split(",") if e.strip()]
        source = "--auth"
    credentials: Credentials = []
    for entry in entries:
        user, sep, password = entry.partition(":")
        if not sep or not user or not password:
            raise WorkbenchError(
                f"The {source} entry {entry.split(':')[0]!r}... is not 'user:password' (both parts non-empty)."
            )
        credentials.append((user, password))
    if not credentials:
        raise WorkbenchError(f"The {source} lists no 'user:password' entry.")
    return credentials


def resolve_auth(auth: str | None = None, environ: dict[str, str] | None = None) -> Credentials | None:
    """The ``--auth`` value wins, then ``$WORKBENCH_UI_AUTH``; None when neither is set."""
    environ = os.environ if environ is None else environ
    return parse_auth(auth if auth else environ.get(AUTH_ENV_VAR))


def check_bind(host: str, share: bool, credentials: Credentials | None) -> None:
    """Refuse to serve beyond this machine without a login; loopback without auth is fine."""
    if credentials:
        return
    if share:
        raise WorkbenchError(
            "Refusing to create a public share link without authentication: the workspace holds people's "
            f"face photos. Set a login with --auth user:password (or ${AUTH_ENV_VAR}, or --auth @FILE), "
            "or drop --share."
        )
    if not is_loopback(host):
        raise WorkbenchError(
            f"Refusing to listen on {host} without authentication: anyone who can reach this machine would see "
            f"the face photos in the workspace. Set a login with --auth user:password (or ${AUTH_ENV_VAR}, or "
            f"--auth @FILE), or bind {DEFAULT_HOST} (the default) and use an SSH tunnel."
        )


def launch(
    workspace: Workspace,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    share: bool = False,
    auth: str | None = None,
    all_subjects: bool = False,
    **launch_kwargs: Any,
) -> Any:
    """Check the bind, build the app and serve it (blocks unless ``prevent_thread_lock=True`` is passed)."""
    credentials = resolve_auth(auth)
    check_bind(host, share, credentials)  # before gradio is even imported
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from workbench.ui.app import build_app, launch_options

    # With a login, each person sees their own subjects; on loopback without one, the researcher sees them all.
    app = build_app(workspace, logins=bool(credentials), operator_sees_all=all_subjects)
    return app.launch(
        server_name=host,
        server_port=port,
        share=share,
        auth=credentials,
        **{**launch_options(workspace), **launch_kwargs},
    )
