"""A real PostgreSQL server for the PostgreSQL journal's tests.

``IMUZEKIT_TEST_POSTGRES_URL`` (set by ``.ci/run``) names a server to use. Without it, the
session starts its own: ``initdb`` into a temporary directory (as the ``postgres`` user when
the tests run as root, through ``runuser``), ``pg_ctl start`` on 127.0.0.1 on a free port with
password logins over TCP, stopped at the end. Binaries come from ``pg_config --bindir`` or
``/usr/lib/postgresql/*/bin``. With no binaries the tests skip, naming why; with ``CI=true``
they fail instead (CI must test the shared journal).

Each test gets its own PostgreSQL schema (:func:`pg_schema`), dropped afterwards.
"""

from __future__ import annotations

import glob
import os
import pathlib
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.conftest import on_ci

URL_ENV = "IMUZEKIT_TEST_POSTGRES_URL"
PASSWORD = "pg-test-" + "5ecret"  # the started server's password (never a real one)


def _bindir() -> pathlib.Path | None:
    """Where initdb and pg_ctl are, or None."""
    candidates: list[pathlib.Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if found.returncode == 0:
            candidates.append(pathlib.Path(found.stdout.strip()))
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(
        (pathlib.Path(p) for p in versions), key=lambda p: int(p.parent.name), reverse=True
    )
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


def _unavailable(reason: str) -> None:
    if on_ci():
        pytest.fail(f"{reason}; with CI=true the PostgreSQL tests fail instead", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Server:
    """A throwaway PostgreSQL cluster in a temporary directory."""

    def __init__(self, bindir: pathlib.Path) -> None:
        self.bindir = bindir
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="imuzekit-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            if runuser is None:
                raise RuntimeError("running as root without runuser to become postgres")
            import pwd

            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and there is no postgres user") from None
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self.prefix = [runuser, "-u", "postgres", "--"]
        (self.root / "pw").write_text(PASSWORD + "\n")
        if self.prefix:
            os.chown(self.root / "pw", user.pw_uid, user.pw_gid)

    def _run(self, *argv: str) -> None:
        done = subprocess.run([*self.prefix, *argv], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {done.stdout}{done.stderr}")

    def start(self) -> str:
        self._run(
            str(self.bindir / "initdb"),
            "-D", str(self.data),
            "-U", "postgres",
            "--pwfile", str(self.root / "pw"),
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.root}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=200"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D", str(self.data),
            "-l", str(self.root / "log"),
            "-o", options,
            "-w", "-t", "60",
            "start",
        )  # fmt: skip
        return f"postgresql://postgres:{PASSWORD}@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """The URL of a live PostgreSQL server (given, or started for this session)."""
    pytest.importorskip(
        "psycopg", reason="psycopg is not installed (pip install imuzekit[postgres])"
    )
    given = os.environ.get(URL_ENV, "").strip()
    if given:
        yield given
        return
    bindir = _bindir()
    if bindir is None:
        _unavailable(
            "no PostgreSQL binaries (initdb, pg_ctl) found via pg_config or in "
            f"/usr/lib/postgresql/*/bin, and {URL_ENV} is not set"
        )
    assert bindir is not None
    try:
        server = _Server(bindir)
        url = server.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        _unavailable(f"could not start a PostgreSQL server: {exc}")
        raise
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
async def pg_schema(pg_url: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL schema name for one test's journal, dropped afterwards."""
    import psycopg

    schema = "t_" + secrets.token_hex(6)
    yield schema
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
