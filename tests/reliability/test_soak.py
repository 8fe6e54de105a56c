"""Soak: a bounded run of mixed operations under random faults, then a count of what leaked.

``IMUZEKIT_SOAK_SECONDS`` sets the length (6 s by default, to keep the suite under 3
minutes; ``IMUZEKIT_SOAK_SECONDS=60`` for the full soak). Measured
before and after: open file descriptors (``/proc/self/fd``), asyncio tasks, the connector's
connections in use, and ``.part`` files in the download folder.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from imuzekit import Client, PollPolicy, RetryPolicy, Timeouts, errors
from imuzekit.emulator import Emulator

SECONDS = float(os.environ.get("IMUZEKIT_SOAK_SECONDS", "6"))
CONCURRENCY = 6


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _tasks() -> int:
    return len([t for t in asyncio.all_tasks() if not t.done()])


FAULTS: list[tuple[str, str, dict[str, Any]]] = [
    ("imuze", "GET /songs/*", {"status": 503}),
    ("imuze", "GET /arrangements*", {"status": 429, "retry_after": 0.01}),
    ("imuze", "GET /files/*", {"truncate": 500}),
    ("imuze", "GET /files/*", {"reset": True, "times": 2}),
    ("imuze", "POST /songs", {"status": 500, "after_handler": True}),
    ("joplin", "GET /musics/*/mp3", {"content_length": 10**6}),
    ("joplin", "GET /genres*", {"delay": 0.4}),
    ("mureka", "GET /jobs*", {"status": 502}),
    ("mureka", "GET /cdn/*.mp3", {"garbage": True}),
    ("musescore", "GET /score*", {"status": 504}),
    ("musescore", "GET /static/*", {"truncate": 100}),
]


async def _operations(emu: Emulator, kit: Client, folder: Path, rng: random.Random) -> str:
    account = next(iter(emu.mureka.accounts))
    choice = rng.randrange(7)
    if choice == 0:
        _ = [a async for a in kit.imuze.arrangements.list()]
    elif choice == 1:
        job = await kit.imuze.songs.create(
            title="Soak Song", arrangement_id=1, tags=[], desired_length=1
        )
        await kit.download(await job.wait(timeout=3), folder)
    elif choice == 2:
        await kit.joplin.genres()
    elif choice == 3:
        music = await (await kit.joplin.musics.create("electronic", "house", 1_000, "calm:1")).wait(
            timeout=3
        )
        await kit.download(music, folder)
    elif choice == 4:
        feed = await (await kit.mureka.music.create("x", account=account)).wait(timeout=3)
        await kit.download(feed.songs[0], folder)
    elif choice == 5:
        score = (await kit.musescore.scores.search(limit=1).collect())[0]
        await kit.download(score.file(rng.choice(["mp3", "pdf", "mid"])), folder, overwrite=True)
    else:
        _ = [f async for f in kit.mureka.music.list(account=account)]
    return str(choice)


async def test_soak_leaves_no_connection_task_fd_or_part(tmp_path: Path) -> None:
    rng = random.Random(20240)
    folder = tmp_path / "downloads"
    folder.mkdir()
    outcomes: Counter[str] = Counter()
    fds_before = _fds()
    tasks_before = _tasks()
    async with Emulator(render_seconds=(0.01, 0.1)) as emu:
        # Warm up what is built once (the MuseScore catalogue, the converter) before counting.
        async with emu.client() as warm:
            await warm.musescore.scores.search(limit=1).collect()
        fds_started = _fds()
        async with emu.client(
            retry=RetryPolicy(backoff_base=0.01, backoff_max=0.05),
            timeouts=Timeouts(connect=1.0, read=0.3, total=5.0),
            poll=PollPolicy(initial=0.02, max_interval=0.1, timeout=3),
            max_connections=8,
        ) as kit:
            deadline = time.monotonic() + SECONDS

            async def worker() -> None:
                while time.monotonic() < deadline:
                    if rng.random() < 0.3:
                        provider, pattern, kwargs = rng.choice(FAULTS)
                        emu.faults.add(provider, pattern, **kwargs)
                    try:
                        async with asyncio.timeout(10):
                            outcomes[await _operations(emu, kit, folder, rng)] += 1
                    except errors.ImuzekitError as exc:
                        outcomes[type(exc).__name__] += 1

            async with asyncio.TaskGroup() as group:
                for _ in range(CONCURRENCY):
                    group.create_task(worker())
            emu.faults.clear()
            connector = kit.transport._get_session().connector
            assert connector is not None
            in_use = sum(len(v) for v in getattr(connector, "_acquired_per_host", {}).values())
            assert in_use == 0, f"{in_use} connections still acquired"
            assert len(getattr(connector, "_acquired", ())) == 0
        await asyncio.sleep(0.05)
        fds_after_client = _fds()
    await asyncio.sleep(0.05)
    errors_seen = sum(v for k, v in outcomes.items() if not k.isdigit())
    successes = sum(v for k, v in outcomes.items() if k.isdigit())
    assert successes > 20 and errors_seen > 0, outcomes
    assert fds_after_client <= fds_started + 2, (fds_started, fds_after_client)
    assert _fds() <= fds_before + 2, (fds_before, _fds())
    assert _tasks() <= tasks_before, (tasks_before, _tasks())
    assert not list(tmp_path.rglob("*.part")) and not list(tmp_path.rglob(".*.part"))
    print(f"soak {SECONDS:g}s: {dict(outcomes)}; fds {fds_before}->{_fds()}")
