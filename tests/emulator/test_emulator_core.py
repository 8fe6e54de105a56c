"""Clock, request log and counters, lifecycle, and the command line."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import aiohttp
import pytest

from imuzekit.emulator import Clock, Emulator, serve

from .conftest import api, call, create_song

# --- clock ---------------------------------------------------------------------------------


def test_frozen_clock_moves_only_when_advanced() -> None:
    clock = Clock(frozen=True)
    start = clock.now()
    time.sleep(0.01)
    assert clock.now() == start
    assert clock.advance(2.5) == start + 2.5
    assert clock.now() == start + 2.5


def test_running_clock_follows_real_time_plus_offset() -> None:
    clock = Clock()
    before = time.monotonic()
    clock.advance(100)
    now = clock.now()
    assert before + 100 <= now <= time.monotonic() + 100


def test_clock_rejects_going_back() -> None:
    clock = Clock()
    for bad in (-1, float("nan")):
        with pytest.raises(ValueError, match="forward"):
            clock.advance(bad)


def test_freeze_and_unfreeze_are_continuous() -> None:
    clock = Clock()
    clock.advance(10)
    clock.freeze()
    frozen_at = clock.now()
    time.sleep(0.01)
    assert clock.now() == frozen_at
    clock.unfreeze()
    assert frozen_at <= clock.now() < frozen_at + 1


def test_wall_is_unix_time_plus_advances_even_when_frozen() -> None:
    for clock in (Clock(), Clock(frozen=True)):
        before = time.time()
        assert before <= clock.wall() <= time.time()
        clock.advance(3600)
        now = clock.now()
        wall = clock.wall()
        assert before + 3600 <= wall <= time.time() + 3600
        # freeze()/unfreeze() move the monotonic offset around, never the wall clock.
        clock.freeze()
        clock.unfreeze()
        clock.freeze()
        assert clock.now() >= now
        assert wall <= clock.wall() <= time.time() + 3600


# --- request log and counters --------------------------------------------------------------


async def test_log_records_each_request(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.clock.advance(3)
    at = emu.clock.now()
    before = time.monotonic()
    created = await create_song(emu, http)
    await call(http, "GET", api(emu, "/songs?page=1&per_page=5"))
    await call(http, "GET", api(emu, f"/songs/{created['id']}"))
    await call(http, "GET", api(emu, "/arrangements/404"))
    entries = list(emu.requests)
    assert [(e.method, e.path, e.status) for e in entries] == [
        ("POST", "/songs", 201),
        ("GET", "/songs", 200),
        ("GET", f"/songs/{created['id']}", 200),
        ("GET", "/arrangements/404", 404),
    ]
    assert all(e.provider == "imuze" for e in entries)
    assert entries[1].query == {"page": "1", "per_page": "5"}
    assert entries[2].route == "/songs/{id}"
    assert all(e.at == at for e in entries)  # frozen clock
    assert before <= entries[0].wall <= entries[-1].wall <= time.monotonic()


async def test_counters_are_exact_beyond_the_log_limit(anon: aiohttp.ClientSession) -> None:
    async with Emulator(log_limit=3) as emu:
        headers = {"Authorization": emu.credentials["imuze"].token or ""}
        for _ in range(5):
            await call(anon, "GET", api(emu, "/arrangements"), headers=headers)
        for song_id in (1, 2):
            await call(anon, "GET", api(emu, f"/songs/{song_id}"), headers=headers)
        async with anon.head(api(emu, "/songs/1"), headers=headers):
            pass
        assert len(emu.requests) == 3
        assert [e.method for e in emu.requests] == ["GET", "GET", "HEAD"]
        assert emu.count("imuze") == 8
        assert emu.count("imuze", "GET") == 7
        assert emu.count("imuze", "get", "/arrangements") == 5
        assert emu.count("imuze", "GET", "/songs/*") == 2
        assert emu.count("imuze", "HEAD", "/songs/{id}") == 1
        assert emu.count("imuze", path_glob="/songs*") == 3
        assert emu.count("mureka") == 0
        emu.clear_requests()
        assert (len(emu.requests), emu.count("imuze")) == (0, 0)


async def test_paths_outside_providers_are_json_404(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    status, body = await call(anon, "GET", emu.base_url + "/elsewhere")
    assert (status, body) == (404, {"error": "Not found", "code": 404})
    assert [(e.provider, e.path) for e in emu.requests] == [("", "/elsewhere")]
    assert emu.count("imuze") == 0


# --- lifecycle -----------------------------------------------------------------------------


async def test_start_and_stop_are_idempotent(anon: aiohttp.ClientSession) -> None:
    emu = Emulator()
    assert not emu.running
    with pytest.raises(RuntimeError, match="not running"):
        _ = emu.base_url
    assert emu.port == 0
    await emu.start()
    url = emu.urls["imuze"]
    assert emu.port > 0
    assert emu.base_url == f"http://127.0.0.1:{emu.port}"
    await emu.start()
    assert emu.urls["imuze"] == url
    assert url.startswith("http://127.0.0.1:")
    assert url.endswith("/imuze/api/4")
    emu.imuze.create_song(title="kept", arrangement_id=2)
    await emu.stop()
    await emu.stop()
    assert not emu.running
    with pytest.raises(aiohttp.ClientConnectionError):
        await call(anon, "GET", url + "/arrangements")
    async with emu:  # restarts with the same state
        headers = {"Authorization": emu.credentials["imuze"].token or ""}
        status, body = await call(anon, "GET", api(emu, "/songs"), headers=headers)
        assert (status, body["count"]) == (200, 1)
    assert not emu.running


async def test_stop_closes_open_connections() -> None:
    emu = Emulator()
    await emu.start()
    url = api(emu, "/arrangements")
    async with aiohttp.ClientSession() as session:
        status, _ = await call(session, "GET", url)
        assert status == 401  # the connection is now idle in the pool
        await asyncio.wait_for(emu.stop(), 2)
        with pytest.raises(aiohttp.ClientConnectionError):
            await call(session, "GET", url)


def test_constructor_validates() -> None:
    with pytest.raises(ValueError, match="render_seconds"):
        Emulator(render_seconds=(3.0, 1.0))
    with pytest.raises(ValueError, match="render_seconds"):
        Emulator(render_seconds=-1)
    with pytest.raises(ValueError, match="log_limit"):
        Emulator(log_limit=-1)


async def test_serve_runs_until_stopped(anon: aiohttp.ClientSession) -> None:
    ready: list[Emulator] = []
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve("127.0.0.1", 0, render_seconds=0.5, on_ready=ready.append, stop=stop)
    )
    for _ in range(200):
        if ready:
            break
        await asyncio.sleep(0.01)
    (emu,) = ready
    status, _ = await call(anon, "GET", api(emu, "/arrangements"))
    assert status == 401
    assert emu.imuze.render_seconds == 0.5
    stop.set()
    await asyncio.wait_for(task, 5)
    assert not emu.running


def test_command_line_serves_and_prints_urls() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "imuzekit.emulator", "--port", "0", "--render-seconds", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C" in line:
                break
        output = "".join(lines)
        assert "http://127.0.0.1:" in output
        url = next(word for line in lines for word in line.split() if word.endswith("/imuze/api/4"))
        token_line = next(line for line in lines if "token=" in line)
        assert "email=demo@imuzekit.test" in token_line
        token = token_line.split("token=")[1].split()[0]

        async def probe() -> int:
            async with aiohttp.ClientSession() as session:
                status, _ = await call(
                    session, "GET", url + "/songs", headers={"Authorization": token}
                )
                return status

        assert asyncio.run(probe()) == 200
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        assert process.stderr is not None
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
