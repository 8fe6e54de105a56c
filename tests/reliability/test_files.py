"""Hostile names from the server: every download lands inside the folder, safely and uniquely.

Titles are served by the emulator (its song records), so they reach the SDK exactly as a
misbehaving server would send them. A full disk (a writer that fails) leaves no ``.part``.
"""

from __future__ import annotations

import builtins
import os
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from imuzekit import PollPolicy, RetryPolicy, errors
from imuzekit.emulator import Emulator

HOSTILE_TITLES = [
    "../../etc/passwd",
    "/abs",
    "/etc/shadow/../../x",
    "con.mp3",
    "CON",
    "nul",
    "a\x00b",
    "tab\tnew\nline\rbell\x07",
    "x" * 10_000,
    "é" * 5_000,
    "..",
    ".",
    "",
    " ",
    "\u202eevil\u202d.exe",
    "C:\\Windows\\system32",
    "caf\u00e9",  # NFC
    "cafe\u0301",  # NFD twin
    "same",
    "same",
]


async def test_hostile_titles_land_inside_with_safe_unique_names(tmp_path: Path) -> None:
    folder = tmp_path / "downloads"
    folder.mkdir()
    async with Emulator(render_seconds=0.01) as emu:
        policy = PollPolicy(initial=0.02, max_interval=0.05, timeout=5)
        async with emu.client(poll=policy) as kit:
            songs: list[Any] = []
            for _ in HOSTILE_TITLES:
                job = await kit.imuze.songs.create(
                    title="File Song", arrangement_id=1, tags=[], desired_length=1
                )
                songs.append(await job.wait(timeout=5))
            for song, title in zip(songs, HOSTILE_TITLES, strict=True):
                emu.imuze.songs[song.id].title = title
            fresh = [await kit.imuze.songs.get(song.id) for song in songs]
            assert [s.title for s in fresh] == HOSTILE_TITLES
            paths = [await kit.download(song, folder) for song in fresh]
            results = [r async for r in kit.download_many(fresh, tmp_path / "many")]
    many = [r.path for r in results]
    assert all(r.ok for r in results)
    for base, found in ((folder, paths), (tmp_path / "many", many)):
        resolved = [Path(os.path.realpath(p)) for p in found if p is not None]
        assert len(resolved) == len(HOSTILE_TITLES)
        assert all(p.parent == Path(os.path.realpath(base)) for p in resolved)
        names = [p.name for p in resolved]
        assert len(set(names)) == len(names), "two downloads shared a name"
        folded = {unicodedata.normalize("NFC", n).casefold() for n in names}
        assert len(folded) == len(names), "names differ only by normalisation or case"
        for name in names:
            assert name and name not in (".", "..") and len(name.encode()) <= 255
            assert not any(ord(c) < 32 or c in "/\\\x7f" for c in name)
            assert name.split(".")[0].upper() not in {"CON", "NUL", "PRN", "AUX"}
        assert sorted(os.listdir(base)) == sorted(names)  # nothing else was written
    assert not list(tmp_path.rglob("*.part"))
    assert {p.name for p in tmp_path.iterdir()} == {"downloads", "many"}


async def test_a_full_disk_leaves_nothing_and_raises_download_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "downloads"
    folder.mkdir()
    async with Emulator(render_seconds=0.01) as emu:
        policy = PollPolicy(initial=0.02, max_interval=0.05, timeout=5)
        async with emu.client(poll=policy, retry=RetryPolicy.none()) as kit:
            job = await kit.imuze.songs.create(
                title="full", arrangement_id=1, tags=[], desired_length=3
            )
            song = await job.wait(timeout=5)
            written = 0

            real_open = builtins.open

            class FullFile:
                """A file object whose writes fail once 1000 bytes went through."""

                def __init__(self, raw: Any) -> None:
                    self._raw = raw

                def write(self, data: Any) -> int:
                    nonlocal written
                    room = max(0, 1000 - written)
                    written += int(self._raw.write(bytes(data[:room])))
                    if len(data) > room:
                        raise OSError(28, "No space left on device")
                    return len(data)

                def __getattr__(self, name: str) -> Any:
                    return getattr(self._raw, name)

                def __enter__(self) -> FullFile:
                    return self

                def __exit__(self, *exc: object) -> None:
                    self._raw.close()

            def full_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
                handle = real_open(file, mode, *args, **kwargs)
                writing = "w" in mode or "a" in mode or "+" in mode
                if writing and str(file).startswith(str(folder)):
                    return FullFile(handle)
                return handle

            monkeypatch.setattr(builtins, "open", full_open)
            with pytest.raises(errors.DownloadError) as info:
                await kit.download(song, folder)
            monkeypatch.undo()
    assert written > 0, "the failing writer was never used: the test proves nothing"
    assert "No space left" in str(info.value) or isinstance(info.value.__cause__, OSError)
    assert list(folder.iterdir()) == []
