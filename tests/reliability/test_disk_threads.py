"""The downloader's disk threads: a pool of its own, abandoned calls counted, ended by close().

`imuzekit._handoff.Handoff` runs every blocking file system call of the downloader in a worker
thread with a deadline. These tests pin what its callers rely on: a call given up on before it
started never runs, one given up on while running counts as stuck until the disk answers, the
caller's context variables reach the thread, and the threads end with the Client (also when
close() itself is cancelled, and once downloads that outlived close() are done).
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from imuzekit import Client, RetryPolicy, errors
from imuzekit._handoff import Handoff
from tests.reliability.test_promises_disk import MP3, _serve
from tests.transport.conftest import Server, stalling


async def _until(condition: object, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.01)
    return False


async def test_a_call_given_up_before_it_started_never_runs_and_is_not_stuck() -> None:
    handoff = Handoff(1)
    release = threading.Event()
    ran: list[str] = []
    first = asyncio.ensure_future(handoff.run(lambda: (release.wait(5), ran.append("first"))))
    await asyncio.sleep(0.05)  # the only thread is busy with the first call
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(handoff.run(ran.append, "second"), 0.05)
    assert handoff.stuck == 0  # it never started: nothing of it holds a thread
    release.set()
    await first
    await asyncio.sleep(0.05)
    assert ran == ["first"]  # the abandoned second call never ran
    handoff.close()


async def test_a_call_given_up_while_running_counts_as_stuck_until_it_returns() -> None:
    handoff = Handoff(2)
    release = threading.Event()
    started = threading.Event()

    def hangs() -> str:
        started.set()
        release.wait(5)
        return "late"

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(handoff.run(hangs), 0.1)
    assert started.is_set() and handoff.stuck == 1
    handoff.check()  # one of two stuck: still accepted
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(handoff.run(hangs), 0.1)
    assert handoff.stuck == 2
    with pytest.raises(errors.DownloadError, match="has not answered 2 calls"):
        await handoff.run(lambda: None)
    release.set()
    assert await _until(lambda: handoff.stuck == 0)
    assert await handoff.run(lambda: "answered") == "answered"
    handoff.close()
    with pytest.raises(errors.DownloadError, match="closed"):
        await handoff.run(lambda: None)


async def test_the_callers_context_variables_reach_the_disk_thread() -> None:
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
    request_id.set("r-17")
    handoff = Handoff(1)
    assert await handoff.run(request_id.get) == "r-17"
    assert await handoff.run(threading.current_thread) is not threading.current_thread()
    handoff.close()


def _disk_threads(kit: Client) -> list[threading.Thread]:
    pool = kit._downloader._handoff._pool
    return [] if pool is None else list(pool._threads)


async def test_downloads_after_close_fail_with_client_closed_error_and_the_threads_end(
    server: Server, tmp_path: Path
) -> None:
    url = await _serve(server, "/after.mp3", MP3)
    kit = Client(retry=RetryPolicy.none())
    assert await kit.download(url, tmp_path / "first.mp3") == tmp_path / "first.mp3"
    threads = _disk_threads(kit)
    assert threads and all(t.name.startswith("imuzekit-disk") for t in threads)
    await kit.close()
    assert await _until(lambda: not any(t.is_alive() for t in threads))
    with pytest.raises(errors.ClientClosedError):
        await kit.download(url, tmp_path / "second.mp3")
    with pytest.raises(errors.ClientClosedError):
        [r async for r in kit.download_many([url, url], tmp_path / "many")]
    # The downloader itself says so in each result, and touches nothing (not even the folder).
    results = [r async for r in kit._downloader.download_many([url, url], tmp_path / "many")]
    assert [type(r.error) for r in results] == [errors.ClientClosedError] * 2
    assert [r.path for r in results] == [None, None]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.mp3"]


async def test_a_cancelled_close_still_ends_the_threads_once_the_downloads_are_done(
    server: Server, tmp_path: Path
) -> None:
    release = asyncio.Event()
    server.route("GET", "/slow.mp3", stalling(MP3, 100_000, release))
    url = await _serve(server, "/quick.mp3", MP3)
    kit = Client(retry=RetryPolicy.none())
    await kit.download(url, tmp_path / "quick.mp3")  # the pool exists
    threads = _disk_threads(kit)
    got_bytes = asyncio.Event()
    download = asyncio.ensure_future(
        kit.download(f"{server.url}/slow.mp3", tmp_path, on_progress=lambda *_: got_bytes.set())
    )
    try:
        await asyncio.wait_for(got_bytes.wait(), 5)
        closing = asyncio.ensure_future(kit.close())
        await asyncio.sleep(0)  # close() has cancelled the download and waits for it
        closing.cancel()
        await asyncio.gather(closing, return_exceptions=True)
        with pytest.raises(errors.ClientClosedError):
            await asyncio.wait_for(download, 5)
        assert await _until(lambda: not any(t.is_alive() for t in threads))
    finally:
        release.set()
        download.cancel()
        await asyncio.gather(download, return_exceptions=True)
        await kit.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["quick.mp3"]  # no .part left


_MOUNTINFO = """\
22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
25 22 0:23 / /dev/shm rw,nosuid,nodev shared:4 - tmpfs tmpfs rw,size=4096k
26 22 0:24 / /mnt/ram rw - ramfs none rw
27 22 0:25 / /run/user/0 rw,nosuid master:7 propagate_from:2 - tmpfs tmpfs rw,mode=700
28 22 259:1 /srv /data rw,relatime shared:1 - ext4 /dev/vda1 rw
29 22 0:26 / /broken rw,relatime no separator here at all
30 22 0:27 / /ends rw,relatime -
"""


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        ((259, 1), "ext4"),  # the root and its bind mount /data: one type
        ((0, 23), "tmpfs"),
        ((0, 24), "ramfs"),
        ((0, 25), "tmpfs"),  # two optional fields before the separator
        ((0, 26), None),  # no separator: no type rather than a guess
        ((0, 27), None),  # nothing after the separator
        ((8, 3), None),  # a device the table does not list
    ],
)
def test_mount_type_reads_the_field_after_the_separator(
    device: tuple[int, int], expected: str | None
) -> None:
    from imuzekit import _disk

    assert _disk.mount_type(_MOUNTINFO, *device) == expected


def test_memory_backed_says_no_where_it_cannot_tell(tmp_path: Path) -> None:
    from imuzekit import _disk

    assert _disk.memory_backed(tmp_path / "missing") is False  # no such folder
    if Path("/proc/self/mountinfo").exists():
        assert _disk.memory_backed(Path("/proc")) is False  # procfs is not a tmpfs
        shm = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
        if any(fields[1] == "/dev/shm" and fields[2] == "tmpfs" for fields in shm):
            assert _disk.memory_backed(Path("/dev/shm")) is True


@pytest.mark.parametrize("in_memory", [True, False])
async def test_a_folder_in_memory_publishes_on_the_loop_and_a_disk_through_threads(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_memory: bool
) -> None:
    from imuzekit import _disk, _handoff

    monkeypatch.setattr(_disk, "memory_backed", lambda directory: in_memory)
    handed_off: list[str] = []
    real_run = Handoff.run
    # The directory fsyncs, and whether each ran off the event loop's thread.
    directory_fsyncs: list[bool] = []
    real_fsync_directory = _handoff.fsync_directory

    def counting_fsync_directory(directory: Any) -> None:
        directory_fsyncs.append(threading.current_thread() is not threading.main_thread())
        real_fsync_directory(directory)

    monkeypatch.setattr(_handoff, "fsync_directory", counting_fsync_directory)

    async def counting_run(self: Handoff, func: Any, *args: Any) -> Any:
        handed_off.append(getattr(func, "__qualname__", repr(func)))
        return await real_run(self, func, *args)

    monkeypatch.setattr(Handoff, "run", counting_run)
    for number in range(3):
        server.route("GET", f"/song-{number}.mp3", lambda _: web.Response(body=MP3))
    await server.start()
    urls = [f"{server.url}/song-{number}.mp3" for number in range(3)]
    async with Client(retry=RetryPolicy.none()) as kit:
        first = [r async for r in kit.download_many(urls, tmp_path / "songs")]
        assert [r.error for r in first] == [None] * 3
        assert sorted(p.name for p in (tmp_path / "songs").iterdir()) == [
            "song-0.mp3",
            "song-1.mp3",
            "song-2.mp3",
        ]
        assert all(r.path is not None and r.path.read_bytes() == MP3 for r in first)
        commits = handed_off.count("Commit.run")
        assert commits == (0 if in_memory else 3)
        # On a disk one hand-off a file, whose thread also makes the new name durable (the
        # three files share one to three directory fsyncs); in memory neither.
        assert handed_off.count("Commit.run") == len(handed_off) - 1  # + creating the folder
        if in_memory:
            assert directory_fsyncs == []
        else:
            assert 1 <= len(directory_fsyncs) <= 3 and all(directory_fsyncs)
        # Published either way with its source record: a second run keeps every file.
        requests = len(server.seen)
        again = [r async for r in kit.download_many(urls, tmp_path / "songs")]
        assert sorted(r.path for r in again if r.path) == sorted(r.path for r in first if r.path)
        assert len(server.seen) == requests


async def test_download_many_makes_its_folder_again_when_it_goes_away_midway(
    server: Server, tmp_path: Path
) -> None:
    import shutil

    # download_many prepares its folder once, not once a file: a folder removed after that
    # (here, while the sources are read, before any transfer starts) is made again.
    for number in range(3):
        server.route("GET", f"/song-{number}.mp3", lambda _: web.Response(body=MP3))
    await server.start()
    folder = tmp_path / "songs"

    def sources() -> Any:
        shutil.rmtree(folder)
        assert not folder.exists()
        for number in range(3):
            yield f"{server.url}/song-{number}.mp3"

    async with Client(retry=RetryPolicy.none()) as kit:
        results = [r async for r in kit.download_many(sources(), folder)]
    assert [r.error for r in results] == [None] * 3
    assert sorted(p.name for p in folder.iterdir()) == ["song-0.mp3", "song-1.mp3", "song-2.mp3"]
    assert all(r.path is not None and r.path.read_bytes() == MP3 for r in results)
