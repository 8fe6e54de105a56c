"""Acceptance: a 200-line batch killed with SIGKILL at five points, resumed each time.

The CLI runs as a child process against an emulator in this process (a background thread), so
the emulator outlives every kill. The test watches the journal to choose its moments, and in the
end checks that every line is downloaded, that each line made exactly one generation (the
emulator's counters), and that every file's SHA-256 is the emulator's.

Joplin has no list endpoint: a joplin line killed between "create sent" and "answer recorded"
is left ``uncertain`` by design. The test plays the operator: it looks in the emulator for the
music (each joplin line has its own duration), adopts it with ``batch resolve --remote-id`` if
it exists and resubmits the line otherwise.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import time
from collections.abc import Callable

from tests._titles import numbered_title
from tests.cli.conftest import (
    EmulatorThread,
    batch_run_argv,
    check_files,
    child_env,
    cli_command,
    invoke,
    journal_counts,
    journal_rows,
)

N_IMUZE, N_JOPLIN, N_MUREKA = 110, 60, 30

Predicate = Callable[[dict[str, int], pathlib.Path], bool]


def _started(counts: dict[str, int], _: pathlib.Path) -> bool:
    return counts.get("submitted", 0) + counts.get("ready", 0) + counts.get("downloaded", 0) >= 15


def _downloaded(n: int) -> Predicate:
    return lambda counts, _: counts.get("downloaded", 0) >= n


def _mid_download(_: dict[str, int], out: pathlib.Path) -> bool:
    return any(out.glob("*.part"))


KILL_POINTS: list[tuple[str, Predicate]] = [
    ("15 lines submitted", _started),
    ("40 lines downloaded", _downloaded(40)),
    ("a download half written", _mid_download),
    ("110 lines downloaded", _downloaded(110)),
    ("160 lines downloaded", _downloaded(160)),
]


def _write_manifest(path: pathlib.Path) -> dict[int, str]:
    """200 interleaved lines; returns joplin's duration_ms -> key (durations are unique)."""
    lines = []
    joplin_keys: dict[int, str] = {}
    counts = {"imuze": 0, "joplin": 0, "mureka": 0}
    limits = {"imuze": N_IMUZE, "joplin": N_JOPLIN, "mureka": N_MUREKA}
    pattern = ["imuze", "joplin", "imuze", "mureka", "imuze", "joplin"] * 40
    for provider in pattern:
        if counts[provider] >= limits[provider]:
            provider = next(p for p in counts if counts[p] < limits[p])
        n = counts[provider]
        counts[provider] += 1
        key = f"{provider}-{n:03d}"
        if provider == "imuze":
            line = {
                "provider": "imuze",
                "key": key,
                "title": numbered_title(n, "Crash Song"),
                "arrangement_id": 1 + n % 3,
                "tags": ["crash"],
                "desired_length": 2 + n % 3,
            }
        elif provider == "joplin":
            duration = 2000 + 10 * n
            joplin_keys[duration] = key
            line = {
                "provider": "joplin",
                "key": key,
                "genre": "electronic",
                "subgenre": "house",
                "duration_ms": duration,
                "crop": True,
                "structure": "calm:0.4,dynamic:0.6",
            }
        else:
            line = {
                "provider": "mureka",
                "kind": "create_advanced",
                "key": key,
                "lyrics": f"verse {n}\nchorus {n}",
                "title": f"Crash Tune {n}",
            }
        lines.append(json.dumps(line))
        if len(lines) == 200:
            break
    assert counts == {"imuze": N_IMUZE, "joplin": N_JOPLIN, "mureka": N_MUREKA}
    path.write_text("\n".join(lines) + "\n")
    return joplin_keys


def _run_until(
    command: list[str],
    env: dict[str, str],
    journal: pathlib.Path,
    out: pathlib.Path,
    predicate: Predicate,
    what: str,
) -> None:
    with subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    ) as child:
        deadline = time.monotonic() + 30
        while not predicate(journal_counts(journal), out):
            if child.poll() is not None:
                raise AssertionError(
                    f"the run ended (rc {child.returncode}) before '{what}': "
                    f"{journal_counts(journal)}; {child.stderr.read().decode()[-2000:]}"
                )
            assert time.monotonic() < deadline, f"never reached '{what}'"
            time.sleep(0.005)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    assert child.returncode == -signal.SIGKILL


