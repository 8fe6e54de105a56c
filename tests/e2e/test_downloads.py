"""Downloads against the emulator: resume with Range, restart, integrity checks, no leftovers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from imuzekit import Client, errors
from imuzekit.emulator import Emulator
from imuzekit.providers.imuze import Song
from tests._titles import numbered_title


async def _ready_song(kit: Client, length: int = 4, title: str = "Track") -> Song:
    job = await kit.imuze.songs.create(
        title=title, arrangement_id=1, tags=[], desired_length=length
    )
    return await job.wait(timeout=5)


def _leftovers(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.exists() else []


async def test_cut_stream_resumes_with_range_and_matches_sha(
    emu: Emulator, kit: Client, tmp_path: Path
) -> None:
    song = await _ready_song(kit)
    emu.faults.add("imuze", "GET /files/*", truncate=10_000)
    path = await kit.download(song, tmp_path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == emu.imuze.audio_sha256(song.id)
    files = [r for r in emu.requests if r.path.startswith("/files/")]
    assert len(files) == 2
    assert files[1].status == 206  # the second request asked only for the rest


async def test_server_ignoring_range_gets_a_clean_restart(
    emu: Emulator, kit: Client, tmp_path: Path
) -> None:
    song = await _ready_song(kit)
    emu.faults.add("imuze", "GET /files/*", truncate=10_000)
    emu.faults.add("imuze", "GET /files/*", ignore_range=True)
    path = await kit.download(song, tmp_path)
    data = path.read_bytes()
    assert len(data) == len(emu.imuze.audio_bytes(song.id))
    assert hashlib.sha256(data).hexdigest() == emu.imuze.audio_sha256(song.id)
    statuses = [r.status for r in emu.requests if r.path.startswith("/files/")]
    assert statuses == [200, 200]


async def test_lying_content_length_is_integrity_error_with_nothing_left(
    emu: Emulator, kit: Client, tmp_path: Path
) -> None:
    song = await _ready_song(kit)
    size = len(emu.imuze.audio_bytes(song.id))
    emu.faults.add("imuze", "GET /files/*", content_length=size + 5000, times=None)
    with pytest.raises(errors.IntegrityError):
        await kit.download(song, tmp_path)
    assert _leftovers(tmp_path) == []


async def test_garbage_body_is_integrity_error_with_nothing_left(
    emu: Emulator, kit: Client, tmp_path: Path
) -> None:
    song = await _ready_song(kit)
    emu.faults.add("imuze", "GET /files/*", garbage=True)
    with pytest.raises(errors.IntegrityError, match="not a mp3"):
        await kit.download(song, tmp_path / "x.mp3")
    assert _leftovers(tmp_path) == []


async def test_persistent_resets_end_in_download_error(
    emu: Emulator, kit: Client, tmp_path: Path
) -> None:
    song = await _ready_song(kit)
    emu.faults.add("imuze", "GET /files/*", reset=True, times=None)
    with pytest.raises(errors.DownloadError):
        await kit.download(song, tmp_path)
    assert _leftovers(tmp_path) == []


async def test_existing_file_is_skipped_unless_overwrite(
    emu: Emulator, kit: Client, tmp_path: Path
) -> None:
    song = await _ready_song(kit)
    first = await kit.download(song, tmp_path)
    fetches = emu.count("imuze", "GET", "/files/*")
    again = await kit.download(song, tmp_path)
    assert again == first
    assert emu.count("imuze", "GET", "/files/*") == fetches
    await kit.download(song, tmp_path, overwrite=True)
    assert emu.count("imuze", "GET", "/files/*") == fetches + 1


async def test_progress_reports_bytes_and_total(emu: Emulator, kit: Client, tmp_path: Path) -> None:
    song = await _ready_song(kit, length=20)
    seen: list[tuple[int, int | None]] = []
    path = await kit.download(song, tmp_path, on_progress=lambda d, t: seen.append((d, t)))
    size = path.stat().st_size
    assert seen[-1] == (size, size)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


async def test_download_many_reports_failures_without_stopping_others(
    emu: Emulator, kit: Client, tmp_path: Path
) -> None:
    songs = [await _ready_song(kit, length=2, title=numbered_title(i)) for i in range(3)]
    emu.faults.add("imuze", f"GET /files/songs/{songs[1].id}/*", garbage=True)
    results = {r.source.id: r async for r in kit.download_many(songs, tmp_path)}
    assert results[songs[0].id].ok and results[songs[2].id].ok
    failed = results[songs[1].id]
    assert isinstance(failed.error, errors.IntegrityError) and failed.path is None
    assert len(_leftovers(tmp_path)) == 2


async def test_hostile_titles_land_inside_the_folder(
    emu: Emulator, kit: Client, tmp_path: Path
) -> None:
    titles = ["../../etc/passwd", "/abs", "con", "a\x01b", "x" * 250]
    # iMuze refuses such titles on create (letters and spaces only), but a song's title is
    # still the service's word on the way back: seed them, as a service's old data might be.
    seeded = [emu.imuze.create_song(title=t, arrangement_id=1, desired_length=1) for t in titles]
    emu.clock.advance(60)
    songs = [await kit.imuze.songs.get(record.id) for record in seeded]
    assert [(song.title, song.is_ready) for song in songs] == [(t, True) for t in titles]
    results = [r async for r in kit.download_many(songs, tmp_path)]
    assert all(r.ok for r in results)
    for result in results:
        assert result.path is not None
        assert result.path.resolve().parent == tmp_path.resolve()


async def test_processing_song_and_bad_sources_are_refused(kit: Client, tmp_path: Path) -> None:
    job = await kit.imuze.songs.create(
        title="Processing Song", arrangement_id=1, tags=[], desired_length=2
    )
    assert job.result is not None
    with pytest.raises(errors.ValidationError, match="not ready"):
        await kit.download(job.result, tmp_path)
    with pytest.raises(errors.ValidationError):
        await kit.download("ftp://example.test/a.mp3", tmp_path)
    with pytest.raises(errors.ValidationError):
        await kit.download(42, tmp_path)


def test_renames_share_directory_fsyncs_and_each_waits_for_one_that_began_after_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import threading
    import time

    from imuzekit import _handoff

    began: list[float] = []

    def slow_fsync(directory: str | Path) -> None:
        began.append(time.monotonic())
        time.sleep(0.02)

    monkeypatch.setattr(_handoff, "fsync_directory", slow_fsync)
    sync = _handoff.DirectorySync()
    returned: dict[int, tuple[float, float]] = {}

    # As the downloader's worker threads call it, each right after its rename.
    def caller(number: int, delay: float) -> None:
        time.sleep(delay)
        called = time.monotonic()
        sync.sync(str(tmp_path))
        returned[number] = (called, time.monotonic())

    threads = [threading.Thread(target=caller, args=(n, 0.0 if n < 8 else 0.01)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(returned) == 16
    # Sixteen renames, a handful of fsyncs (one per wave), never one per file.
    assert 1 <= len(began) <= 3
    for called, done in returned.values():
        # Every caller got back only after an fsync that started after it called finished.
        assert any(start >= called and start + 0.02 <= done + 1e-3 for start in began)


async def test_download_many_lands_every_file_with_fewer_directory_fsyncs(
    emu: Emulator, kit: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imuzekit import _disk, _handoff

    # A disk, also where tmp_path is a tmpfs (which has no directory fsync to share).
    monkeypatch.setattr(_disk, "memory_backed", lambda directory: False)
    calls: list[Path] = []
    real = _handoff.fsync_directory
    monkeypatch.setattr(_handoff, "fsync_directory", lambda d: (calls.append(d), real(d)))
    songs = [await _ready_song(kit, length=2, title=numbered_title(n)) for n in range(6)]
    results = [r async for r in kit.download_many(songs, tmp_path, concurrency=6)]
    assert all(r.ok for r in results) and len(results) == 6
    for result in results:
        assert result.path is not None and result.path.parent == tmp_path
        assert result.path.read_bytes() == emu.imuze.audio_bytes(result.source.id)
    assert {Path(directory) for directory in calls} == {tmp_path} and 1 <= len(calls) <= 6


async def test_waiting_sources_hold_no_open_file(
    emu: Emulator, kit: Client, tmp_path: Path
) -> None:
    song = await _ready_song(kit, length=3)
    seen: list[int] = []

    def parts_now(done: int, total: int | None) -> None:
        seen.append(len(list(tmp_path.glob("*.part"))))

    results = [
        r
        async for r in kit.download_many(
            [song] * 20, tmp_path, concurrency=2, on_progress=parts_now
        )
    ]
    assert all(r.ok for r in results) and len({r.path for r in results}) == 20
    # Only the two transfers in their slots and at most two files being committed have a .part
    # file; the sources waiting for a slot have opened nothing yet.
    assert seen and seen[0] <= 2 and max(seen) <= 4
    assert not list(tmp_path.glob("*.part"))
    expected = emu.imuze.audio_bytes(song.id)
    assert all(r.path is not None and r.path.read_bytes() == expected for r in results)
