"""Issue 14, points 3, 5 and 6: downloads are atomic across writers, never hand back another
source's bytes, refuse what they did not ask for, and none of their waits is endless.

Against the emulator (real bytes on disk) and against scripted hostile servers on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import fcntl
import gzip
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from imuzekit import Client, PollPolicy, RetryPolicy, Timeouts, errors
from imuzekit.emulator import Emulator
from tests.reliability.conftest import ready_song
from tests.transport.conftest import Server, stalling

FAST_POLL = PollPolicy(initial=0.02, max_interval=0.05, timeout=5)
FAST_RETRY = RetryPolicy(backoff_base=0.01, backoff_max=0.02)


def _regular_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.is_symlink())


# -- point 3: one transfer, one temporary file ---------------------------------------------


async def test_two_clients_racing_to_one_target_publish_exactly_the_source_bytes(
    emu: Emulator, tmp_path: Path
) -> None:
    async with (
        emu.client(poll=FAST_POLL, download_chunk_size=4096) as first,
        emu.client(poll=FAST_POLL, download_chunk_size=4096) as second,
    ):
        song = await ready_song(first)
        expected = emu.imuze.audio_bytes(song.id)
        assert len(expected) > 16 * 4096
        target = tmp_path / "same.mp3"
        started = asyncio.Event()

        def first_progress(done: int, total: int | None) -> None:
            started.set()

        async def late_second() -> Path:
            await started.wait()  # the first transfer has written its first chunk
            return await second.download(song, target)

        paths = await asyncio.gather(
            first.download(song, target, on_progress=first_progress), late_second()
        )
    for path in paths:
        assert path.read_bytes() == expected
    assert target.read_bytes() == expected
    assert not list(tmp_path.glob("*.part"))


_CHILD = """
import asyncio, sys
from imuzekit import Client

async def main() -> None:
    async with Client() as kit:
        print(await kit.download(sys.argv[1], sys.argv[2]))