def test_batch_resumes_after_sigkill_at_five_points(
    emu_thread: EmulatorThread, emu_env: dict[str, str], tmp_path: pathlib.Path
) -> None:
    emu = emu_thread.emu
    manifest = tmp_path / "manifest.jsonl"
    joplin_keys = _write_manifest(manifest)
    out = tmp_path / "out"
    journal = tmp_path / "journal.sqlite"
    env = child_env(emu_thread.env())
    # Lines killed in submitting are sent again only once their landing window has passed
    # (twice the create timeout, here 4 s): the default (100 s) would outlast the test.
    command = cli_command(
        *batch_run_argv(manifest, out, journal, "--concurrency", "32", "--create-timeout", "2")
    )
    killed_submitting: set[str] = set()
    for what, predicate in KILL_POINTS:
        if predicate is _mid_download:
            # Slow a few iMuze file transfers down so that one is caught half written.
            emu_thread.call(lambda: emu.faults.add("imuze", "GET /files/*", delay=0.3, times=8))
        _run_until(command, env, journal, out, predicate, what)
        killed_submitting.update(
            key
            for (key,) in journal_rows(journal, "SELECT key FROM lines WHERE state = 'submitting'")
        )

    finished = subprocess.run(command, env=env, capture_output=True, timeout=60)
    assert finished.returncode in (0, 1), finished.stderr.decode()
    # The operator settles the joplin lines the kills left uncertain.
    uncertain = [
        key for (key,) in journal_rows(journal, "SELECT key FROM lines WHERE state = 'uncertain'")
    ]
    assert finished.returncode == (1 if uncertain else 0)
    assert all(key.startswith("joplin-") for key in uncertain)
    # Only once no earlier create can still land does "not there" mean "never made" (and
    # `resolve --resubmit` refuses before): wait for the latest settle_by.
    latest = journal_rows(journal, "SELECT MAX(settle_by) FROM lines WHERE state = 'uncertain'")[0][
        0
    ]
    time.sleep(max(0.0, (latest or 0.0) - time.time() + 0.05))
    made = emu_thread.call(
        lambda: {m.request["duration_ms"]: m.id for m in emu.joplin.musics.values()}
    )
    by_key = {key: duration for duration, key in joplin_keys.items()}
    for key in uncertain:
        music_id = made.get(by_key[key])
        decision = ["--remote-id", music_id] if music_id else ["--resubmit"]
        resolved = invoke(["batch", "resolve", key, "--journal", str(journal), *decision])
        assert resolved.exit_code == 0, resolved.output
    if uncertain:
        again = subprocess.run(command, env=env, capture_output=True, timeout=60)
        assert again.returncode == 0, again.stderr.decode()

    assert journal_counts(journal) == {"downloaded": 200}
    created = emu_thread.call(
        lambda: (emu.imuze.songs_created, emu.joplin.musics_created, emu.mureka.creations)
    )
    assert created == (N_IMUZE, N_JOPLIN, N_MUREKA)  # exactly one generation per line
    assert check_files(emu_thread, journal) == N_IMUZE + N_JOPLIN + 2 * N_MUREKA
    recorded = {pathlib.Path(p) for (p,) in journal_rows(journal, "SELECT path FROM files")}
    left = set(out.iterdir()) ^ recorded
    assert not left, sorted(left)  # no orphan, no .part left behind
    attempts = journal_rows(journal, "SELECT MAX(attempts) FROM lines")[0][0]
    assert attempts <= 2  # at most one resend, of a line surely never created
    reconciled = journal_rows(
        journal, "SELECT COUNT(*) FROM events WHERE detail LIKE 'reconciled%'"
    )[0][0]
    print(
        f"submitting at a kill: {len(killed_submitting)}, uncertain: {len(uncertain)}, "
        f"reconciled: {reconciled}"
    )
