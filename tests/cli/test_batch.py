"""``imuzekit batch``: runs, resumes, refusals and reconciliation, deterministically.

The kill-at-random-points acceptance test is in test_batch_crash.py; here crashes are staged
exactly: lost create answers come from emulator faults (the work is done, the answer is a 500),
and an interrupted run is a journal left in ``submitting`` with (or without) the generation
made remotely.
"""

from __future__ import annotations

import asyncio
import pathlib
import re
import signal
import sqlite3
import subprocess
import time
from typing import Any

from imuzekit.batch._journal import Journal, RunLock
from imuzekit.batch._manifest import load_manifest
from imuzekit.batch._runner import marked_params
from tests.cli.conftest import (
    EmulatorThread,
    batch_run_argv,
    check_files,
    child_env,
    cli_command,
    invoke,
    journal_counts,
    json_lines,
    manifest_file,
    music_line,
    song_line,
    tune_line,
)


def _counters(server: EmulatorThread) -> tuple[int, int, int]:
    emu = server.emu
    return server.call(
        lambda: (emu.imuze.songs_created, emu.joplin.musics_created, emu.mureka.creations)
    )


def test_batch_runs_every_provider_and_a_rerun_sends_nothing(
    emu_env: dict[str, str], emu_thread: EmulatorThread, tmp_path: pathlib.Path
) -> None:
    manifest = manifest_file(
        tmp_path / "m.jsonl",
        [
            song_line("s1"),
            song_line("s2", 4),
            music_line("m1", 4000),
            music_line("m2", 5000)
            | {
                "structure": [
                    {"start": 0, "duration": 0.25, "movement": "intro"},
                    {"start": 0.25, "duration": 0.75, "energy": "dynamic"},
                ]
            },
            tune_line("t1"),
            tune_line("t2", "create_instrumental"),
            tune_line("t3", "create"),
        ],
    )
    out = tmp_path / "out"
    result = invoke(batch_run_argv(manifest, out, None, "--json"))
    assert result.exit_code == 0, result.output
    records = json_lines(result.stdout)
    assert {r["state"] for r in records} == {"downloaded"}
    assert {r["key"]: len(r["files"]) for r in records} == {
        "s1": 1,
        "s2": 1,
        "m1": 1,
        "m2": 1,
        "t1": 2,
        "t2": 2,
        "t3": 2,
    }
    assert sorted(p.name for p in out.glob("*.mp3")) == [
        "m1.mp3",
        "m2.mp3",
        "s1.mp3",
        "s2.mp3",
        "t1-1.mp3",
        "t1-2.mp3",
        "t2-1.mp3",
        "t2-2.mp3",
        "t3-1.mp3",
        "t3-2.mp3",
    ]
    journal = out / "imuzekit-batch.sqlite"
    assert check_files(emu_thread, journal) == 10
    assert _counters(emu_thread) == (2, 2, 3)

    again = invoke(batch_run_argv(manifest, out, None))
    assert again.exit_code == 0, again.output
    assert _counters(emu_thread) == (2, 2, 3)
    status = invoke(["batch", "status", "--journal", str(journal), "--json"])
    assert status.exit_code == 0
    (summary,) = json_lines(status.stdout)
    assert summary["total"] == 7 and summary["counts"]["downloaded"] == 7
    # The titles carry the marker, so the songs can be found after a crash.
    songs = json_lines(invoke(["imuze", "songs", "list", "--json"]).stdout)
    assert all(re.search(r" ik [a-p]{12}$", s["title"]) for s in songs)


def test_a_bad_line_stops_everything_before_sending(
    emu_env: dict[str, str], emu_thread: EmulatorThread, tmp_path: pathlib.Path
) -> None:
    bad = song_line("s2") | {"desired_length": "long"}
    manifest = manifest_file(tmp_path / "m.jsonl", [song_line("s1"), music_line("m1", 3000), bad])
    result = invoke(batch_run_argv(manifest, tmp_path / "out", None))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: manifest line 3, field 'desired_length': must be an integer, got string"
    )
    assert _counters(emu_thread) == (0, 0, 0)
    titled = song_line("s3") | {"title": "Song 3"}
    manifest = manifest_file(tmp_path / "t.jsonl", [song_line("s1"), titled])
    refused = invoke(batch_run_argv(manifest, tmp_path / "out", None))
    assert refused.exit_code == 2
    assert refused.stderr.strip().startswith(
        "error: manifest line 2, field 'title': has '3', which iMuze does not allow (4 to 255"
    )
    assert _counters(emu_thread) == (0, 0, 0)
    accounts = manifest_file(tmp_path / "a.jsonl", [tune_line("t") | {"account": "000"}])
    refused = invoke(batch_run_argv(accounts, tmp_path / "out", None))
    assert refused.exit_code == 2 and "'000' is not a configured account" in refused.stderr


