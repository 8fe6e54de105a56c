"""Loggers per layer (issue 16, point 5): `imuzekit.downloads` logs one INFO line per resume or
restart of a transfer and one DEBUG line per file, with structured fields and no credential;
the batch runner logs as `imuzekit.batch`."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import imuzekit
from imuzekit import Client, PollPolicy, RetryPolicy, errors
from imuzekit.emulator import Emulator
from imuzekit.providers.imuze import Song
from tests.reliability._secrets import find_leaks

SECRET = "tok-" + "7" * 24


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(render_seconds=0.05) as emulator:
        yield emulator


@pytest.fixture
async def kit(emu: Emulator) -> AsyncIterator[Client]:
    poll = PollPolicy(initial=0.02, max_interval=0.05, timeout=10)
    async with emu.client(poll=poll, retry=RetryPolicy(backoff_base=0.01, backoff_max=0.02)) as c:
        yield c


async def _song(kit: Client) -> Song:
    job = await kit.imuze.songs.create(
        title="Morning Song", arrangement_id=1, tags=[], desired_length=4
    )
    return await job.wait(timeout=5)


def _lines(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "imuzekit.downloads" and r.levelno == level]


def _field(record: logging.LogRecord, name: str) -> Any:
    return record.__dict__.get(name)


def _secrets(emu: Emulator) -> list[str]:
    found = [SECRET, "pw-" + SECRET]
    for creds in emu.credentials.values():
        found += [s for s in (creds.password, creds.token, *creds.extra.values()) if s]
    return found


async def test_a_resumed_download_logs_one_info_line_and_one_debug_line(
    emu: Emulator, kit: Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    song = await _song(kit)
    emu.faults.add("imuze", "GET /files/*", truncate=10_000)
    with caplog.at_level(logging.DEBUG, logger="imuzekit"):
        path = await kit.download(song, tmp_path)
    size = path.stat().st_size
    [info] = _lines(caplog, logging.INFO)
    assert _field(info, "action") == "resume"
    assert _field(info, "attempt") == 2
    assert _field(info, "bytes") == 10_000
    assert _field(info, "provider") == "imuze"
    assert "resuming with Range" in info.getMessage() and "at byte 10000" in info.getMessage()
    [debug] = _lines(caplog, logging.DEBUG)
    assert _field(debug, "action") == "downloaded"
    assert _field(debug, "bytes") == size > 10_000
    assert _field(debug, "requests") == 2
    assert _field(debug, "provider") == "imuze"
    assert _field(debug, "url") == song.mp3_url
    assert 0 < _field(debug, "elapsed") < 10
    assert find_leaks(_secrets(emu), {"log": caplog.text}) == []


async def test_a_server_ignoring_range_logs_the_restart_from_zero(
    emu: Emulator, kit: Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    song = await _song(kit)
    emu.faults.add("imuze", "GET /files/*", truncate=10_000)
    emu.faults.add("imuze", "GET /files/*", ignore_range=True)
    with caplog.at_level(logging.INFO, logger="imuzekit.downloads"):
        await kit.download(song, tmp_path)
    infos = _lines(caplog, logging.INFO)
    assert [_field(r, "action") for r in infos] == ["resume", "restart"]
    assert _field(infos[1], "bytes") == 10_000  # what was thrown away
    assert "the server ignored Range; restarting from byte 0" in infos[1].getMessage()


async def test_every_retry_of_a_failing_download_is_one_info_line(
    emu: Emulator, kit: Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    song = await _song(kit)
    emu.faults.add("imuze", "GET /files/*", reset=True, times=None)
    with (
        caplog.at_level(logging.INFO, logger="imuzekit.downloads"),
        pytest.raises(errors.DownloadError),
    ):
        await kit.download(song, tmp_path)
    infos = _lines(caplog, logging.INFO)
    assert [(_field(r, "action"), _field(r, "attempt")) for r in infos] == [
        ("restart", 2),
        ("restart", 3),
        ("restart", 4),
    ]
    assert "(attempt 4 of 4)" in infos[-1].getMessage()
    assert _lines(caplog, logging.DEBUG) == []  # no file, no per-file line


async def test_a_kept_file_is_one_debug_line(
    kit: Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    song = await _song(kit)
    first = await kit.download(song, tmp_path)
    caplog.clear()  # only the second download's lines
    with caplog.at_level(logging.DEBUG, logger="imuzekit.downloads"):
        again = await kit.download(song, tmp_path)
    assert again == first
    [debug] = _lines(caplog, logging.DEBUG)
    assert _field(debug, "action") == "kept"
    assert _field(debug, "bytes") == first.stat().st_size


async def test_download_lines_carry_no_credential_from_the_url(
    emu: Emulator, kit: Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    song = await _song(kit)
    assert song.mp3_url is not None
    emu.faults.add("imuze", "GET /files/*", truncate=10_000)
    scheme, _, rest = song.mp3_url.partition("://")
    url = f"{scheme}://me:pw-{SECRET}@{rest}?token={SECRET}&size=1"
    with caplog.at_level(logging.DEBUG, logger="imuzekit.downloads"):
        await kit.download(url, tmp_path)
    records = [r for r in caplog.records if r.name == "imuzekit.downloads"]
    assert [r.levelno for r in records] == [logging.INFO, logging.DEBUG]
    for record in records:
        assert _field(record, "url") == f"{scheme}://***@{rest}?token=***&size=1"
    assert find_leaks([SECRET, f"pw-{SECRET}"], {"log": caplog.text}) == []


def test_the_sdk_logs_under_one_logger_per_layer() -> None:
    runner = importlib.import_module("imuzekit.batch._runner")
    assert runner._log.name == "imuzekit.batch"
    for module in pkgutil.walk_packages(imuzekit.__path__, "imuzekit."):
        if module.name.endswith("__main__"):
            continue
        importlib.import_module(module.name)
    names = {
        name
        for name, logger in logging.Logger.manager.loggerDict.items()
        if name.startswith("imuzekit.") and isinstance(logger, logging.Logger)
    }
    layers = {"imuzekit.http", "imuzekit.jobs", "imuzekit.downloads", "imuzekit.batch"}
    assert layers <= names
    # One logger per layer, named after it: never one per module (`imuzekit.cli.batch`).
    assert sorted(name for name in names if name.count(".") != 1) == []
