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
            assert len(stuck) == 2  # no third thread was started on the hung disk
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

    live = tmp_path / "live.mp3.ffeeddccbbaa.part"
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
