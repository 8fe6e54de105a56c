"""Issue 14's follow-up: what a review of the downloader's disk handling found.

Hostile source records, a hung disk's thread limit, publication without hard links, the sweep
of dead writers' files, nothing published by a download that raised, sidecar records where
there are no extended attributes, and hashing that never follows a symlink.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from imuzekit import Client, RetryPolicy, errors
from tests.transport.conftest import Server

FAST_RETRY = RetryPolicy(backoff_base=0.01, backoff_max=0.02)


# -- issue 14 follow-up: what the review found ---------------------------------------------


MP3 = b"\xff\xfb\x90\x00" + bytes(range(256)) * 20


async def _serve(server: Server, path: str, body: bytes, etag: str | None = None) -> str:
    headers = {"ETag": etag} if etag else {}
    server.route("GET", path, lambda _: web.Response(body=body, headers=headers))
    await server.start()
    return f"{server.url}{path}"


def _can_set_xattr(path: Path) -> bool:
    try:
        os.setxattr(path, "user.imuzekit.probe", b"1")
    except (AttributeError, OSError):
        return False
    return True


@pytest.mark.parametrize("planted", [b"[" * 4000, b"[" * 1000])
async def test_a_hostile_source_record_is_no_record_never_a_crash(
    server: Server, tmp_path: Path, planted: bytes
) -> None:
    target = tmp_path / "a.mp3"
    target.write_bytes(b"someone else's file")
    if not _can_set_xattr(target):
        pytest.skip("no user extended attributes on this file system")
    # Arrives with the file through `rsync -X` or `tar --xattrs`.
    os.setxattr(target, "user.imuzekit.source", planted)
    url = await _serve(server, "/a.mp3", MP3)
    async with Client(retry=RetryPolicy.none()) as kit:
        path = await kit.download(url, target)
    assert path == tmp_path / "a-2.mp3" and path.read_bytes() == MP3
    assert target.read_bytes() == b"someone else's file"


@pytest.mark.parametrize("hung", ["fsync", "directory fsync"])
async def test_a_hung_disk_holds_at_most_its_limit_of_threads(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hung: str
) -> None:
    from imuzekit import _disk, _handoff, downloads

    unblock = threading.Event()
    stuck: list[int] = []

    def hang(*_: Any) -> None:
        stuck.append(1)
        unblock.wait(10)

    monkeypatch.setattr(downloads, "_DISK_THREADS", 2)
    # A disk, also where tmp_path is a tmpfs (whose files are published on the loop).
    monkeypatch.setattr(_disk, "memory_backed", lambda directory: False)
    if hung == "fsync":
        monkeypatch.setattr(_disk, "_fsync_file", hang)
    else:
        monkeypatch.setattr(_handoff, "fsync_directory", hang)
    url = await _serve(server, "/x.mp3", MP3)
    try:
        async with Client(retry=RetryPolicy.none()) as kit:
            kit._downloader.disk_timeout = 0.2
            failures = []
            for number in range(2):
                with pytest.raises(errors.DownloadError, match="did not") as info:
                    await kit.download(url, tmp_path / f"{number}.mp3")
                failures.append(str(info.value))
            started = time.monotonic()
            with pytest.raises(errors.DownloadError, match="has not answered 2 calls"):
                await kit.download(url, tmp_path / "2.mp3")
            assert time.monotonic() - started < 0.15  # at once, not after another deadline
            # Both threads are stuck and no third was started on the hung disk. Behind a hung
            # directory fsync the second download's thread waits for it (the fsyncs are a
            # group commit) instead of starting one of its own.
            assert kit._downloader._handoff.stuck == 2
            assert len(stuck) == (2 if hung == "fsync" else 1)
    finally:
        unblock.set()
    await asyncio.sleep(0.2)  # the abandoned calls return and clean up after themselves
    if hung == "fsync":
        assert sorted(p.name for p in tmp_path.iterdir()) == []
    else:
        # Its removal was refused too (the disk is taken for dead): the error says so.
        assert "'1.mp3' could not be removed" in failures[1]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["1.mp3"]


def _publish(target: Path, body: bytes, url: str, etag: str | None = None) -> Path:
    from imuzekit import _disk

    part, handle = _disk.open_part(target)
    handle.write(body)
    commit = _disk.Commit(handle, part, target, url=url, size=len(body), etag=etag, overwrite=False)
    return commit.run()


def test_without_hard_links_two_publications_to_one_name_never_overwrite_each_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imuzekit import _disk

    def no_link(*_: Any, **__: Any) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")  # FAT, some SMB shares

    real_replace = os.replace
    both = threading.Barrier(2, timeout=2)

    def replace(src: Any, dst: Any) -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            both.wait()  # both writers decided where to go before either renames
        real_replace(src, dst)

    monkeypatch.setattr(_disk.os, "link", no_link)
    monkeypatch.setattr(_disk.os, "replace", replace)
    target = tmp_path / "song.mp3"
    bodies = {"https://a.example/1": b"one" * 100, "https://a.example/2": b"two" * 100}
    with ThreadPoolExecutor(2) as pool:
        futures = {url: pool.submit(_publish, target, body, url) for url, body in bodies.items()}
        paths = {url: future.result(5) for url, future in futures.items()}
    assert len(set(paths.values())) == 2
    for url, path in paths.items():
        assert path.read_bytes() == bodies[url]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song-2.mp3", "song.mp3"]


def test_without_hard_links_a_real_failure_is_raised_not_taken_for_no_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imuzekit import _disk

    def no_entry(*_: Any, **__: Any) -> None:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory")

    monkeypatch.setattr(_disk.os, "link", no_entry)
    with pytest.raises(FileNotFoundError):
        _publish(tmp_path / "song.mp3", b"x" * 10, "https://a.example/1")
    assert not (tmp_path / "song.mp3").exists()


def test_an_old_temporary_file_whose_writer_holds_its_lock_survives_the_sweep(
    tmp_path: Path,
) -> None:
    from imuzekit import _disk

    live = tmp_path / "live.mp3.imuzekit-ffeeddccbbaa.part"
    live.write_bytes(b"\0" * 100)
    # Written "a week ago" by the clock of this machine: another NFS client's clock differs,
    # or the transfer stalled; its writer is alive and holds the lock.
    week_ago = time.time() - 7 * 24 * 3600
    os.utime(live, (week_ago, week_ago))
    with open(live, "rb") as writer:
        fcntl.flock(writer.fileno(), fcntl.LOCK_EX)
        _disk.prepare_directory(tmp_path, True)
        assert live.exists()
    _disk.prepare_directory(tmp_path, True)  # its writer is gone now: removed
    assert not live.exists()


@pytest.mark.parametrize("hung", ["link", "directory fsync"])
async def test_a_download_that_raised_has_published_nothing(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hung: str
) -> None:
    from imuzekit import _disk, _handoff, downloads

    unblock = threading.Event()
    returned = threading.Event()
    real_link = os.link

    def slow_link(src: Any, dst: Any, **kwargs: Any) -> None:
        unblock.wait(5)  # the disk answers only after the caller was told it failed
        try:
            real_link(src, dst, **kwargs)
        finally:
            returned.set()

    def hung_directory(directory: Path) -> None:
        unblock.wait(5)

    # A disk, also where tmp_path is a tmpfs (whose files are published on the loop).
    monkeypatch.setattr(_disk, "memory_backed", lambda directory: False)
    if hung == "link":
        monkeypatch.setattr(_disk.os, "link", slow_link)
        # The caller's part removal must not win the race: the worker publishes first.
        monkeypatch.setattr(downloads, "_remove", lambda path: None)
    else:
        monkeypatch.setattr(_handoff, "fsync_directory", hung_directory)
    url = await _serve(server, "/x.mp3", MP3)
    try:
        async with Client(retry=RetryPolicy.none()) as kit:
            kit._downloader.disk_timeout = 0.2
            with pytest.raises(errors.DownloadError, match="did not"):
                await kit.download(url, tmp_path / "x.mp3")
    finally:
        unblock.set()
    if hung == "link":
        assert returned.wait(5)
        await asyncio.sleep(0.1)  # the worker's check after its link
    assert not (tmp_path / "x.mp3").exists()


async def test_without_extended_attributes_a_sidecar_record_adopts_the_same_source(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As on macOS and Windows (no os.getxattr / os.setxattr at all), or FAT and NFSv3.
    monkeypatch.delattr(os, "getxattr", raising=False)
    monkeypatch.delattr(os, "setxattr", raising=False)
    url = await _serve(server, "/song.mp3", MP3)
    async with Client(retry=RetryPolicy.none()) as kit:
        paths = [await kit.download(url, tmp_path) for _ in range(3)]
        assert paths == [tmp_path / "song.mp3"] * 3
        assert len(server.times) == 1  # adopted the 2nd and 3rd times: not fetched again
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            ".song.mp3.imuzekit-source",
            "song.mp3",
        ]
        sidecar = (tmp_path / ".song.mp3.imuzekit-source").read_text()
        assert "127.0.0.1" not in sidecar and "song.mp3" not in sidecar  # the URL is hashed
        # A foreign file without a record still gets a new name.
        foreign = tmp_path / "mine.mp3"
        foreign.write_bytes(MP3)
        assert await kit.download(url, foreign) == tmp_path / "mine-2.mp3"
        # The record names its file: one later put under that name (ours deleted, the hidden
        # sidecar left behind), even of the same size, is not adopted.
        (tmp_path / "song.mp3").unlink()
        (tmp_path / "song.mp3").write_bytes(MP3[::-1])
        again = await kit.download(url, tmp_path / "song.mp3")
    assert again == tmp_path / "song-2.mp3" and again.read_bytes() == MP3
    assert (tmp_path / "song.mp3").read_bytes() == MP3[::-1]


def test_another_version_of_the_same_url_published_meanwhile_is_not_adopted(
    tmp_path: Path,
) -> None:
    target = tmp_path / "song.mp3"
    url = "https://cdn.example/song.mp3"
    assert _publish(target, b"v1" * 50, url, etag='"v1"') == target
    # The same URL and size, another ETag: another file, never taken for this one.
    second = _publish(target, b"v2" * 50, url, etag='"v2"')
    assert second == tmp_path / "song-2.mp3" and second.read_bytes() == b"v2" * 50
    assert _publish(target, b"v1" * 50, url, etag='"v1"') == target  # same version: adopted


def test_hashing_a_file_never_follows_a_symlink(tmp_path: Path) -> None:
    from imuzekit import _disk

    secret = tmp_path / "secret"
    secret.write_bytes(b"not yours")
    link = tmp_path / "song.mp3"
    link.symlink_to(secret)
    with pytest.raises(OSError, match=r"symbolic links|Too many levels") as info:
        _disk.hash_file(link)
    assert info.value.errno == errno.ELOOP


async def test_download_many_of_names_without_an_extension_lands_them_in_the_folder(
    server: Server, tmp_path: Path
) -> None:
    # A name without a suffix was taken for a folder to create: each file landed in a folder
    # of its own name (many/intro/intro). A folder squatting a name gets the next free one.
    for name, body in [("intro", MP3), ("outro", MP3 + b"!"), ("taken.mp3", MP3 + b"?")]:
        server.route("GET", f"/files/{name}", lambda _, body=body: web.Response(body=body))
    await server.start()
    intro, outro, squatted = (
        f"{server.url}/files/{name}" for name in ("intro", "outro", "taken.mp3")
    )
    many = tmp_path / "many"
    (many / "taken.mp3").mkdir(parents=True)
    async with Client(retry=RetryPolicy.none()) as kit:
        results = [r async for r in kit.download_many([intro, outro, squatted], many)]
    paths = {r.source: r.path for r in results}
    assert all(r.ok for r in results), [r.error for r in results]
    assert paths == {intro: many / "intro", outro: many / "outro", squatted: many / "taken-2.mp3"}
    assert (many / "outro").read_bytes() == MP3 + b"!"
    assert sorted(p.name for p in many.iterdir()) == ["intro", "outro", "taken-2.mp3", "taken.mp3"]
    assert list((many / "taken.mp3").iterdir()) == []  # nothing went into the squatting folder


async def test_a_transfer_that_breaks_before_the_head_is_still_format_checked(
    server: Server, tmp_path: Path
) -> None:
    # The format was checked only on an answer that started at byte 0: a first attempt that
    # broke before 4 KiB and a resumed 206 published an HTML page as song.mp3.
    body = b"<html>" + b"x" * 9994
    ranges: list[str | None] = []

    async def breaks_then_resumes(request: web.Request) -> web.StreamResponse:
        headers = {"ETag": '"v1"', "Accept-Ranges": "bytes"}
        wanted = request.headers.get("Range")
        ranges.append(wanted)
        if wanted is None:
            response = web.StreamResponse(headers={**headers, "Content-Length": str(len(body))})
            await response.prepare(request)
            await response.write(body[:1000])
            assert request.transport is not None
            request.transport.close()  # the connection breaks at byte 1000
            return response
        start = int(wanted.removeprefix("bytes=").rstrip("-"))
        headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
        return web.Response(status=206, body=body[start:], headers=headers)

    server.route("GET", "/song.mp3", breaks_then_resumes)
    await server.start()
    async with Client(retry=FAST_RETRY) as kit:
        with pytest.raises(errors.IntegrityError, match="not a mp3 file"):
            await kit.download(f"{server.url}/song.mp3", tmp_path)
    assert ranges == [None, "bytes=1000-"]  # it did resume: the check spans both answers
    assert list(tmp_path.iterdir()) == []


async def test_no_download_takes_the_form_of_a_temporary_file_the_sweep_removes(
    server: Server, tmp_path: Path
) -> None:
    # A source named like a temporary file was published under that name, and the next
    # download into the folder swept it away as a dead writer's.
    url = await _serve(server, "/files/backup.imuzekit-0123456789ab.part", MP3)
    async with Client(retry=RetryPolicy.none()) as kit:
        results = [r async for r in kit.download_many([url], tmp_path)]
        assert results[0].path == tmp_path / "backup.imuzekit-0123456789ab_part"
        with pytest.raises(errors.ValidationError, match="temporary files"):
            await kit.download(url, tmp_path / "x.mp3.imuzekit-0123456789ab.part")
        again = [r async for r in kit.download_many([url], tmp_path / "other")]
        assert again[0].ok
        await kit.download(url, tmp_path / "third.mp3")  # a sweep of tmp_path ran before it
    assert (tmp_path / "backup.imuzekit-0123456789ab_part").read_bytes() == MP3


async def test_a_target_name_near_the_length_limit_still_downloads(
    server: Server, tmp_path: Path
) -> None:
    # The temporary name added 18 bytes to the target's and passed 255 (ENAMETOOLONG).
    url = await _serve(server, "/a.mp3", MP3)
    target = tmp_path / ("z" * 240 + ".mp3")
    async with Client(retry=RetryPolicy.none()) as kit:
        assert await kit.download(url, target) == target
    assert target.read_bytes() == MP3
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


async def test_sources_that_raise_part_way_leave_no_download_running(
    server: Server, tmp_path: Path
) -> None:
    # The tasks were made before the iteration's try/finally: a sources iterable that raised
    # left the downloads it had started running unseen, and they published their files.
    url = await _serve(server, "/a.mp3", MP3)

    def sources() -> Iterator[str]:
        yield url
        yield url
        raise RuntimeError("the source list broke")

    async with Client(retry=RetryPolicy.none()) as kit:
        with pytest.raises(RuntimeError, match="source list broke"):
            [r async for r in kit.download_many(sources(), tmp_path / "many")]
        await asyncio.sleep(0.3)  # a download left running would have finished by now
        running = [t for t in kit._downloader._tasks if not t.done()]
        assert running == []
    assert list((tmp_path / "many").iterdir()) == []  # nothing published, no .part left


async def test_a_rerun_in_another_order_finds_each_sources_copy_under_its_sibling_name(
    server: Server, tmp_path: Path
) -> None:
    # Two sources named song.mp3: the second became song-2.mp3. A later run in the other order
    # gave each the other's name, downloaded both again and published A as song-2-2.mp3; and
    # download() beside a user's song.mp3 downloaded again on every run.
    gets: list[str] = []

    def counted(body: bytes) -> Any:
        def handler(request: web.Request) -> web.Response:
            gets.append(request.path)
            return web.Response(body=body)

        return handler

    server.route("GET", "/a/song.mp3", counted(MP3 + b"A"))
    server.route("GET", "/b/song.mp3", counted(MP3 + b"B"))
    await server.start()
    a, b = f"{server.url}/a/song.mp3", f"{server.url}/b/song.mp3"
    many = tmp_path / "many"
    for order, expected_gets in (([a, b], 2), ([b, a], 0), ([a, b], 0)):
        gets.clear()
        async with Client(retry=RetryPolicy.none()) as kit:
            results = {r.source: r.path async for r in kit.download_many(order, many)}
        assert results == {a: many / "song.mp3", b: many / "song-2.mp3"}
        assert len(gets) == expected_gets
    assert sorted(p.name for p in many.iterdir() if not p.name.startswith(".")) == [
        "song-2.mp3",
        "song.mp3",
    ]
    assert (many / "song-2.mp3").read_bytes() == MP3 + b"B"

    single = tmp_path / "single"
    single.mkdir()
    (single / "song.mp3").write_bytes(b"the user's own file")
    async with Client(retry=RetryPolicy.none()) as kit:
        gets.clear()
        paths = [await kit.download(a, single) for _ in range(3)]
    assert paths == [single / "song-2.mp3"] * 3
    assert len(gets) == 1  # downloaded once, then found under its sibling name
    assert (single / "song.mp3").read_bytes() == b"the user's own file"


async def test_a_download_into_the_working_directory_fsyncs_that_directory(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imuzekit import _disk, _handoff

    # A disk, also where tmp_path is a tmpfs (whose files are published on the loop).
    monkeypatch.setattr(_disk, "memory_backed", lambda directory: False)
    synced: list[Any] = []
    real = _handoff.fsync_directory
    monkeypatch.setattr(_handoff, "fsync_directory", lambda d: (synced.append(d), real(d)))
    server.route("GET", "/b.mp3", lambda _: web.Response(body=MP3))
    url = await _serve(server, "/a.mp3", MP3)
    other = url.replace("/a.mp3", "/b.mp3")
    monkeypatch.chdir(tmp_path)
    async with Client(retry=RetryPolicy.none()) as kit:
        path = await kit.download(url, "a.mp3")  # a relative name: its folder is "."
        results = [r async for r in kit.download_many([other], ".")]
    assert path == Path("a.mp3") and path.read_bytes() == MP3
    assert results[0].error is None and results[0].path == Path("b.mp3")
    assert len(synced) == 2
    # Each rename's folder was fsynced: never "" (no path, which fails to open unseen).
    assert synced and all(os.path.samefile(d, tmp_path) for d in synced), synced


async def test_a_hung_directory_fsync_in_one_folder_does_not_hold_another(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imuzekit import _disk, _handoff

    monkeypatch.setattr(_disk, "memory_backed", lambda directory: False)
    unblock = threading.Event()
    real = _handoff.fsync_directory

    def fsync_directory(directory: Any) -> None:
        if os.path.basename(os.fspath(directory)) == "dead":
            unblock.wait(10)
        real(directory)

    monkeypatch.setattr(_handoff, "fsync_directory", fsync_directory)
    url = await _serve(server, "/a.mp3", MP3)
    try:
        async with Client(retry=RetryPolicy.none()) as kit:
            kit._downloader.disk_timeout = 0.3
            with pytest.raises(errors.DownloadError, match="directory fsync"):
                await kit.download(url, tmp_path / "dead" / "a.mp3")
            started = time.monotonic()
            for number in range(3):  # each would wait behind the hung fsync with one lock
                path = await kit.download(url, tmp_path / "alive" / f"{number}.mp3")
                assert path.read_bytes() == MP3
            assert time.monotonic() - started < 0.3
            assert kit._downloader._handoff.stuck == 1
    finally:
        unblock.set()


async def test_a_directory_fsync_the_disk_failed_fails_the_download_and_publishes_nothing(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import stat

    from imuzekit import _disk, _handoff

    monkeypatch.setattr(_disk, "memory_backed", lambda directory: False)
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):  # the file's own fsync works, its folder's not
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(_handoff.os, "fsync", fsync)
    url = await _serve(server, "/a.mp3", MP3)
    async with Client(retry=RetryPolicy.none()) as kit:
        with pytest.raises(errors.DownloadError, match="Input/output error"):
            await kit.download(url, tmp_path / "a.mp3")
        results = [r async for r in kit.download_many([url], tmp_path / "many")]
    assert isinstance(results[0].error, errors.DownloadError) and results[0].path is None
    # The rename may not have reached the disk: the name is taken back, nothing stays.
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["many"]