def test_unconfigured_provider_is_a_usage_error(
    emu_env: dict[str, str], monkeypatch: Any, tmp_path: pathlib.Path
) -> None:
    monkeypatch.delenv("IMUZEKIT_JOPLIN_EMAIL")
    manifest = manifest_file(tmp_path / "m.jsonl", [song_line("s1"), music_line("m1", 3000)])
    result = invoke(batch_run_argv(manifest, tmp_path / "out", None))
    assert result.exit_code == 2
    assert "the iMuze music engine (joplin) is not configured" in result.stderr


def test_failed_lines_exit_1_and_can_be_retried(
    emu_env: dict[str, str], emu_thread: EmulatorThread, tmp_path: pathlib.Path
) -> None:
    manifest = manifest_file(
        tmp_path / "m.jsonl", [song_line("ok"), song_line("bad") | {"arrangement_id": 999}]
    )
    out = tmp_path / "out"
    result = invoke(batch_run_argv(manifest, out, None))
    assert result.exit_code == 1
    assert "key 'bad', imuze) failed: create refused" in result.stdout
    status = json_lines(invoke(["batch", "status", "--out", str(out), "--json"]).stdout)[0]
    assert status["counts"]["failed"] == 1 and status["counts"]["downloaded"] == 1
    # Fix the line; --retry-failed sends it again.
    manifest_file(manifest, [song_line("ok"), song_line("bad")])
    retried = invoke(batch_run_argv(manifest, out, None, "--retry-failed"))
    assert retried.exit_code == 0, retried.output
    assert _counters(emu_thread)[0] == 2


def test_lost_create_answers_are_reconciled_never_resent(
    emu_env: dict[str, str], emu_thread: EmulatorThread, tmp_path: pathlib.Path
) -> None:
    emu = emu_thread.emu

    def faults() -> None:
        # The provider does the work, then the answer is lost (a 500 after the handler ran).
        emu.faults.add("imuze", "POST /songs", status=500, after_handler=True, times=2)
        emu.faults.add(
            "mureka", "POST /music/create-advanced", status=500, after_handler=True, times=1
        )
        emu.faults.add("joplin", "POST /musics", status=500, after_handler=True, times=1)

    emu_thread.call(faults)
    manifest = manifest_file(
        tmp_path / "m.jsonl",
        [
            song_line("s1"),
            song_line("s2"),
            song_line("s3"),
            tune_line("t1"),
            tune_line("t2"),
            music_line("m1", 3100),
        ],
    )
    out = tmp_path / "out"
    first = invoke(batch_run_argv(manifest, out, None, "--concurrency", "1"))
    assert first.exit_code == 1, first.output
    assert "key 'm1', joplin) uncertain" in first.stdout
    assert _counters(emu_thread) == (3, 1, 2)  # one creation per line, none resent
    journal = out / "imuzekit-batch.sqlite"
    reconciled = (
        sqlite3.connect(journal)
        .execute(
            "SELECT key FROM events WHERE detail LIKE 'reconciled: %has its marker' ORDER BY key"
        )
        .fetchall()
    )
    assert [k for (k,) in reconciled] == ["s1", "s2", "t1"]

    # The operator checks joplin, finds the music, and adopts it.
    (music_id,) = emu_thread.call(lambda: list(emu.joplin.musics))
    resolved = invoke(["batch", "resolve", "m1", "--remote-id", music_id, "--out", str(out)])
    assert resolved.exit_code == 0, resolved.output
    second = invoke(batch_run_argv(manifest, out, None))
    assert second.exit_code == 0, second.output
    assert _counters(emu_thread) == (3, 1, 2)
    assert check_files(emu_thread, journal) == 8


def test_an_interrupted_create_is_found_on_the_next_run(
    emu_env: dict[str, str], emu_thread: EmulatorThread, tmp_path: pathlib.Path
) -> None:
    emu = emu_thread.emu
    manifest = manifest_file(
        tmp_path / "m.jsonl",
        [
            song_line("made"),
            song_line("lost"),
            tune_line("t-made"),
            tune_line("t-lost"),
            music_line("j", 3000),
        ],
    )
    out = tmp_path / "out"
    journal_path = out / "imuzekit-batch.sqlite"
    # Stage a crash: every line went to submitting; only some creates reached the provider,
    # and their landing windows have passed (settle_by is now).
    with Journal(journal_path) as journal:
        journal.sync(load_manifest(manifest))
        rows = {row.key: row for row in journal.lines()}
        for key in rows:
            journal.transition(key, "submitting", count_attempt=True, settle_by=time.time())
    made = marked_params(rows["made"])
    emu_thread.call(
        lambda: emu.imuze.create_song(
            title=made["title"], arrangement_id=1, tags=made["tags"], desired_length=3
        )
    )
    tune = marked_params(rows["t-made"])
    account = emu_env["IMUZEKIT_MUREKA_ACCOUNTS"].split(",")[0]
    emu_thread.call(lambda: emu.mureka.create("create-advanced", tune, account=account))
    assert _counters(emu_thread) == (1, 0, 1)

    result = invoke(batch_run_argv(manifest, out, None))
    assert result.exit_code == 1, result.output
    assert "key 'j', joplin) uncertain: the create may have reached joplin" in result.stdout
    assert _counters(emu_thread) == (2, 0, 2)  # "lost" and "t-lost" sent once more, only
    states = dict(sqlite3.connect(journal_path).execute("SELECT key, state FROM lines"))
    assert states == {
        "made": "downloaded",
        "lost": "downloaded",
        "t-made": "downloaded",
        "t-lost": "downloaded",
        "j": "uncertain",
    }
    # Uncertain lines wait for a decision: a plain rerun leaves them alone.
    assert invoke(batch_run_argv(manifest, out, None)).exit_code == 1
    assert _counters(emu_thread) == (2, 0, 2)
    final = invoke(batch_run_argv(manifest, out, None, "--resubmit-uncertain"))
    assert final.exit_code == 0, final.output
    assert _counters(emu_thread) == (2, 1, 2)
    assert check_files(emu_thread, journal_path) == 1 + 1 + 2 + 2 + 1


