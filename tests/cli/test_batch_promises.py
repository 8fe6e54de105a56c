"""Issue 14's batch promises: a create in flight at a crash is never sent twice, a batch only
adopts files it wrote, and the journal refuses a second sender however it is reached.

The kill -9 tests drive the CLI in child processes against an emulator (a background thread of
this process, so it outlives every kill) whose create endpoint holds each request 3 s before
it acts: the creation lands well after the request left, as with a slow provider.
"""

from __future__ import annotations

import os
import pathlib
import signal
import sqlite3
import subprocess
import sys
import time
from typing import Any

import pytest

from imuzekit.cli.batch._journal import Journal, JournalError, RunLock, TransitionError
from imuzekit.cli.batch._manifest import ManifestError, load_manifest
from tests.cli.conftest import (
    EmulatorThread,
    child_env,
    cli_command,
    invoke,
    journal_rows,
    json_lines,
)
from tests.cli.test_batch import _manifest, _song, _tune, check_files

CREATE_DELAY = 3.0  # seconds the emulator holds a create before it acts
CREATE_TIMEOUT = "2"  # each request's bound here: a 4 s landing window

_CREATES = {
    "imuze": ("POST /songs", lambda emu: emu.imuze.songs_created),
    "mureka": ("POST /music/create-advanced", lambda emu: emu.mureka.creations),
}


def _line(provider: str) -> dict[str, Any]:
    return _song("slow") if provider == "imuze" else _tune("slow")


