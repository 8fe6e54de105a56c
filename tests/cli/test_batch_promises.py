"""Issue 14's batch promises: a create in flight at a crash is never sent twice, a batch only
adopts files it wrote, and the journal refuses a second sender however it is reached.

The kill -9 tests drive the CLI in child processes against an emulator (a background thread of
this process, so it outlives every kill) whose create endpoint holds each request a while
before it acts (:func:`slow_create`): the creation lands well after the request left, as with a
slow provider, and after the resumed run's first look, so that a resumed run that sent the
create again without waiting for its landing window would make two.
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

import attrs
import pytest

from imuzekit.batch._journal import Journal, JournalError, RunLock, TransitionError
from imuzekit.batch._manifest import ManifestError, load_manifest
from tests.cli.conftest import (
    EmulatorThread,
    batch_run_argv,
    check_files,
    child_env,
    cli_command,
    invoke,
    journal_rows,
    json_lines,
    manifest_file,
    song_line,
    tune_line,
)


@attrs.frozen
class SlowCreate:
    """How long the emulator holds a create (``delay``) and the run's ``--create-timeout``."""

    delay: float
    timeout: str


@pytest.fixture(scope="module")
def slow_create(tmp_path_factory: pytest.TempPathFactory) -> SlowCreate:
    """A create delay comfortably above a child's time to start and look at the provider,
    measured here (a child that starts, logs in and reads a list: about 1 s on an idle machine,
    more on a loaded one). Were the delay shorter, the resumed run's first look would come after
    the landing and the test would pass even without the landing window. The create timeout
    makes the window (twice it) outlast the delay: the rule holds for this emulator."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMUZEKIT_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("xdg"))
    started = time.monotonic()
    subprocess.run(
        cli_command("imuze", "arrangements", "--emulator", "--json"),
        env=env,
        capture_output=True,
        timeout=60,
        check=True,
    )
    delay = max(2.5, 2 * (time.monotonic() - started))
    return SlowCreate(delay=delay, timeout=f"{delay / 2 + 0.25:.2f}")


_CREATES = {
    "imuze": ("POST /songs", lambda emu: emu.imuze.songs_created),
    "mureka": ("POST /music/create-advanced", lambda emu: emu.mureka.creations),
}


def _line(provider: str) -> dict[str, Any]:
    return song_line("slow") if provider == "imuze" else tune_line("slow")


@pytest.mark.parametrize("provider", ["imuze", "mureka"])
def test_a_create_in_flight_at_sigkill_is_never_sent_twice(
    provider: str,
    emu_thread: EmulatorThread,
    emu_env: dict[str, str],
    tmp_path: pathlib.Path,
    slow_create: SlowCreate,
) -> None:
    emu = emu_thread.emu
    pattern, created = _CREATES[provider]
    fault = emu_thread.call(
        lambda: emu.faults.add(provider, pattern, delay=slow_create.delay, read_first=True)
    )
    manifest = manifest_file(tmp_path / "m.jsonl", [_line(provider)])
    out, journal = tmp_path / "out", tmp_path / "journal.sqlite"
    command = cli_command(
        *batch_run_argv(manifest, out, journal, "--create-timeout", slow_create.timeout)
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
    time.sleep(max(0.0, arrived + slow_create.delay + 0.3 - time.monotonic()))
    assert emu_thread.call(lambda: created(emu)) == 1
    assert emu_thread.call(lambda: emu.count(provider, "POST", pattern.split()[1])) == 1
    assert journal_rows(journal, "SELECT state, attempts FROM lines") == [("downloaded", 1)]
    assert check_files(emu_thread, journal) == (1 if provider == "imuze" else 2)


def test_a_create_sent_late_by_its_sender_is_still_waited_for(
    emu_thread: EmulatorThread,
    emu_env: dict[str, str],
    tmp_path: pathlib.Path,
    slow_create: SlowCreate,
) -> None:
    # The first create is refused with a 429 asking for a wait as long as the create's delay
    # (at least 3 s); the second leaves that long after the line was committed (as a Mureka
    # create leaves after waiting for a free slot) and lands after the settle_by committed with
    # the line (2 delays > window + beat = 4/3 (delay + 0.5) for any delay over 1 s). The
    # sender's heartbeat keeps settle_by a window ahead until it dies.
    emu = emu_thread.emu
    wait = max(3.0, slow_create.delay)
    emu_thread.call(lambda: emu.faults.add("imuze", "POST /songs", status=429, retry_after=wait))
    late = emu_thread.call(
        lambda: emu.faults.add("imuze", "POST /songs", delay=slow_create.delay, read_first=True)
    )
    manifest = manifest_file(tmp_path / "m.jsonl", [song_line("late")])
    out, journal = tmp_path / "out", tmp_path / "journal.sqlite"
    command = cli_command(
        *batch_run_argv(manifest, out, journal, "--create-timeout", slow_create.timeout)
    )
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
    time.sleep(max(0.0, arrived + slow_create.delay + 0.3 - time.monotonic()))
    assert emu_thread.call(lambda: emu.imuze.songs_created) == 1
    assert journal_rows(journal, "SELECT state, attempts FROM lines") == [("downloaded", 1)]


def test_a_line_whose_create_could_land_much_later_is_left_uncertain(
    emu_env: dict[str, str], emu_thread: EmulatorThread, tmp_path: pathlib.Path
) -> None:
    manifest = manifest_file(tmp_path / "m.jsonl", [song_line("later")])
    out = tmp_path / "out"
    with Journal(out / "imuzekit-batch.sqlite") as journal:
        journal.sync(load_manifest(manifest))
        # An earlier run with a far longer create timeout (or a clock set back since).
        journal.transition("later", "submitting", count_attempt=True, settle_by=time.time() + 600)
    result = invoke(batch_run_argv(manifest, out, None, "--create-timeout", "1"))
    assert result.exit_code == 1, result.output
    assert "uncertain: not found yet, and the create could still land until" in result.stdout
    assert emu_thread.call(lambda: emu_thread.emu.imuze.songs_created) == 0


# -- 4: a batch only adopts a file it wrote ---------------------------------------------------


def test_a_fresh_journal_never_adopts_the_files_of_an_earlier_batch(
    emu_env: dict[str, str], emu_thread: EmulatorThread, tmp_path: pathlib.Path
) -> None:
    manifest = manifest_file(tmp_path / "m.jsonl", [song_line("song"), tune_line("tune")])
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
    assert {pathlib.Path(p).name for p in paths} == {"song-2.mp3", "tune-1-2.mp3", "tune-2-2.mp3"}
    assert {name: (out / name).read_bytes() for name in before} == before
    assert check_files(emu_thread, first) == 3


def test_a_resumed_download_adopts_only_its_own_unchanged_file(
    emu_env: dict[str, str], emu_thread: EmulatorThread, tmp_path: pathlib.Path
) -> None:
    manifest = manifest_file(tmp_path / "m.jsonl", [song_line("song")])
    out = tmp_path / "out"
    journal = out / "imuzekit-batch.sqlite"
    run = batch_run_argv(manifest, out, None)
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
    assert journal_rows(journal, "SELECT path FROM files") == [(str(out / "song-2.mp3"),)]
    assert check_files(emu_thread, journal) == 1


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (tune_line("tune"), song_line("tune-1")),
        (song_line("TUNE-2"), tune_line("tune")),
        (tune_line("a", "create"), tune_line("A", "create_instrumental")),
    ],
)
def test_manifest_refuses_keys_whose_files_would_collide(
    first: dict[str, Any], second: dict[str, Any], tmp_path: pathlib.Path
) -> None:
    manifest = manifest_file(tmp_path / "m.jsonl", [first, second])
    with pytest.raises(ManifestError, match="would name the same file"):
        load_manifest(manifest)


def test_manifest_accepts_keys_whose_files_differ(tmp_path: pathlib.Path) -> None:
    lines = [tune_line("tune"), song_line("tune-3"), song_line("tune-1-1"), tune_line("tune-1b")]
    assert len(load_manifest(manifest_file(tmp_path / "m.jsonl", lines))) == 4


# -- 9: the journal's lock and its one sender per line ----------------------------------------


def test_the_run_lock_holds_however_the_journal_is_reached(
    emu_env: dict[str, str], tmp_path: pathlib.Path
) -> None:
    manifest = manifest_file(tmp_path / "m.jsonl", [song_line("s1")])
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
            "from imuzekit.batch._journal import JournalError, RunLock\n"
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
    manifest = load_manifest(manifest_file(tmp_path / "m.jsonl", [song_line("s1")]))
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
    from imuzekit.batch._runner import landing_window

    path = tmp_path / "j.sqlite"
    with Journal(path) as journal:
        journal.sync(load_manifest(manifest_file(tmp_path / "m.jsonl", [song_line("s1")])))
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


# -- 4: a file under a name the journal claimed but did not record is never removed ----------


def test_a_file_put_under_a_claimed_name_is_never_removed(
    emu_env: dict[str, str], emu_thread: EmulatorThread, tmp_path: pathlib.Path
) -> None:
    # Run 1 claimed out/song.mp3 and died mid-transfer; then another batch sharing --out (or
    # the user) put its file there. The old runner deleted it as "ours, written before".
    manifest = manifest_file(tmp_path / "m.jsonl", [song_line("song")])
    out = tmp_path / "out"
    journal = out / "imuzekit-batch.sqlite"
    with Journal(journal) as store:
        store.sync(load_manifest(manifest))
        assert store.claim("song", 1, out / "song.mp3") == out / "song.mp3"
    (out / "song.mp3").write_bytes(b"another batch's paid song")
    result = invoke(batch_run_argv(manifest, out, None))
    assert result.exit_code == 0, result.output
    assert (out / "song.mp3").read_bytes() == b"another batch's paid song"
    # The download was published beside it, under the SDK's numbering, and recorded there.
    assert journal_rows(journal, "SELECT path FROM files") == [(str(out / "song-2.mp3"),)]
    assert check_files(emu_thread, journal) == 1


def test_a_relative_claim_never_reaches_a_file_of_another_working_directory(
    emu_env: dict[str, str],
    emu_thread: EmulatorThread,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An older journal claimed "out/song.mp3" relative to the first run's directory; the resume
    # runs elsewhere, where out/song.mp3 is someone else's file.
    first, second = tmp_path / "first", tmp_path / "second"
    (second / "out").mkdir(parents=True)
    (second / "out" / "song.mp3").write_bytes(b"not this batch's")
    manifest = manifest_file(tmp_path / "m.jsonl", [song_line("song")])
    journal = first / "journal.sqlite"
    with Journal(journal) as store:
        store.sync(load_manifest(manifest))
        store.claim("song", 1, pathlib.Path("out/song.mp3"))
    monkeypatch.chdir(second)
    result = invoke(batch_run_argv(manifest, pathlib.Path("out"), journal))
    assert result.exit_code == 0, result.output
    assert (second / "out" / "song.mp3").read_bytes() == b"not this batch's"
    # Recorded absolute: right from any working directory.
    recorded = journal_rows(journal, "SELECT path FROM files")
    assert recorded == [(str(second.resolve() / "out" / "song-2.mp3"),)]
    assert journal_rows(journal, "SELECT path FROM targets") == recorded
    monkeypatch.chdir(tmp_path)
    assert check_files(emu_thread, journal) == 1


def test_a_hard_linked_journal_is_refused(
    emu_env: dict[str, str], emu_thread: EmulatorThread, tmp_path: pathlib.Path
) -> None:
    manifest = manifest_file(tmp_path / "m.jsonl", [song_line("s1")])
    real = tmp_path / "j.sqlite"
    with Journal(real) as store:
        store.sync(load_manifest(manifest))
    other = tmp_path / "elsewhere" / "other.sqlite"
    other.parent.mkdir()
    os.link(real, other)  # the same database under a second name: a second lock, a second WAL
    for path in (real, other):
        with pytest.raises(JournalError, match="2 hard links"):
            RunLock(path).__enter__()
        with pytest.raises(JournalError, match="2 hard links"):
            Journal(path, create=False)
    result = invoke(batch_run_argv(manifest, tmp_path / "out", other))
    assert result.exit_code == 2 and "hard links" in result.stderr, result.output
    status = invoke(["batch", "status", "--journal", str(real)])
    assert status.exit_code == 2 and "hard links" in status.stderr
    assert emu_thread.call(lambda: emu_thread.emu.imuze.songs_created) == 0
    other.unlink()
    assert invoke(batch_run_argv(manifest, tmp_path / "out", real)).exit_code == 0


# -- 2: resubmitting by hand waits for the landing window too ---------------------------------


def _stage_submitting(tmp_path: pathlib.Path, settle_by: float | None) -> pathlib.Path:
    """A journal whose line ``s1`` a run left in ``submitting`` (``settle_by`` None: as a
    version 1 journal left it, its window counted from the line's last change)."""
    manifest = manifest_file(tmp_path / "m.jsonl", [song_line("s1")])
    path = tmp_path / "j.sqlite"
    with Journal(path) as journal:
        journal.sync(load_manifest(manifest))
        journal.transition("s1", "submitting", count_attempt=True, settle_by=settle_by)
    return path


@pytest.mark.parametrize("state", ["submitting", "uncertain"])
@pytest.mark.parametrize("settle_by", [60.0, None], ids=["settle_by", "version-1"])
def test_resolve_resubmit_is_refused_while_the_create_could_land(
    state: str, settle_by: float | None, tmp_path: pathlib.Path
) -> None:
    path = _stage_submitting(tmp_path, settle_by and time.time() + settle_by)
    if state == "uncertain":
        with Journal(path) as journal:  # as reconciliation does with a joplin line
            journal.transition("s1", "uncertain", error="cannot be looked up")
    resolve = ["batch", "resolve", "s1", "--resubmit", "--journal", str(path)]
    refused = invoke(resolve)
    assert refused.exit_code == 2, refused.output
    assert "the create sent earlier could still land until" in refused.stderr
    assert journal_rows(path, "SELECT state FROM lines") == [(state,)]
    forced = invoke([*resolve, "--force"])
    assert forced.exit_code == 0, forced.output
    assert journal_rows(path, "SELECT state, settle_by FROM lines") == [("pending", None)]


def test_resolve_resubmit_once_the_window_has_passed(tmp_path: pathlib.Path) -> None:
    path = _stage_submitting(tmp_path, time.time() - 1)
    result = invoke(["batch", "resolve", "s1", "--resubmit", "--journal", str(path)])
    assert result.exit_code == 0, result.output
    assert journal_rows(path, "SELECT state FROM lines") == [("pending",)]


def test_resubmit_uncertain_leaves_a_line_whose_create_could_land(
    emu_env: dict[str, str], emu_thread: EmulatorThread, tmp_path: pathlib.Path
) -> None:
    path = _stage_submitting(tmp_path, time.time() + 60)
    with Journal(path) as journal:
        journal.transition("s1", "uncertain", error="cannot be looked up")
    manifest = tmp_path / "m.jsonl"
    result = invoke(batch_run_argv(manifest, tmp_path / "out", path, "--resubmit-uncertain"))
    assert result.exit_code == 1, result.output
    assert "not resubmitted: the create sent earlier could still land until" in result.stdout
    assert journal_rows(path, "SELECT state FROM lines") == [("uncertain",)]
    assert emu_thread.call(lambda: emu_thread.emu.imuze.songs_created) == 0


# -- 9: a heartbeat that cannot be recorded never cancels a create, nor stops the run ---------


async def test_a_failed_heartbeat_neither_cancels_the_create_nor_stops_the_run(
    tmp_path: pathlib.Path,
) -> None:
    from imuzekit import PollPolicy
    from imuzekit.batch._journal import AsyncJournal
    from imuzekit.batch._runner import BatchOptions, BatchRunner
    from imuzekit.emulator import Emulator

    class FailingHeartbeat(Journal):
        def extend(self, key: str, settle_by: float) -> None:
            raise sqlite3.OperationalError("disk I/O error")

    manifest = load_manifest(
        manifest_file(tmp_path / "m.jsonl", [song_line("slow"), song_line("other")])
    )
    poll = PollPolicy(initial=0.01, max_interval=0.05, timeout=10)
    async with Emulator(render_seconds=0.1) as emu, emu.client(poll=poll) as kit:
        emu.faults.add("imuze", "POST /songs", delay=0.5, read_first=True)
        store = AsyncJournal(FailingHeartbeat(tmp_path / "j.sqlite"))
        said: list[str] = []
        runner = BatchRunner(
            kit, store, manifest, BatchOptions(out=tmp_path / "out"), say=said.append
        )
        runner._beat = 0.05  # several beats while the first create is out
        try:
            final = await runner.run()
        finally:
            await store.aclose()
        assert {row.key: (row.state, row.attempts) for row in final} == {
            "slow": ("downloaded", 1),
            "other": ("downloaded", 1),
        }
        assert emu.imuze.songs_created == 2
        assert any("heartbeat not recorded: OperationalError: disk I/O error" in m for m in said)