def test_one_run_at_a_time(emu_env: dict[str, str], tmp_path: pathlib.Path) -> None:
    manifest = manifest_file(tmp_path / "m.jsonl", [song_line("s1")])
    out = tmp_path / "out"
    with RunLock(out / "imuzekit-batch.sqlite"):
        result = invoke(batch_run_argv(manifest, out, None))
    assert result.exit_code == 2 and "another `imuzekit batch`" in result.stderr
    assert invoke(["batch", "status", "--out", str(tmp_path / "nowhere")]).exit_code == 2


def test_ctrl_c_exits_130_and_the_journal_stays_consistent(
    emu_thread: EmulatorThread, tmp_path: pathlib.Path
) -> None:
    manifest = manifest_file(tmp_path / "m.jsonl", [song_line(f"s{i}", 2) for i in range(40)])
    out = tmp_path / "out"
    journal = out / "imuzekit-batch.sqlite"
    env = child_env(emu_thread.env())
    command = cli_command(*batch_run_argv(manifest, out, None, "--concurrency", "8"))
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as child:
        deadline = time.monotonic() + 20
        while journal_counts(journal).get("submitted", 0) < 3:
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=20)
    assert child.returncode == 130, stderr
    assert b"Interrupted." in stderr and b"Traceback" not in stderr
    db = sqlite3.connect(journal)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    assert list(out.glob("*.part")) == []  # the SDK removed the partial files it was writing
    resumed = subprocess.run(command, env=env, capture_output=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    assert _counters(emu_thread)[0] == 40
    assert check_files(emu_thread, journal) == 40


async def test_mureka_reconciliation_finds_running_jobs_and_finished_feeds(
    tmp_path: pathlib.Path,
) -> None:
    from imuzekit import PollPolicy
    from imuzekit.batch._journal import AsyncJournal
    from imuzekit.batch._runner import BatchOptions, BatchRunner
    from imuzekit.emulator import Clock, Emulator

    manifest = load_manifest(
        manifest_file(
            tmp_path / "m.jsonl",
            [
                tune_line("finished"),
                tune_line("running", "create_instrumental"),
                tune_line("absent"),
            ],
        )
    )
    poll = PollPolicy(initial=0.01, max_interval=0.05, timeout=10)
    async with (
        Emulator(clock=Clock(frozen=True), render_seconds=5) as emu,
        emu.client(poll=poll) as kit,
    ):
        store = await AsyncJournal.open(tmp_path / "j.sqlite")
        journal = store.journal
        journal.sync(manifest)
        rows = {row.key: row for row in journal.lines()}
        for key in rows:
            # A crash long enough ago that the creates' landing windows have passed.
            journal.transition(key, "submitting", settle_by=time.time())
        account = kit.mureka.accounts[0]
        emu.mureka.create("create-advanced", marked_params(rows["finished"]), account=account)
        emu.clock.advance(10)  # "finished" is complete and off the running list
        running = emu.mureka.create(
            "create-instrumental", marked_params(rows["running"]), account=account
        )
        runner = BatchRunner(kit, store, manifest, BatchOptions(out=tmp_path / "out"))
        await runner.reconcile(journal.lines(["submitting"]))
        after = {row.key: row for row in journal.lines()}
        assert after["running"].state == "submitted"
        assert after["running"].remote_id == running.jobid
        assert after["finished"].state == "ready" and after["finished"].token is None
        assert after["finished"].remote_id.startswith("feed:")
        assert after["absent"].state == "pending"

        async def tick() -> None:  # the frozen clock moves 1 s every 20 ms from now on
            while True:
                emu.clock.advance(1)
                await asyncio.sleep(0.02)

        ticker = asyncio.ensure_future(tick())
        try:
            final = await runner.run()
        finally:
            ticker.cancel()
            await store.aclose()
    assert {row.key: row.state for row in final} == dict.fromkeys(rows, "downloaded")
    assert emu.mureka.creations == 3
    assert len(list((tmp_path / "out").glob("*.mp3"))) == 6