@pytest.mark.parametrize("provider", ["imuze", "mureka"])
def test_a_create_in_flight_at_sigkill_is_never_sent_twice(
    provider: str, emu_thread: EmulatorThread, emu_env: dict[str, str], tmp_path: pathlib.Path
) -> None:
    emu = emu_thread.emu
    pattern, created = _CREATES[provider]
    fault = emu_thread.call(
        lambda: emu.faults.add(provider, pattern, delay=CREATE_DELAY, read_first=True)
    )
    manifest = _manifest(tmp_path / "m.jsonl", [_line(provider)])
    out, journal = tmp_path / "out", tmp_path / "journal.sqlite"
    command = cli_command(
        "batch",
        "run",
        str(manifest),
        "--out",
        str(out),
        "--journal",
        str(journal),
        "--create-timeout",
        CREATE_TIMEOUT,
    )
    env = child_env(emu_thread.env())
    with subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    ) as child:
        deadline = time.monotonic() + 20
        # The fault counts a hit when the request reaches the server, before its delay.
        while emu_thread.call(lambda: fault.hits) < 1:
            assert child.poll() is None, child.stderr.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the create never reached the emulator"
            time.sleep(0.005)
        arrived = time.monotonic()
        time.sleep(0.1)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    assert child.returncode == -signal.SIGKILL
    assert emu_thread.call(lambda: created(emu)) == 0  # the create has not landed yet
    assert journal_rows(journal, "SELECT state FROM lines") == [("submitting",)]

    resumed = subprocess.run(command, env=env, capture_output=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr.decode()
    # Once the first create has certainly landed, there is exactly one generation for the line.
    time.sleep(max(0.0, arrived + CREATE_DELAY + 0.3 - time.monotonic()))
    assert emu_thread.call(lambda: created(emu)) == 1
    assert emu_thread.call(lambda: emu.count(provider, "POST", pattern.split()[1])) == 1
    assert journal_rows(journal, "SELECT state, attempts FROM lines") == [("downloaded", 1)]
    assert check_files(emu_thread, journal) == (1 if provider == "imuze" else 2)


def test_a_create_sent_late_by_its_sender_is_still_waited_for(
    emu_thread: EmulatorThread, emu_env: dict[str, str], tmp_path: pathlib.Path
) -> None:
    # The first create is refused with a 429 asking for 3 s; the second leaves 3 s after the
    # line was committed (as a Mureka create leaves after waiting for a free slot) and takes
    # 3 s to land. The sender's heartbeat keeps settle_by a window ahead until it dies.
    emu = emu_thread.emu
    emu_thread.call(lambda: emu.faults.add("imuze", "POST /songs", status=429, retry_after=3))
    late = emu_thread.call(
        lambda: emu.faults.add("imuze", "POST /songs", delay=CREATE_DELAY, read_first=True)
    )
    manifest = _manifest(tmp_path / "m.jsonl", [_song("late")])
    out, journal = tmp_path / "out", tmp_path / "journal.sqlite"
    command = cli_command(
        "batch", "run", str(manifest), "--out", str(out), "--journal", str(journal),
        "--create-timeout", CREATE_TIMEOUT,
    )  # fmt: skip
    env = child_env(emu_thread.env())
    with subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL) as child:
        deadline = time.monotonic() + 20
        while emu_thread.call(lambda: late.hits) < 1:
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
        arrived = time.monotonic()
        time.sleep(0.1)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    resumed = subprocess.run(command, env=env, capture_output=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr.decode()
    time.sleep(max(0.0, arrived + CREATE_DELAY + 0.3 - time.monotonic()))
    assert emu_thread.call(lambda: emu.imuze.songs_created) == 1
    assert journal_rows(journal, "SELECT state, attempts FROM lines") == [("downloaded", 1)]


def test_a_line_whose_create_could_land_much_later_is_left_uncertain(
    emu_env: dict[str, str], emu_thread: EmulatorThread, tmp_path: pathlib.Path
) -> None:
    manifest = _manifest(tmp_path / "m.jsonl", [_song("later")])
    out = tmp_path / "out"
    with Journal(out / "imuzekit-batch.sqlite") as journal:
        journal.sync(load_manifest(manifest))
        # An earlier run with a far longer create timeout (or a clock set back since).
        journal.transition("later", "submitting", count_attempt=True, settle_by=time.time() + 600)
    result = invoke(["batch", "run", str(manifest), "--out", str(out), "--create-timeout", "1"])
    assert result.exit_code == 1, result.output
    assert "uncertain: not found yet, and the create could still land until" in result.stdout
    assert emu_thread.call(lambda: emu_thread.emu.imuze.songs_created) == 0


# -- 4: a batch only adopts a file it wrote ---------------------------------------------------


def test_a_fresh_journal_never_adopts_the_files_of_an_earlier_batch(
    emu_env: dict[str, str], emu_thread: EmulatorThread, tmp_path: pathlib.Path
) -> None:
    manifest = _manifest(tmp_path / "m.jsonl", [_song("song"), _tune("tune")])
    out = tmp_path / "out"
    first, second = tmp_path / "first.sqlite", tmp_path / "second.sqlite"
    run = ["batch", "run", str(manifest), "--out", str(out), "--journal"]
    assert invoke([*run, str(first)]).exit_code == 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    assert sorted(before) == ["song.mp3", "tune-1.mp3", "tune-2.mp3"]

    again = invoke([*run, str(second), "--json"])
    assert again.exit_code == 0, again.output
    emu = emu_thread.emu
    assert emu_thread.call(lambda: (emu.imuze.songs_created, emu.mureka.creations)) == (2, 2)
    # The new, paid songs are saved under fresh names; the earlier batch's files are untouched.
    assert check_files(emu_thread, second) == 3
    paths = {f["path"] for line in json_lines(again.stdout) for f in line["files"]}
    assert {pathlib.Path(p).name for p in paths} == {"song.2.mp3", "tune-1.2.mp3", "tune-2.2.mp3"}
    assert {name: (out / name).read_bytes() for name in before} == before
    assert check_files(emu_thread, first) == 3


def test_a_resumed_download_adopts_only_its_own_unchanged_file(
    emu_env: dict[str, str], emu_thread: EmulatorThread, tmp_path: pathlib.Path
) -> None:
    manifest = _manifest(tmp_path / "m.jsonl", [_song("song")])
    out = tmp_path / "out"
    journal = out / "imuzekit-batch.sqlite"
    run = ["batch", "run", str(manifest), "--out", str(out)]
    assert invoke(run).exit_code == 0
    emu = emu_thread.emu

    def downloads() -> int:
        return emu_thread.call(lambda: emu.count("imuze", "GET", "/files/*"))

    def stage_ready() -> None:
        # As if the run died after writing (and recording) the file, before `downloaded`.
        db = sqlite3.connect(journal)
        with db:
            db.execute("UPDATE lines SET state = 'ready' WHERE key = 'song'")
        db.close()

    fetched = downloads()
    stage_ready()
    assert invoke(run).exit_code == 0
    assert downloads() == fetched  # recorded, same size and SHA-256: adopted, not fetched
    assert journal_rows(journal, "SELECT path FROM files") == [(str(out / "song.mp3"),)]

    (out / "song.mp3").write_bytes(b"someone else's bytes")
    stage_ready()
    assert invoke(run).exit_code == 0
    assert downloads() == fetched + 1  # changed since recorded: fetched again, to a fresh name
    assert (out / "song.mp3").read_bytes() == b"someone else's bytes"
    assert journal_rows(journal, "SELECT path FROM files") == [(str(out / "song.2.mp3"),)]
    assert check_files(emu_thread, journal) == 1


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (_tune("tune"), _song("tune-1")),
        (_song("TUNE-2"), _tune("tune")),
        (_tune("a", "create"), _tune("A", "create_instrumental")),
    ],
)
def test_manifest_refuses_keys_whose_files_would_collide(
    first: dict[str, Any], second: dict[str, Any], tmp_path: pathlib.Path
) -> None:
    manifest = _manifest(tmp_path / "m.jsonl", [first, second])
    with pytest.raises(ManifestError, match="would name the same file"):
        load_manifest(manifest)


