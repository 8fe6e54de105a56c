"""The emulated useapi.net calls ``replyUrl`` on created, completed and failed with the job's
``GET /jobs/{jobid}`` record, on its clock, with callback faults as data; and it can forge one.

A raw aiohttp recorder on 127.0.0.1 stands for the receiver here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web

from imuzekit.emulator import Clock, Emulator
from imuzekit.emulator._faults import CallbackFaults
from imuzekit.emulator.mureka.callbacks import FORGED_MP3_URL, Callback, Outbox

from .conftest import until

RENDER = 10.0
TIMEOUT = aiohttp.ClientTimeout(total=10)


@attrs.define
class Recorder:
    url: str = ""
    bodies: list[dict[str, Any]] = attrs.field(factory=list)
    answer: int = 200

    def events(self, jobid: str | None = None) -> list[str]:
        return [b["status"] for b in self.bodies if jobid is None or b.get("jobid") == jobid]


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    rec = Recorder()

    async def on_post(request: web.Request) -> web.Response:
        rec.bodies.append(await request.json())
        return web.Response(status=rec.answer)

    app = web.Application()
    app.router.add_post("/hook", on_post)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    yield rec
    await runner.cleanup()


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(render_seconds=RENDER, clock=Clock(frozen=True)) as emulator:
        yield emulator


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {emu.credentials['mureka'].token}"}
    async with aiohttp.ClientSession(headers=headers, timeout=TIMEOUT) as session:
        yield session


async def create(
    emu: Emulator, http: aiohttp.ClientSession, url: str, ref: str = "my-ref-1", **extra: Any
) -> dict[str, Any]:
    body = {"account": "12345678901234", "prompt": "a sunny tune", "async": True}
    body |= {"replyUrl": url, "replyRef": ref, **extra}
    async with http.post(emu.urls["mureka"] + "/music/create", json=body) as response:
        assert response.status == 201, await response.text()
        data: dict[str, Any] = await response.json()
        return data


async def get_job(emu: Emulator, http: aiohttp.ClientSession, jobid: str) -> dict[str, Any]:
    async with http.get(emu.urls["mureka"] + "/jobs/" + jobid) as response:
        assert response.status == 200
        data: dict[str, Any] = await response.json()
        return data


async def test_created_then_completed_carry_the_job_record(
    emu: Emulator, http: aiohttp.ClientSession, recorder: Recorder
) -> None:
    job = await create(emu, http, recorder.url)
    await until(lambda: len(recorder.bodies) == 1)
    created = recorder.bodies[0]
    assert created == job  # the record as the create answered it: status "created"
    assert created["request"]["replyRef"] == "my-ref-1"
    assert created["request"]["replyUrl"] == recorder.url
    emu.clock.advance(RENDER - 0.01)
    await until(lambda: emu.mureka.callbacks.pending == 1)
    assert len(recorder.bodies) == 1  # nothing before the generation ends
    emu.clock.advance(0.01)
    await until(lambda: len(recorder.bodies) == 2)
    completed = recorder.bodies[1]
    assert completed["status"] == "completed"
    assert completed == await get_job(emu, http, job["jobid"])
    assert completed["response"]["songs"][0]["mp3_url"].startswith(emu.base_url)
    assert [c.status for c in emu.mureka.callbacks.released] == [200, 200]


async def test_a_failed_generation_calls_back_failed(
    emu: Emulator, http: aiohttp.ClientSession, recorder: Recorder
) -> None:
    emu.mureka.fail_next()
    job = await create(emu, http, recorder.url)
    emu.clock.advance(RENDER)
    await until(lambda: len(recorder.bodies) == 2)
    failed = recorder.bodies[1]
    assert failed["status"] == "failed"
    assert failed == await get_job(emu, http, job["jobid"])
    assert failed["error"] == "Moderation failed"


async def test_no_reply_url_no_callbacks(
    emu: Emulator, http: aiohttp.ClientSession, recorder: Recorder
) -> None:
    body = {"account": "12345678901234", "prompt": "quiet", "async": True}
    async with http.post(emu.urls["mureka"] + "/music/create", json=body) as response:
        assert response.status == 201
    emu.clock.advance(RENDER)
    assert emu.mureka.callbacks.pending == 0
    assert list(emu.mureka.callbacks.released) == []


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"replyUrl": "ftp://me.example/h"}, "replyUrl: must be an http(s) URL"),
        ({"replyUrl": 5}, "replyUrl: must be a string"),
        ({"replyRef": "r" * 257}, "replyRef: must be at most 256 characters"),
        ({"replyRef": ["x"]}, "replyRef: must be a string"),
    ],
)
async def test_bad_reply_fields_answer_400(
    emu: Emulator, http: aiohttp.ClientSession, extra: dict[str, Any], problem: str
) -> None:
    body = {"account": "12345678901234", "prompt": "x", "async": True, **extra}
    async with http.post(emu.urls["mureka"] + "/music/create", json=body) as response:
        assert response.status == 400
        assert problem in (await response.json())["error"]
    assert emu.mureka.creations == 0


async def test_drop_duplicate_and_delay(
    emu: Emulator, http: aiohttp.ClientSession, recorder: Recorder
) -> None:
    faults = emu.mureka.callback_faults
    drop = faults.add("created", drop=True)
    twice = faults.add("completed", duplicate=2)
    first = await create(emu, http, recorder.url)
    emu.clock.advance(RENDER)
    await until(lambda: len(recorder.bodies) == 3)
    assert recorder.events(first["jobid"]) == ["completed"] * 3
    assert (drop.hits, twice.hits) == (1, 1)
    assert [c.event for c in emu.mureka.callbacks.dropped] == ["created"]
    late = faults.add("completed", delay=5.0)
    second = await create(emu, http, recorder.url)
    emu.clock.advance(RENDER)
    await until(lambda: recorder.events(second["jobid"]) == ["created"])
    await until(lambda: emu.mureka.callbacks.pending == 1)
    emu.clock.advance(4.9)
    await until(lambda: late.hits == 1)
    assert recorder.events(second["jobid"]) == ["created"]
    emu.clock.advance(0.1)
    await until(lambda: recorder.events(second["jobid"]) == ["created", "completed"])


async def test_reorder_sends_created_after_completed(
    emu: Emulator, http: aiohttp.ClientSession, recorder: Recorder
) -> None:
    emu.mureka.callback_faults.add("created", reorder=True)
    job = await create(emu, http, recorder.url)
    await until(lambda: emu.mureka.callbacks.next_due() is not None)
    emu.clock.advance(RENDER)
    await until(lambda: len(recorder.bodies) == 2)
    assert recorder.events(job["jobid"]) == ["completed", "created"]


async def test_a_forged_callback_claims_a_foreign_mp3(
    emu: Emulator, http: aiohttp.ClientSession, recorder: Recorder
) -> None:
    job = await create(emu, http, recorder.url)
    await until(lambda: len(recorder.bodies) == 1)
    sent = emu.mureka.send_forged_callback(jobid=job["jobid"], copy_ref=True)
    await until(lambda: sent.done)
    forged = recorder.bodies[1]
    assert sent.status == 200 and sent.forged
    assert forged["jobid"] == job["jobid"] and forged["status"] == "completed"
    assert forged["request"]["replyRef"] == "my-ref-1"
    assert {s["mp3_url"] for s in forged["response"]["songs"]} == {FORGED_MP3_URL}
    bare = emu.mureka.send_forged_callback(recorder.url, status="failed")
    await until(lambda: bare.done)
    assert "replyRef" not in recorder.bodies[2]["request"]
    with pytest.raises(ValueError, match="no url"):
        emu.mureka.send_forged_callback(jobid="unknown")


async def test_an_unreachable_receiver_is_recorded_not_raised(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    await create(emu, http, "http://127.0.0.1:9/closed")
    await until(lambda: bool(emu.mureka.callbacks.released))
    callback = emu.mureka.callbacks.released[0]
    await until(lambda: callback.done)
    assert callback.status is None and callback.error


def test_outbox_orders_and_faults_as_data() -> None:
    faults = CallbackFaults()
    box = Outbox(faults=faults)
    for jobid in ("a", "b"):
        box.schedule(Callback("http://x/h", "created", jobid, 0.0))
        box.schedule(Callback("http://x/h", "completed", jobid, 10.0))
    faults.add("created", reorder=True, times=1)
    assert [(c.jobid, c.event) for c in box.due(0.0)] == [("b", "created")]
    assert box.pending == 3
    assert box.due(9.99) == []
    released = box.due(10.0)
    assert [(c.jobid, c.event) for c in released] == [
        ("a", "completed"),
        ("a", "created"),
        ("b", "completed"),
    ]
    assert box.pending == 0


def test_callback_faults_need_exactly_one_effect() -> None:
    faults = CallbackFaults()
    with pytest.raises(ValueError, match="exactly one"):
        faults.add("completed")
    with pytest.raises(ValueError, match="exactly one"):
        faults.add("completed", drop=True, reorder=True)
    with pytest.raises(ValueError, match="event"):
        faults.add("finished", drop=True)
    with pytest.raises(ValueError, match="delay"):
        faults.add("created", delay=-1.0)
    every = faults.add(drop=True, times=None)
    assert every.active and len(faults) == 1
    faults.clear()
    assert len(faults) == 0


def test_forged_record_shape() -> None:
    from imuzekit.emulator.mureka.callbacks import forged_record

    record = forged_record(
        jobid="j", status="completed", account="1", url="http://x/h", reply_ref=None
    )
    assert json.loads(json.dumps(record))["response"]["songs"][0]["mp3_url"] == FORGED_MP3_URL