asyncio.run(main())
"""


async def test_another_process_downloading_to_the_same_target_never_corrupts_it(
    server: Server, tmp_path: Path
) -> None:
    body = os.urandom(3 * 1024 * 1024 + 17)
    release = asyncio.Event()
    served: list[int] = []

    async def handler(_: web.Request) -> web.Response:
        served.append(len(served))
        if len(served) == 1:
            # Ours is held until the other process has run from start to end: our temporary
            # file stays open (and locked) all that time.
            await release.wait()
        return web.Response(body=body, headers={"ETag": '"one"'})

    server.route("GET", "/shared.bin", handler)
    await server.start()
    target = tmp_path / "shared.bin"
    async with Client(retry=FAST_RETRY) as kit:
        ours = asyncio.ensure_future(kit.download(f"{server.url}/shared.bin", target))
        try:
            while not served:
                await asyncio.sleep(0.01)
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _CHILD,
                f"{server.url}/shared.bin",
                str(target),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await child.communicate()
            assert child.returncode == 0, err.decode()[-2000:]
            assert Path(out.decode().strip()) == target
            assert not ours.done()
            assert len(list(tmp_path.glob("*.part"))) == 1  # ours: the other left it alone
            assert target.read_bytes() == body
        finally:
            release.set()
        path = await ours
    assert path == target  # the same source, published first by the other: adopted
    assert target.read_bytes() == body
    assert _regular_files(tmp_path) == ["shared.bin"]


async def test_a_planted_part_symlink_leaves_its_target_untouched(
    emu: Emulator, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    folder = tmp_path / "out"
    folder.mkdir()
    planted = folder / "x.mp3.part"
    planted.symlink_to(victim)
    async with emu.client(poll=FAST_POLL) as kit:
        song = await ready_song(kit, length=2)
        path = await kit.download(song, folder / "x.mp3")
    assert victim.read_bytes() == b"precious"
    assert path == folder / "x.mp3" and not path.is_symlink()
    assert path.read_bytes() == emu.imuze.audio_bytes(song.id)
    assert planted.is_symlink()  # not ours to remove: it is recent


async def test_dead_writers_temporary_files_are_cleaned_and_live_ones_kept(
    emu: Emulator, tmp_path: Path
) -> None:
    old = tmp_path / "old.mp3.imuzekit-0a1b2c3d4e5f.part"
    old.write_bytes(b"\0" * 100)
    week_ago = time.time() - 7 * 24 * 3600
    os.utime(old, (week_ago, week_ago))
    dead = tmp_path / "dead.mp3.imuzekit-0123456789ab.part"  # its process was killed just now
    dead.write_bytes(b"\0" * 100)
    live = tmp_path / "live.mp3.imuzekit-ffeeddccbbaa.part"
    live.write_bytes(b"\0" * 100)
    unrelated = tmp_path / "firefox.mp3.part"
    unrelated.write_bytes(b"\0")
    # Another program's file of the old form (or a user's): no imuzekit mark, never removed.
    lookalike = tmp_path / "notes.0123456789ab.part"
    lookalike.write_bytes(b"mine")
    with open(live, "rb") as writer:
        fcntl.flock(writer.fileno(), fcntl.LOCK_EX)  # another process's transfer in progress
        async with emu.client(poll=FAST_POLL) as kit:
            song = await ready_song(kit, length=2)
            path = await kit.download(song, tmp_path)
        assert live.exists()
    assert not old.exists() and not dead.exists()
    assert unrelated.exists() and lookalike.exists()  # not names imuzekit makes
    assert path.read_bytes() == emu.imuze.audio_bytes(song.id)


# -- point 5: never another source's bytes -------------------------------------------------


async def test_a_new_dest_without_suffix_is_a_directory(emu: Emulator, tmp_path: Path) -> None:
    async with emu.client(poll=FAST_POLL) as kit:
        one, two = await ready_song(kit, "First Song", 2), await ready_song(kit, "Second Song", 2)
        first = await kit.download(one, tmp_path / "songs")
        second = await kit.download(two, tmp_path / "songs")
    assert (tmp_path / "songs").is_dir()
    assert first.parent == second.parent == tmp_path / "songs"
    assert first.read_bytes() == emu.imuze.audio_bytes(one.id)
    assert second.read_bytes() == emu.imuze.audio_bytes(two.id)


async def test_an_existing_file_of_another_source_is_never_returned(
    emu: Emulator, tmp_path: Path
) -> None:
    target = tmp_path / "x.mp3"
    async with emu.client(poll=FAST_POLL) as kit:
        one, two = await ready_song(kit, "First Song", 2), await ready_song(kit, "Second Song", 2)
        assert await kit.download(one, target) == target
        other = await kit.download(two, target)
        # A file nobody downloaded (no record of its source) is not adopted either.
        foreign = tmp_path / "foreign.mp3"
        foreign.write_bytes(emu.imuze.audio_bytes(one.id))
        beside = await kit.download(one, foreign)
        fetches = emu.count("imuze", "GET", "/files/*")
        again = await kit.download(one, target)  # provably this source's: kept
        assert emu.count("imuze", "GET", "/files/*") == fetches
    assert again == target and target.read_bytes() == emu.imuze.audio_bytes(one.id)
    assert other != target and other.parent == tmp_path
    assert other.read_bytes() == emu.imuze.audio_bytes(two.id)
    assert beside != foreign and beside.read_bytes() == emu.imuze.audio_bytes(one.id)


async def test_download_many_never_raises_every_failure_is_a_result(
    emu: Emulator, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"not a directory")
    async with emu.client(poll=FAST_POLL) as kit:
        song = await ready_song(kit, length=2)
        results = [r async for r in kit.download_many([song, 42], blocker / "inside")]
    assert len(results) == 2
    assert all(isinstance(r.error, errors.DownloadError | errors.ValidationError) for r in results)
    assert all(r.path is None for r in results)


# -- point 6: refuse what was not asked for ------------------------------------------------


async def test_an_unrequested_content_encoding_is_refused_before_writing(
    server: Server, tmp_path: Path
) -> None:
    bomb = gzip.compress(b"\0" * (8 * 1024 * 1024))

    async def gzipped(_: web.Request) -> web.Response:
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip"})

    server.route("GET", "/bomb.bin", gzipped)
    await server.start()
    written: list[int] = [0]
    async with Client(retry=RetryPolicy.none()) as kit:
        with pytest.raises(errors.DownloadError, match="Content-Encoding") as info:
            await kit.download(
                f"{server.url}/bomb.bin",
                tmp_path / "bomb.bin",
                on_progress=lambda done, _: written.__setitem__(0, max(written[0], done)),
            )
    assert written[0] <= len(bomb), f"{written[0]} bytes written from a {len(bomb)}-byte answer"
    assert not isinstance(info.value, errors.IntegrityError)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("change", ["etag", "total"])
async def test_a_resume_onto_another_version_restarts_from_byte_zero(
    server: Server, tmp_path: Path, change: str
) -> None:
    old = bytes(range(256)) * 64  # 16 KiB
    new = bytes(reversed(range(256))) * (64 if change == "etag" else 65)
    etags = ('"v1"', '"v2"') if change == "etag" else (None, None)
    calls: list[str | None] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        calls.append(request.headers.get("Range"))
        ranged = request.headers.get("Range")
        headers = {"Accept-Ranges": "bytes"}
        if ranged:  # a server that ignores If-Range and serves the new version's bytes
            start = int(ranged.removeprefix("bytes=").rstrip("-"))
            headers["Content-Range"] = f"bytes {start}-{len(new) - 1}/{len(new)}"
            if etags[1]:
                headers["ETag"] = etags[1]
            return web.Response(status=206, body=new[start:], headers=headers)
        if len(calls) == 1:  # the old version, cut in the middle
            if etags[0]:
                headers["ETag"] = etags[0]
            cut = web.StreamResponse(headers=headers)
            cut.content_length = len(old)
            cut.force_close()
            await cut.prepare(request)
            await cut.write(old[: len(old) // 2])
            return cut
        if etags[1]:
            headers["ETag"] = etags[1]
        return web.Response(body=new, headers=headers)

    server.route("GET", "/f.bin", handler)
    await server.start()
    async with Client(retry=FAST_RETRY) as kit:
        path = await kit.download(f"{server.url}/f.bin", tmp_path / "f.bin")
    assert path.read_bytes() == new
    assert calls[0] is None and calls[-1] is None  # the last answer was a whole file


async def test_a_503_retry_after_on_a_download_is_honoured(server: Server, tmp_path: Path) -> None:
    answers = [
        web.Response(status=503, headers={"Retry-After": "0.4"}),
        web.Response(body=b"payload"),
    ]
    server.route("GET", "/r.bin", lambda _: answers.pop(0))
    await server.start()
    async with Client(retry=FAST_RETRY) as kit:
        path = await kit.download(f"{server.url}/r.bin", tmp_path / "r.bin")
    assert path.read_bytes() == b"payload"
    assert server.times[1] - server.times[0] >= 0.38


async def test_close_ends_an_in_flight_download_at_once_with_client_closed_error(
    server: Server, tmp_path: Path
) -> None:
    release = asyncio.Event()
    server.route("GET", "/slow.bin", stalling(b"x" * 1000, 1_000_000, release))
    await server.start()
    kit = Client(retry=RetryPolicy.none(), timeouts=Timeouts(read=5, total=5))
    got_bytes = asyncio.Event()
    task = asyncio.ensure_future(
        kit.download(
            f"{server.url}/slow.bin", tmp_path / "slow.bin", on_progress=lambda *_: got_bytes.set()
        )
    )
    try:
        await asyncio.wait_for(got_bytes.wait(), 2)
        started = time.monotonic()
        await kit.close()
        with pytest.raises(errors.ClientClosedError):
            await asyncio.wait_for(task, 2)
        assert time.monotonic() - started < 1.0
    finally:
        release.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await kit.close()
    assert list(tmp_path.iterdir()) == []


# -- point 1, the downloader's part: every wait has a deadline -----------------------------


@pytest.mark.parametrize("hung", ["fsync", "link"])
async def test_a_disk_that_stops_answering_ends_the_download_within_its_deadline(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hung: str
) -> None:
    from imuzekit import _disk

    unblock = threading.Event()
    real_link = os.link

    def hung_fsync(fd: int) -> None:
        unblock.wait(5)  # a dead NFS mount: the call does not come back

    def hung_link(src: Any, dst: Any, **kwargs: Any) -> None:
        unblock.wait(5)
        real_link(src, dst, **kwargs)

    # A disk, also where tmp_path is a tmpfs (whose files are published on the loop).
    monkeypatch.setattr(_disk, "memory_backed", lambda directory: False)
    if hung == "fsync":
        monkeypatch.setattr(_disk, "_fsync_file", hung_fsync)
    else:
        monkeypatch.setattr(_disk.os, "link", hung_link)
    try:
        async with emu.client(poll=FAST_POLL) as kit:
            kit._downloader.disk_timeout = 0.3
            song = await ready_song(kit, length=2)
            started = time.monotonic()
            with pytest.raises(errors.DownloadError, match="disk"):
                await kit.download(song, tmp_path)
            assert time.monotonic() - started < 2.0
            # Right after the error, while the abandoned call still hangs: nothing is left.
            assert sorted(p.name for p in tmp_path.iterdir()) == []
    finally:
        unblock.set()
    await asyncio.sleep(0.1)  # the abandoned thread returns: it publishes nothing either
    assert sorted(p.name for p in tmp_path.iterdir()) == []
