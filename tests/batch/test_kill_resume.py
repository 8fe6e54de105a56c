"""Acceptance (issue 18): the library API runs a 200-line batch from Python code in a child
process, killed with SIGKILL mid-run and resumed by a new process: every line downloaded,
exactly one remote creation per line, every file the emulator's bytes, and each run's events
in the journal's order."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections import defaultdict
from typing import Any

from imuzekit.batch import TRANSITIONS
from tests.cli.conftest import EmulatorThread, check_files, journal_counts

CHILD = pathlib.Path(__file__).with_name("_child.py")
ROOT = pathlib.Path(__file__).resolve().parents[2]
LINES = 200


def _config(server: EmulatorThread, tmp_path: pathlib.Path) -> str:
    env = server.env()
    return json.dumps(
        {
            "base_url": env["IMUZEKIT_IMUZE_BASE_URL"],
            "email": env["IMUZEKIT_IMUZE_EMAIL"],
            "password": env["IMUZEKIT_IMUZE_PASSWORD"],
            "journal": str(tmp_path / "batch.db"),
            "out": str(tmp_path / "songs"),
            "lines": LINES,
            "concurrency": 32,
        }
    )


def _child(config: str, log: pathlib.Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMUZEKIT_")}
    with open(log, "wb") as out, open(log.with_suffix(".err"), "wb") as err:
        return subprocess.Popen(
            [sys.executable, str(CHILD), config], stdout=out, stderr=err, env=env
        )


def _events(log: pathlib.Path) -> list[dict[str, Any]]:
    """The events a run printed (a SIGKILLed run's last line may be cut short)."""
    events = []
    for text in log.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            events.append(json.loads(text))
    return events


def _check_order(events: list[dict[str, Any]], written: dict[str, int]) -> dict[str, list[str]]:
    """Each line's moves chain (``previous`` is the state before) and are allowed moves; a
    line's file is announced while it is ready, once in the run that finishes the line
    (counted in ``written``, one dict per run: a resumed run announces again a file that the
    killed run wrote and recorded, whose event may have died with it). Returns each line's
    states."""
    states: dict[str, list[str]] = defaultdict(list)
    for event in events:
        key = event.get("key")
        if event["type"] == "FileWritten":
            # Ready: moved there in this run, or before it (the run starts from the journal).
            assert states[key][-1:] in ([], ["ready"]), (key, states[key])
            written[key] += 1
        elif event["type"] == "LineChanged":
            seen = states[key]
            if seen:
                assert event["previous"] == seen[-1], (key, seen, event)
            assert event["previous"] is None or event["state"] in TRANSITIONS[event["previous"]]
            if event["state"] == "downloaded":
                assert written[key] == 1, key
            if event["state"] == "ready":
                assert written[key] == 0, key
            seen.append(event["state"])
    return states


def test_a_library_batch_killed_and_resumed_makes_each_song_once(
    emu_thread: EmulatorThread, tmp_path: pathlib.Path
) -> None:
    emu = emu_thread.emu
    # Slow creates, so that the kill finds some on their way.
    emu_thread.call(lambda: emu.faults.add("imuze", "POST /songs", delay=0.2, times=None))
    config = _config(emu_thread, tmp_path)
    journal = tmp_path / "batch.db"
    started = time.monotonic()
    first = _child(config, tmp_path / "first.jsonl")
    at_kill: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and first.poll() is None:
            at_kill = journal_counts(journal)
            if at_kill.get("downloaded", 0) >= 40 and at_kill.get("submitting", 0) >= 1:
                break
            time.sleep(0.02)
        assert first.poll() is None, (tmp_path / "first.err").read_text()
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == -signal.SIGKILL
    assert at_kill.get("submitting", 0) >= 1 and at_kill.get("pending", 0) >= 1, at_kill
    written: dict[str, int] = defaultdict(int)
    before = _check_order(_events(tmp_path / "first.jsonl"), written)
    done_before = {key for key, seen in before.items() if seen[-1] == "downloaded"}
    assert len(done_before) >= 40

    second = _child(config, tmp_path / "second.jsonl")
    try:
        second.wait(60)
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
    assert second.returncode == 0, (tmp_path / "second.err").read_text()
    elapsed = time.monotonic() - started

    announced = written
    written = defaultdict(int)
    after = _check_order(_events(tmp_path / "second.jsonl"), written)
    # Nothing finished before the kill moves again; every line the second run moves ends
    # downloaded. (The journal, below, is the record of what happened: events that were not yet
    # delivered when the first run was killed died with it.)
    assert set(after) & done_before == set()
    assert all(seen[-1] == "downloaded" for seen in after.values()), after
    assert journal_counts(journal) == {"downloaded": LINES}
    assert emu_thread.call(lambda: emu.imuze.songs_created) == LINES  # one creation per line
    assert check_files(emu_thread, journal) == LINES  # each file is the emulator's bytes
    # Each file announced at most once a run; the second run announces every file of the lines
    # it finishes, those recorded before the kill included.
    assert set(announced.values()) <= {0, 1} and set(written.values()) <= {0, 1}
    assert {key for key, seen in after.items() if "downloaded" in seen} <= {
        key for key, count in written.items() if count
    }
    assert elapsed < 20, elapsed
