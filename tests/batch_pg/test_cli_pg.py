"""``imuzekit batch run/status --journal postgresql://...``: the CLI on a real PostgreSQL server
(each test in a database of its own: the CLI's journal lives in the default schema), run to
completion against the emulator, and its status read back through the same URL."""

from __future__ import annotations

import pathlib
import secrets
from collections.abc import Iterator

import pytest

from tests.cli import conftest as cli
from tests.cli.conftest import batch_run_argv, invoke, json_lines, manifest_file, song_line

# The CLI tests' emulator (on its own thread) and environment.
clean_env = cli.clean_env
emu_thread = cli.emu_thread
emu_env = cli.emu_env


@pytest.fixture
def pg_database(pg_url: str) -> Iterator[str]:
    """The URL of a fresh database (with a query parameter, kept as given), dropped after."""
    import psycopg

    name = "cli_" + secrets.token_hex(6)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    base = pg_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}?application_name=imuzekit-cli-test"
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_batch_run_and_status_on_a_postgresql_journal(
    emu_env: dict[str, str],
    emu_thread: cli.EmulatorThread,
    pg_database: str,
    tmp_path: pathlib.Path,
) -> None:
    manifest = manifest_file(tmp_path / "m.jsonl", [song_line(f"s{n}") for n in range(3)])
    out = tmp_path / "out"
    argv = [*batch_run_argv(manifest, out), "--journal", pg_database]
    result = invoke([*argv, "--json"])
    assert result.exit_code == 0, result.output
    records = json_lines(result.stdout)
    assert {r["key"]: r["state"] for r in records} == dict.fromkeys(
        ("s0", "s1", "s2"), "downloaded"
    )
    assert sorted(p.name for p in out.iterdir()) == ["s0.mp3", "s1.mp3", "s2.mp3"]
    assert not (out / "imuzekit-batch.sqlite").exists()  # the URL was not taken for a path

    status = invoke(["batch", "status", "--journal", pg_database, "--json"])
    assert status.exit_code == 0, status.output
    (summary,) = json_lines(status.stdout)
    assert summary["total"] == 3 and summary["counts"]["downloaded"] == 3
    assert summary["journal"].startswith("postgresql://postgres:***@127.0.0.1:")
    assert "5ecret" not in status.stdout

    table = invoke(["batch", "status", "--journal", pg_database])
    assert table.exit_code == 0, table.output
    assert "downloaded │ 3" in table.stdout and "total      │ 3" in table.stdout
    assert "5ecret" not in table.stdout

    again = invoke(argv)  # a second worker, or a rerun: nothing left to send
    assert again.exit_code == 0, again.output
    assert "downloaded │ 3" in again.stdout
    assert emu_thread.call(lambda: emu_thread.emu.imuze.songs_created) == 3  # one per line