def test_manifest_accepts_keys_whose_files_differ(tmp_path: pathlib.Path) -> None:
    lines = [_tune("tune"), _song("tune-3"), _song("tune-1-1"), _tune("tune-1b")]
    assert len(load_manifest(_manifest(tmp_path / "m.jsonl", lines))) == 4


# -- 9: the journal's lock and its one sender per line ----------------------------------------


def test_the_run_lock_holds_however_the_journal_is_reached(
    emu_env: dict[str, str], tmp_path: pathlib.Path
) -> None:
    manifest = _manifest(tmp_path / "m.jsonl", [_song("s1")])
    real = tmp_path / "journals" / "batch.sqlite"
    real.parent.mkdir()
    link = tmp_path / "link.sqlite"
    link.symlink_to(real)
    dir_link = tmp_path / "alias"
    dir_link.symlink_to(real.parent, target_is_directory=True)
    spellings = [link, dir_link / "batch.sqlite", tmp_path / "journals" / ".." / "link.sqlite"]
    with RunLock(real):
        for spelling in spellings:
            with pytest.raises(JournalError, match="another `imuzekit batch`"):
                RunLock(spelling).__enter__()
        run = ["batch", "run", str(manifest), "--out", str(tmp_path / "out"), "--journal"]
        result = invoke([*run, str(link)])
        assert result.exit_code == 2 and "another `imuzekit batch`" in result.stderr
        # Another process, reaching the journal through the symlink, is refused too.
        probe = (
            "import pathlib, sys\n"
            "from imuzekit.cli.batch._journal import JournalError, RunLock\n"
            "try:\n"
            "    RunLock(pathlib.Path(sys.argv[1])).__enter__()\n"
            "except JournalError:\n"
            "    sys.exit(3)\n"
        )
        child = subprocess.run([sys.executable, "-c", probe, str(link)], timeout=30)
        assert child.returncode == 3
    assert not real.exists()  # nothing ran
    assert invoke([*run, str(link)]).exit_code == 0
    assert real.is_file() and link.is_symlink()
    assert not (tmp_path / "link.sqlite-wal").exists()  # one database, by its real name


def test_a_second_sender_of_a_line_is_refused_by_the_journal(tmp_path: pathlib.Path) -> None:
    manifest = load_manifest(_manifest(tmp_path / "m.jsonl", [_song("s1")]))
    path = tmp_path / "j.sqlite"
    with Journal(path) as first, Journal(tmp_path / "." / "j.sqlite") as second:
        first.sync(manifest)
        second.sync(manifest)
        first.transition("s1", "submitting", count_attempt=True, settle_by=time.time() + 5)
        with pytest.raises(TransitionError) as refused:
            second.transition("s1", "submitting", count_attempt=True, settle_by=time.time() + 5)
        assert (refused.value.key, refused.value.from_state, refused.value.to_state) == (
            "s1",
            "submitting",
            "submitting",
        )
        assert second.line("s1").attempts == 1  # type: ignore[union-attr]
        first.transition("s1", "submitted", token="{}", remote_id="1")
        with pytest.raises(TransitionError, match="from submitted to submitted"):
            first.transition("s1", "submitted", token="{}", remote_id="2")
    events = journal_rows(path, "SELECT from_state, to_state FROM events ORDER BY id")
    assert events == [(None, "pending"), ("pending", "submitting"), ("submitting", "submitted")]


def test_a_version_1_journal_is_upgraded_and_its_submitting_lines_keep_a_window(
    tmp_path: pathlib.Path,
) -> None:
    from imuzekit import Timeouts
    from imuzekit.cli.batch._runner import landing_window

    path = tmp_path / "j.sqlite"
    with Journal(path) as journal:
        journal.sync(load_manifest(_manifest(tmp_path / "m.jsonl", [_song("s1")])))
        journal.transition("s1", "submitting", count_attempt=True, settle_by=time.time() + 9)
    # Made back into a version 1 journal (no settle_by, no targets).
    db = sqlite3.connect(path)
    with db:
        db.execute("ALTER TABLE lines DROP COLUMN settle_by")
        db.execute("DROP TABLE targets")
        db.execute("UPDATE meta SET value = '1' WHERE name = 'schema_version'")
    db.close()
    with Journal(path) as journal:
        (line,) = journal.lines()
        assert (line.state, line.settle_by) == ("submitting", None)
        assert journal.target("s1", 1) is None
    assert journal_rows(path, "SELECT value FROM meta WHERE name = 'schema_version'") == [("2",)]
    assert landing_window(Timeouts()) == 100  # (10 s connect + 60 s read) + 30 s
    assert landing_window(Timeouts(connect=2, total=2)) == 4
    assert landing_window(Timeouts(connect=None, read=None, total=None)) == 630
