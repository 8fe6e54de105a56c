"""Fixtures for the CLI tests: an emulator serving from a background thread, a clean env.

The CLI runs its own event loop (``asyncio.run``) in-process under CliRunner, or in a child
process: the emulator therefore lives in a thread with its own loop, outliving every command.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pathlib
import shlex
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner, Result

from imuzekit.cli import cli
from imuzekit.emulator import Emulator
from tests._titles import spelled_title

T = TypeVar("T")

FAST_POLL_ENV = {"IMUZEKIT_POLL_INITIAL": "0.05", "IMUZEKIT_POLL_MAX_INTERVAL": "0.2"}


class EmulatorThread:
    """An Emulator running on its own event loop in a daemon thread."""

    def __init__(self, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.emu: Emulator = self.call(lambda: Emulator(**kwargs))
        self.run(self.emu.start())

    def run(self, coro: Any, timeout: float = 30) -> Any:
        """Run a coroutine on the emulator's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def call(self, func: Callable[[], T], timeout: float = 30) -> T:
        """Call ``func`` on the emulator's loop thread (its state is not thread-safe)."""

        async def wrapper() -> T:
            return func()

        result: T = self.run(wrapper(), timeout)
        return result

    def close(self) -> None:
        """Stop the server and the loop."""
        self.run(self.emu.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def env(self) -> dict[str, str]:
        """IMUZEKIT_* variables pointing the CLI at this emulator (plus a fast poll)."""

        def read() -> dict[str, str]:
            urls, creds = self.emu.urls, self.emu.credentials
            musescore = creds["musescore"].extra
            return {
                "IMUZEKIT_IMUZE_BASE_URL": urls["imuze"],
                "IMUZEKIT_IMUZE_EMAIL": creds["imuze"].email or "",
                "IMUZEKIT_IMUZE_PASSWORD": creds["imuze"].password or "",
                "IMUZEKIT_JOPLIN_BASE_URL": urls["joplin"],
                "IMUZEKIT_JOPLIN_EMAIL": creds["joplin"].email or "",
                "IMUZEKIT_JOPLIN_PASSWORD": creds["joplin"].password or "",
                "IMUZEKIT_MUREKA_BASE_URL": urls["mureka"],
                "IMUZEKIT_MUREKA_TOKEN": creds["mureka"].token or "",
                "IMUZEKIT_MUREKA_ACCOUNTS": creds["mureka"].extra["accounts"],
                "IMUZEKIT_MUSESCORE_BASE_URL": urls["musescore"],
                "IMUZEKIT_MUSESCORE_OAUTH_URL": urls["musescore_oauth"],
                "IMUZEKIT_MUSESCORE_AUTHORIZE_URL": urls["musescore_authorize"],
                "IMUZEKIT_MUSESCORE_STATIC_URL": urls["musescore_static"],
                "IMUZEKIT_MUSESCORE_OEMBED_URL": urls["musescore_oembed"],
                "IMUZEKIT_MUSESCORE_CONSUMER_KEY": musescore["consumer_key"],
                "IMUZEKIT_MUSESCORE_CONSUMER_SECRET": musescore["consumer_secret"],
                "IMUZEKIT_MUSESCORE_TOKEN": musescore["token"],
                "IMUZEKIT_MUSESCORE_TOKEN_SECRET": musescore["token_secret"],
                **FAST_POLL_ENV,
            }

        return self.call(read)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> pathlib.Path:
    """No IMUZEKIT_* from the outside; XDG_CONFIG_HOME in tmp_path (returned)."""
    for name in list(os.environ):
        if name.startswith("IMUZEKIT_"):
            monkeypatch.delenv(name)
    config_home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    monkeypatch.setenv("COLUMNS", "160")
    return config_home


@pytest.fixture
def emu_thread(clean_env: pathlib.Path) -> Iterator[EmulatorThread]:
    server = EmulatorThread(render_seconds=(0.1, 0.4))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def emu_env(emu_thread: EmulatorThread, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The emulator's variables, set in os.environ for in-process commands."""
    env = emu_thread.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def invoke(args: Sequence[str] | str, *, input: str | None = None) -> Result:
    """Run the CLI in-process (stdout and stderr kept apart); a string is split like a shell."""
    argv = shlex.split(args) if isinstance(args, str) else list(args)
    return CliRunner().invoke(cli, argv, input=input, catch_exceptions=False)


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every stdout line parsed as a JSON object (fails on anything else)."""
    objects = []
    for line in text.splitlines():
        value = json.loads(line)
        assert isinstance(value, dict), line
        objects.append(value)
    return objects


def cli_command(*args: str) -> list[str]:
    """The argv of a CLI child process."""
    return [sys.executable, "-m", "imuzekit.cli", *args]


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """os.environ (already cleaned by the fixtures) plus ``extra``, for a child process."""
    return {**os.environ, **extra}


def journal_counts(path: pathlib.Path) -> dict[str, int]:
    """Lines per state, read straight from the journal (another process may be writing)."""
    if not path.exists():
        return {}
    db = sqlite3.connect(path, timeout=5)
    try:
        return dict(db.execute("SELECT state, COUNT(*) FROM lines GROUP BY state").fetchall())
    except sqlite3.OperationalError:  # the schema is not created yet
        return {}
    finally:
        db.close()


def journal_rows(path: pathlib.Path, query: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of ``query`` on the journal."""
    db = sqlite3.connect(path, timeout=5)
    try:
        return db.execute(query, tuple(args)).fetchall()
    finally:
        db.close()


# -- batch manifests and commands ---------------------------------------------------------


def manifest_file(path: pathlib.Path, lines: Sequence[Mapping[str, Any]]) -> pathlib.Path:
    """Write ``lines`` as a JSON-lines manifest at ``path``; return ``path``."""
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def song_line(key: str, length: int = 3, **extra: Any) -> dict[str, Any]:
    """An iMuze manifest line."""
    return {
        "provider": "imuze",
        "key": key,
        "title": spelled_title(key),
        "arrangement_id": 1,
        "tags": ["batch"],
        "desired_length": length,
        **extra,
    }


def music_line(key: str, duration_ms: int) -> dict[str, Any]:
    """A joplin manifest line."""
    return {
        "provider": "joplin",
        "key": key,
        "genre": "electronic",
        "subgenre": "house",
        "duration_ms": duration_ms,
        "structure": "calm:0.5,dynamic:0.5",
    }


def tune_line(key: str, kind: str = "create_advanced") -> dict[str, Any]:
    """A Mureka manifest line of ``kind``."""
    if kind == "create_advanced":
        return {"provider": "mureka", "key": key, "kind": kind, "lyrics": "la la", "title": key}
    if kind == "create_instrumental":
        return {"provider": "mureka", "key": key, "kind": kind, "prompt": "piano"}
    return {"provider": "mureka", "key": key, "prompt": "a song about tea"}


def batch_run_argv(
    manifest: pathlib.Path, out: pathlib.Path, journal: pathlib.Path | None = None, *extra: str
) -> list[str]:
    """``batch run MANIFEST --out OUT [--journal JOURNAL] EXTRA...`` (for `invoke` or, through
    `cli_command`, a child process)."""
    argv = ["batch", "run", str(manifest), "--out", str(out)]
    if journal is not None:
        argv += ["--journal", str(journal)]
    return [*argv, *extra]


def check_files(server: EmulatorThread, journal: pathlib.Path) -> int:
    """Every file on disk matches the journal and the emulator's bytes; return the count."""
    db = sqlite3.connect(journal)
    rows = db.execute(
        "SELECT l.provider, f.remote_id, f.path, f.size, f.sha256 FROM files f"
        " JOIN lines l ON l.key = f.key"
    ).fetchall()
    db.close()
    emu = server.emu
    for provider, remote_id, path, size, digest in rows:
        data = pathlib.Path(path).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (size, digest), path
        if provider == "imuze":
            expected = server.call(lambda r=remote_id: emu.imuze.audio_sha256(int(r)))
        elif provider == "joplin":
            expected = server.call(lambda r=remote_id: emu.joplin.audio_sha256(r))
        else:
            expected = server.call(lambda r=remote_id: emu.mureka.audio_sha256(r))
        assert digest == expected, (provider, remote_id)
    return len(rows)
