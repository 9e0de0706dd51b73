"""Starting the app safely: loopback by default, and no public address or share link without a login.

The workspace holds people's faces (biometric data), so the guard refuses, before anything binds, to serve it
beyond this machine unless authentication is configured: ``--auth user:password``, ``$WORKBENCH_UI_AUTH``, or
an auth file (one ``user:password`` per line) given as ``--auth @/path/to/file``. Logins are throttled
(:class:`AuthCheck`): repeated failures lock a username out, and a burst of failures across usernames locks
every login out for a while.
"""

from __future__ import annotations

import collections
import hmac
import ipaddress
import os
import threading
import time
from collections.abc import Callable
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


class AuthCheck:
    """The login check gradio calls (``auth=``), throttled against password guessing.

    * Per username: after ``free_failures`` failed attempts in a row, the user is locked out for
      ``lockout_s``, doubled after each further failure up to ``max_lockout_s``; while locked out even the
      right password is refused (a guesser learns nothing). A success resets the count.
    * Globally (guessing across many usernames): more than ``global_failures`` failures within ``window_s``
      lock every login out for ``lockout_s``.
    * Every failure is answered after a short delay, growing with the failures (at most ``max_delay_s``).

    Passwords are compared in constant time. The clock and the sleep are injectable for tests.
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        free_failures: int = 5,
        lockout_s: float = 30.0,
        max_lockout_s: float = 900.0,
        global_failures: int = 50,
        window_s: float = 60.0,
        delay_s: float = 0.25,
        max_delay_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.credentials = list(credentials)
        self._passwords = {user: password.encode() for user, password in self.credentials}
        self.free_failures, self.lockout_s, self.max_lockout_s = free_failures, lockout_s, max_lockout_s
        self.global_failures, self.window_s = global_failures, window_s
        self.delay_s, self.max_delay_s = delay_s, max_delay_s
        self.clock, self.sleep = clock, sleep
        self._lock = threading.Lock()
        self._failures: dict[str, tuple[int, float]] = {}  # user -> (failures in a row, locked until)
        self._recent: collections.deque[float] = collections.deque()  # times of recent failures, all users
        self._global_until = 0.0

    def locked_for(self, username: str) -> float:
        """Seconds until ``username`` may try again (0 when it may try now)."""
        now = self.clock()
        with self._lock:
            until = max(self._failures.get(username, (0, 0.0))[1], self._global_until)
        return max(0.0, until - now)

    def __call__(self, username: str, password: str) -> bool:
        now = self.clock()
        with self._lock:
            failures, until = self._failures.get(username, (0, 0.0))
            locked = now < until or now < self._global_until
        expected = self._passwords.get(username)
        # Compare even when locked out or unknown, so the answer's timing says nothing about either.
        ok = hmac.compare_digest(password.encode(), expected if expected is not None else b"\0" * 32)
        ok = ok and expected is not None and not locked
        if ok:
            with self._lock:
                self._failures.pop(username, None)
            return True
        with self._lock:
            failures += 1
            if failures >= self.free_failures:
                wait = min(self.lockout_s * 2 ** (failures - self.free_failures), self.max_lockout_s)
                until = max(until, now + wait)
            if len(self._failures) > 10_000:  # guessing random usernames must not grow memory without bound
                self._failures.clear()
            self._failures[username] = (failures, until)
            self._recent.append(now)
            while self._recent and self._recent[0] < now - self.window_s:
                self._recent.popleft()
            if len(self._recent) > self.global_failures:
                self._global_until = max(self._global_until, now + self.lockout_s)
        self.sleep(min(self.delay_s * failures, self.max_delay_s))
        return False


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
    if not 0 < port < 65536:
        raise WorkbenchError(f"Port {port} is not a TCP port: use 1-65535 (default {DEFAULT_PORT}).")
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
        auth=AuthCheck(credentials) if credentials else None,
        **{**launch_options(workspace), **launch_kwargs},
    )
