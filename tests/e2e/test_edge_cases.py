"""Regressions from review: each test fails without its fix."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from imuzekit import Client, ImuzeConfig, JobState, PollPolicy, RetryPolicy, errors
from imuzekit._http import Request
from imuzekit._transport import Transport
from imuzekit.emulator import Emulator
from imuzekit.emulator._mp3 import mp3_bytes
from tests._titles import numbered_title
from tests.e2e.conftest import FAST_RETRY


class FileServer:
    """Serves one MP3 with scripted misbehaviour."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.first_chunk = 0  # >0: write that many bytes, pause, then the rest
        self.align = 0  # >0: answer Range requests from an offset rounded down to this block
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        start = 0
        rng = request.headers.get("Range")
        if rng and self.align:
            wanted = int(rng.removeprefix("bytes=").split("-")[0])
            start = wanted - wanted % self.align
        body = self.data[start:]
        headers = {"Accept-Ranges": "bytes", "Content-Type": "audio/mpeg"}
        status = 200
        if rng and self.align:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(self.data) - 1}/{len(self.data)}"
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = len(body)
        await response.prepare(request)
        if self.first_chunk and not rng:
            await response.write(body[: self.first_chunk])
            await asyncio.sleep(0.05)
            await response.write(body[self.first_chunk :])
        elif not rng and self.align:
            await response.write(body[: len(body) // 2])  # then drop: force a resume
            assert request.transport is not None
            request.transport.close()
            return response
        else:
            await response.write(body)
        await response.write_eof()
        return response

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/a.mp3", self.handle)
        app.router.add_get("/big.json", self.big_json)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def big_json(self, _: web.Request) -> web.Response:
        body = gzip.compress(b'{"x": "' + b"a" * 5_000_000 + b'"}')
        return web.Response(
            body=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
        )


@pytest.fixture
async def files() -> AsyncIterator[FileServer]:
    server = FileServer(mp3_bytes(20, bitrate_kbps=64))
    await server.start()
    yield server
    assert server.runner is not None
    await server.runner.cleanup()


async def test_short_first_chunk_still_passes_the_format_check(
    files: FileServer, tmp_path: Path
) -> None:
    files.first_chunk = 5  # "ID3\x04\x00": not enough to judge the format
    async with Client() as kit:
        path = await kit.download(f"{files.url}/a.mp3", tmp_path / "a.mp3")
    assert path.read_bytes() == files.data


async def test_misaligned_206_is_never_taken_for_the_whole_file(
    files: FileServer, tmp_path: Path
) -> None:
    files.align = 4096
    async with Client(retry=FAST_RETRY) as kit:
        path = await kit.download(f"{files.url}/a.mp3", tmp_path / "a.mp3")
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(files.data).digest()


async def test_gzip_cannot_expand_past_the_body_limit(files: FileServer) -> None:
    transport = Transport(max_body_bytes=1_000_000)
    try:
        with pytest.raises(errors.ParseError, match="limit"):
            await transport.send(Request("GET", f"{files.url}/big.json"))
    finally:
        await transport.close()


async def test_two_downloads_to_one_target_do_not_corrupt_it(
    emu: Emulator, kit: Client, tmp_path: Path
) -> None:
    jobs = [
        await kit.imuze.songs.create(
            title=numbered_title(i, "Target"), arrangement_id=1, tags=[], desired_length=3 + i
        )
        for i in range(2)
    ]
    songs = [await job.wait(timeout=5) for job in jobs]
    target = tmp_path / "same.mp3"
    outcomes = await asyncio.gather(
        *(kit.download(song, target, overwrite=True) for song in songs), return_exceptions=True
    )
    assert all(
        not isinstance(o, BaseException) or isinstance(o, errors.ImuzekitError) for o in outcomes
    )
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    assert digest in {emu.imuze.audio_sha256(song.id) for song in songs}
    assert not list(tmp_path.glob("*.part"))


async def test_breaking_out_of_download_many_leaves_nothing_running(
    emu: Emulator, kit: Client, tmp_path: Path
) -> None:
    jobs = [
        await kit.imuze.songs.create(
            title=numbered_title(i, "Break"), arrangement_id=1, tags=[], desired_length=2
        )
        for i in range(6)
    ]
    songs = [await job.wait(timeout=5) for job in jobs]
    async for _ in kit.download_many(songs, tmp_path, concurrency=2):
        break

    def transfers_left() -> list[asyncio.Task[object]]:
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return [t for t in others if not t.done() and "one" in repr(t.get_coro())]

    # The abandoned generator is closed by asyncio's finalizer, which cancels the transfers;
    # each then removes its temporary file through a thread hand-off, which a loaded machine
    # can take well over 50 ms to run: every one of them must end, not within a fixed sleep.
    deadline = asyncio.get_running_loop().time() + 5.0
    while transfers_left() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    assert not transfers_left()
    assert not list(tmp_path.glob("*.part"))
    # The caller's own task was not cancelled by the abandoned iteration.
    await asyncio.sleep(0.01)


async def test_a_failing_progress_callback_is_a_result_error(
    emu: Emulator, kit: Client, tmp_path: Path
) -> None:
    song = await (
        await kit.imuze.songs.create(
            title="Progress Song", arrangement_id=1, tags=[], desired_length=2
        )
    ).wait(timeout=5)

    def explode(done: int, total: int | None) -> None:
        raise RuntimeError("progress display broke")

    results = [r async for r in kit.download_many([song], tmp_path, on_progress=explode)]
    assert isinstance(results[0].error, errors.DownloadError) and results[0].path is None
    assert not list(tmp_path.iterdir())


async def test_a_driver_error_reaches_the_waiter_at_once() -> None:
    async with Emulator(render_seconds=0.1) as emu, emu.client(retry=FAST_RETRY) as kit:
        job = kit.joplin.musics.job("no-such-music", policy=PollPolicy(initial=0.01, timeout=5))
        started = time.monotonic()
        with pytest.raises(errors.NotFoundError):
            await job.wait()
        assert time.monotonic() - started < 1.0
        assert isinstance(job.last_error, errors.NotFoundError)


async def test_cancel_then_wait_again_does_not_hang(emu: Emulator, kit: Client) -> None:
    job = await kit.imuze.songs.create(
        title="Rewait Song", arrangement_id=1, tags=[], desired_length=2
    )
    for _ in range(5):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(job.wait(timeout=5), 0.03)
    song = await job.wait(timeout=5)
    assert song.status == "ready" and job.state is JobState.READY


async def test_as_completed_goes_on_after_a_job_error(emu: Emulator, kit: Client) -> None:
    good = await kit.imuze.songs.create(
        title="Good Song", arrangement_id=1, tags=[], desired_length=2
    )
    ghost = kit.imuze.songs.job(999_999)
    done = [job async for job in kit.as_completed([ghost, good], timeout=5)]
    assert {job.id for job in done} == {good.id, ghost.id}
    assert good.state is JobState.READY
    assert isinstance(ghost.last_error, errors.NotFoundError)


async def test_rewaiting_keeps_the_cadence() -> None:
    async with Emulator(render_seconds=0.4) as emu:
        policy = PollPolicy(initial=1.0, max_interval=0.1, jitter=False, timeout=5)
        async with emu.client(poll=policy, retry=FAST_RETRY) as kit:
            job = await kit.imuze.songs.create(
                title="Kept Song", arrangement_id=1, tags=[], desired_length=2
            )
            started = time.monotonic()
            states = [snapshot.state async for snapshot in job.watch(timeout=5)]
            assert states[-1] is JobState.READY
            # First poll at 1.0 s finds it ready (rendered at 0.4 s); a watch that restarted
            # at `initial` after each change would take about 2 s.
            assert time.monotonic() - started < 1.6


async def test_tags_may_be_any_collection(emu: Emulator, kit: Client) -> None:
    job = await kit.imuze.songs.create(
        title="Set Tags", arrangement_id=1, tags={"a", "b"}, desired_length=2
    )
    assert job.result is not None and set(job.result.tags) == {"a", "b"}


def test_request_and_error_texts_do_not_show_credentials() -> None:
    request = Request("GET", "http://h/p?token=T0K3N&q=1", params={"api_key": "K3Y", "page": "2"})
    assert "T0K3N" not in repr(request) and "K3Y" not in repr(request)
    assert "page" in repr(request) and "q=1" in repr(request)


async def test_malformed_login_answer_does_not_quote_the_body(emu: Emulator) -> None:
    emu.faults.add("imuze", "POST /tokens", status=200, body='["SECRET-TOKEN-IN-A-LIST"]')
    config = ImuzeConfig(email="demo@imuzekit.test", password="x", base_url=emu.urls["imuze"])
    async with Client(imuze=config, retry=RetryPolicy.none()) as kit:
        with pytest.raises(errors.ParseError) as info:
            await kit.imuze.songs.get(1)
    assert "SECRET" not in str(info.value) and "SECRET" not in repr(info.value.body)


async def test_debug_logs_of_a_whole_session_hold_no_secret(
    emu: Emulator, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    secrets = [emu.credentials["imuze"].password, emu.credentials["joplin"].password]
    with caplog.at_level(logging.DEBUG, logger="imuzekit"):
        async with emu.client(retry=FAST_RETRY) as kit:
            await kit.imuze.login()
            await kit.joplin.login()
            job = await kit.imuze.songs.create(
                title="Logged Song", arrangement_id=1, tags=[], desired_length=2
            )
            await kit.download(await job.wait(timeout=5), tmp_path)
            tokens = [kit.imuze._auth._token, kit.joplin._auth._token]
    text = caplog.text + repr(kit) + job.token()
    for secret in [*secrets, *tokens]:
        assert secret and secret not in text
