"""Fixtures of the erasure tests: a whole tiny run of a subject, a search for its bytes, and a team server.

The team server is real: PostgreSQL (``initdb`` + ``pg_ctl`` in a temporary folder, as an unprivileged user
because PostgreSQL refuses to run as root) behind ``mlflow server`` with a proxied artifact store.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin")
PG_USER = "wb-postgres"


# -- team mode: PostgreSQL + mlflow server ---------------------------------------------------------------------
def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    return next((Path(d) for d in PG_BIN_DIRS if (Path(d) / "initdb").is_file()), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as an unprivileged user (created if missing)."""
    if os.geteuid() != 0:
        return command
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", PG_USER], check=True)
    return ["runuser", "-u", PG_USER, "--", *command]


def _wait(url_or_port, deadline: float, process: subprocess.Popen | None = None) -> None:
    import urllib.request

    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url_or_port, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url_or_port} did not answer")


@dataclass
class TeamServer:
    tracking_uri: str
    backend_store_uri: str
    artifacts: Path
    database_dir: Path


@pytest.fixture(scope="module")
def team_server(tmp_path_factory: pytest.TempPathFactory):
    """A real ``mlflow server`` on PostgreSQL with a proxied artifact store, shared by a module's tests (their
    subjects differ), torn down afterwards."""
    tmp_path = tmp_path_factory.mktemp("team")
    pg_bin = _pg_bin()
    if pg_bin is None:
        pytest.skip("team mode needs PostgreSQL's initdb and pg_ctl (Debian: apt-get install postgresql-15)")
    # Outside the test's 0700 folder, so that the unprivileged PostgreSQL user can write it.
    base = Path(tempfile.mkdtemp(prefix="wb-pg-"))
    data, sockets = base / "data", base / "sock"
    sockets.mkdir()
    if os.geteuid() == 0:
        _as_postgres_user(["true"])  # creates the user
        shutil.chown(base, PG_USER)
        shutil.chown(sockets, PG_USER)
    port = _free_port()
    env = {**os.environ, "PATH": f"{pg_bin}:{os.environ.get('PATH', '')}"}
    run = {"check": True, "env": env, "capture_output": True, "text": True}
    subprocess.run(_as_postgres_user([str(pg_bin / "initdb"), "-D", str(data), "-U", "workbench", "--auth=trust",
                                      "--no-sync"]), **run)  # fmt: skip
    subprocess.run(_as_postgres_user([
        str(pg_bin / "pg_ctl"), "-D", str(data), "-l", str(base / "postgres.log"), "-w",
        "-o", f"-p {port} -k {sockets} -h 127.0.0.1 -F", "start",
    ]), **run)  # fmt: skip
    server = None
    try:
        subprocess.run([str(pg_bin / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "workbench",
                        "mlflow"], **run)  # fmt: skip
        backend = f"postgresql+psycopg://workbench@127.0.0.1:{port}/mlflow"
        artifacts = tmp_path / "team-artifacts"
        http_port = _free_port()
        log = open(tmp_path / "mlflow-server.log", "w")  # noqa: SIM115 - closed in the finally below
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend,
             "--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", str(http_port),
             "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
        )  # fmt: skip
        _wait(f"http://127.0.0.1:{http_port}/health", time.monotonic() + 120, server)
        yield TeamServer(f"http://127.0.0.1:{http_port}", backend, artifacts, data)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
        subprocess.run(_as_postgres_user([str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       env=env, capture_output=True)  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)
