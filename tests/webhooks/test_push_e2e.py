"""Push end to end: the SDK creates Mureka songs on the emulator with ``replyUrl``/``replyRef``
from `Webhooks`, the emulator calls back (with faults), and a job changes only through the
confirming ``GET /jobs/{jobid}``, once per real completion.

What the Client will wire (``Client(webhooks=...)``) is done here by hand, the same way:
``reply()`` before the create, ``register(jobid, ref, confirm)`` after it, ``settle`` when done.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import aiohttp
import attrs
import pytest

from imuzekit import Client, Job, JobState
from imuzekit.emulator import Clock, Emulator
from imuzekit.emulator.mureka.callbacks import FORGED_MP3_URL
from imuzekit.providers.mureka import Feed
from imuzekit.webhooks import Listener, Webhooks

from .conftest import JSON, SECRET, until

RENDER = 10.0


@attrs.define
class Push:
    emu: Emulator
    kit: Client
    hooks: Webhooks
    listener: Listener
    confirms: dict[str, int] = attrs.field(factory=dict)

    async def create(self, prompt: str = "a sunny ska tune about trains") -> Job[Feed]:
        reply = self.hooks.reply()
        job = await self.kit.mureka.music.create(
            prompt, account="12345678901234", reply_url=reply.url, reply_ref=reply.ref
        )

        async def confirm() -> bool:  # one authenticated GET /jobs/{jobid}
            self.confirms[job.id] = self.confirms.get(job.id, 0) + 1
            await job.refresh()
            return job.done

        assert self.hooks.register(job.id, reply.ref, confirm, account="12345678901234")
        job.add_done_callback(lambda done: self.hooks.settle(done.id))
        return job

    def status_gets(self) -> int:
        return self.emu.count("mureka", "GET", "/jobs/*")


@pytest.fixture
async def push() -> AsyncIterator[Push]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    hooks = Webhooks(public_url=f"http://127.0.0.1:{port}/hooks/imuzekit", secret=SECRET)
    async with (
        Emulator(render_seconds=RENDER, clock=Clock(frozen=True)) as emu,
        hooks.listen(sock=sock) as listener,
        emu.client() as kit,
    ):
        yield Push(emu, kit, hooks, listener)
        await hooks.aclose()


async def test_completed_callbacks_confirm_each_job_once(push: Push) -> None:
    jobs = [await push.create() for _ in range(3)]
    await until(lambda: push.hooks.stats().ignored == 3)  # the three "created" callbacks
    assert push.status_gets() == 0
    push.emu.clock.advance(RENDER)
    await until(lambda: all(job.done for job in jobs))
    await push.hooks.drain()
    assert all(job.state is JobState.READY for job in jobs)
    assert push.confirms == {job.id: 1 for job in jobs}
    assert push.status_gets() == 3  # one confirming GET per job, no polling
    assert [c.status for c in push.emu.mureka.callbacks.released] == [200] * 3 + [202] * 3
    for job in jobs:
        assert job.result is not None
        assert all(s.mp3_url and s.mp3_url.startswith(push.emu.base_url) for s in job.result.songs)


async def test_a_failed_generation_fails_the_job_through_the_confirmation(push: Push) -> None:
    push.emu.mureka.fail_next()
    job = await push.create()
    push.emu.clock.advance(RENDER)
    await until(lambda: job.done)
    assert job.state is JobState.FAILED
    assert push.confirms == {job.id: 1}


async def test_duplicate_delayed_and_reordered_callbacks_confirm_once(push: Push) -> None:
    faults = push.emu.mureka.callback_faults
    # Completions fall due in creation order: the first gets copies, the second is late.
    faults.add("completed", duplicate=3)
    faults.add("completed", delay=2.0)
    dup, late = await push.create(), await push.create()
    await until(lambda: len(push.emu.mureka.callbacks.released) == 2)
    reorder = faults.add("created", reorder=True)
    reordered = await push.create()  # its "created" arrives after its "completed"
    await until(lambda: reorder.hits == 1)
    push.emu.clock.advance(RENDER)
    await until(lambda: dup.done and reordered.done)
    await until(lambda: push.emu.mureka.callbacks.pending == 1)  # the delayed one
    assert not late.done
    push.emu.clock.advance(2.0)
    await until(lambda: late.done)
    await until(lambda: all(c.done for c in push.emu.mureka.callbacks.released))
    await push.hooks.drain()
    assert push.confirms == {dup.id: 1, reordered.id: 1, late.id: 1}
    released = push.emu.mureka.callbacks.released
    assert [c.event for c in released if c.jobid == reordered.id] == ["completed", "created"]
    assert [c.event for c in released if c.jobid == dup.id] == ["created"] + ["completed"] * 4
    stats = push.hooks.stats()
    assert stats.accepted == 3 and stats.refused == 0
    assert push.status_gets() == 3


async def test_a_dropped_callback_leaves_the_job_to_polling(push: Push) -> None:
    push.emu.mureka.callback_faults.add("completed", drop=True)
    job = await push.create()
    push.emu.clock.advance(RENDER)
    await until(lambda: len(push.emu.mureka.callbacks.dropped) == 1)
    await push.hooks.drain()
    assert not job.done and push.confirms == {}
    assert push.hooks.watching(job.id)
    assert await job.refresh() is JobState.READY  # the safety schedule's poll
    assert not push.hooks.watching(job.id)


async def test_forged_callbacks_are_never_accepted(push: Push) -> None:
    job = await push.create()
    await until(lambda: push.hooks.stats().received == 1)
    mureka = push.emu.mureka
    forged = [
        mureka.send_forged_callback(jobid=job.id),  # no replyRef
        mureka.send_forged_callback(jobid=job.id, reply_ref="ik1.0.xxxx.yyyy"),
        mureka.send_forged_callback(jobid=job.id, reply_ref=push.hooks.reply().ref[:-2] + "AA"),
        mureka.send_forged_callback(push.listener.url, jobid=None, reply_ref="a-ref"),
    ]
    await until(lambda: all(c.done for c in forged))
    assert [c.status for c in forged] == [401, 401, 401, 401]
    await push.hooks.drain()
    assert push.hooks.stats().accepted == 0 and push.confirms == {}
    assert push.status_gets() == 0 and not job.done


async def test_a_forger_holding_the_real_ref_only_causes_a_confirmation(push: Push) -> None:
    job = await push.create()
    stolen = push.emu.mureka.send_forged_callback(jobid=job.id, copy_ref=True)
    await until(lambda: stolen.done)
    await push.hooks.drain()
    assert stolen.status == 202
    assert push.confirms == {job.id: 1}
    assert not job.done and job.state is not JobState.READY  # the GET says: still running
    push.emu.clock.advance(RENDER)
    await until(lambda: job.done)
    assert job.result is not None
    assert FORGED_MP3_URL not in {s.mp3_url for s in job.result.songs}


async def test_replayed_callbacks_after_completion_change_nothing(push: Push) -> None:
    job = await push.create()
    push.emu.clock.advance(RENDER)
    await until(lambda: job.done)
    await push.hooks.drain()
    completed = next(c for c in push.emu.mureka.callbacks.released if c.event == "completed")
    body = push.emu.mureka.callback_body(completed)
    replays = [
        push.emu.mureka.send_forged_callback(push.listener.url, jobid=job.id, body=body)
        for _ in range(5)
    ]
    await until(lambda: all(c.done for c in replays))
    await push.hooks.drain()
    assert [c.status for c in replays] == [200] * 5
    assert push.confirms == {job.id: 1}
    assert push.hooks.stats().accepted == 1


async def test_the_app_refuses_other_methods_and_oversized_bodies(push: Push) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(push.listener.url) as response:
            assert response.status == 405
        big = b"{" + b" " * (push.hooks.max_body_bytes + 10) + b"}"
        async with http.post(
            push.listener.url, data=big, headers={"Content-Type": "application/json"}
        ) as response:
            assert response.status == 413

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(100):
                yield b" " * 10_000

        async with http.post(push.listener.url, data=chunks(), headers=JSON) as response:
            assert response.status == 413
    assert push.hooks.stats().refused == 2
