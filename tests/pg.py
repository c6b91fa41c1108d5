"""A throwaway PostgreSQL server for tests, run from Debian's binaries.

Import the fixture into a test module (``from tests.pg import postgres_url``)
and mark the tests that use it ``@pytest.mark.postgres``. Without the
binaries the tests are skipped, unless the ``CI`` environment variable is set:
CI installs PostgreSQL, so there they fail.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_USER = "aeviz"
PG_DATABASE = "aeviz_test"
_SERVER_USER = "postgres"  # postgres refuses to run as root


def find_pg_bindir() -> Path | None:
    """The newest folder holding ``initdb`` and ``pg_ctl``, or ``None``."""
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
        reverse=True,
    )
    on_path = shutil.which("pg_ctl")
    candidates = debian + ([Path(on_path).parent] if on_path else [])
    return next(
        (d for d in candidates if (d / "initdb").exists() and (d / "pg_ctl").exists()), None
    )


def create_database(url: str, name: str) -> str:
    """Create database ``name`` on the server behind ``url`` and return its URL."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a fresh database on a private PostgreSQL server.

    The server listens on 127.0.0.1 at a free port, with its socket and data
    in a temporary folder, trusts local connections from user ``aeviz``, and
    is stopped when the session ends.
    """
    bindir = find_pg_bindir()
    if bindir is None:
        _unavailable(
            "PostgreSQL server binaries (initdb, pg_ctl) not found under "
            "/usr/lib/postgresql/*/bin or on PATH"
        )
    as_server_user: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None or not _user_exists(_SERVER_USER):
            _unavailable(
                f"tests run as root, and PostgreSQL needs runuser and a {_SERVER_USER!r} user"
            )
        as_server_user = ["runuser", "-u", _SERVER_USER, "--"]
    root = Path(tempfile.mkdtemp(prefix="aeviz-pg-"))
    data, log = root / "data", root / "server.log"
    try:
        if as_server_user:
            shutil.chown(root, _SERVER_USER, _SERVER_USER)
        _run(
            as_server_user
            + [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                PG_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
            log,
        )
        port = _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} "
            f"-c unix_socket_directories={root} -c fsync=off"
        )
        _run(
            as_server_user
            + [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            log,
        )
        try:
            yield create_database(
                f"postgresql+psycopg2://{PG_USER}@127.0.0.1:{port}/postgres", PG_DATABASE
            )
        finally:
            subprocess.run(
                as_server_user
                + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                capture_output=True,
                check=False,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so PostgreSQL must be installed", pytrace=False)
    pytest.skip(reason)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(command: list[str], log: Path) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        server_log = log.read_text() if log.exists() else ""
        raise RuntimeError(
            f"{' '.join(command)} exited with {result.returncode}:\n"
            f"{result.stdout}{result.stderr}{server_log}"
        )
