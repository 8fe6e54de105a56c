"""Push through the Client: ``Client(webhooks=Webhooks(...))`` wires every Mureka creation.

The emulator's clock is frozen: a generation ends only when the test advances it, while the
client's poller runs on real time, so a job that completes here within milliseconds completed
through its callback, long before its first safety poll (90 s for Mureka). The assertions
count the emulator's requests, not time.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator

import attrs
import pytest
from aiohttp import web

import imuzekit
from imuzekit import Client, JobState
from imuzekit.emulator import Clock, Emulator
from imuzekit.errors import ValidationError
from imuzekit.providers.mureka import MUREKA_HINT
from imuzekit.webhooks import Webhooks

from .conftest import SECRET

RENDER = 20.0
ACCOUNT = "12345678901234"


@attrs.define
class Setup:
    emu: Emulator
    port: int
    sock: socket.socket

    def hooks(self) -> Webhooks:
        """A receiver at this test's public URL with the shared secret (one per process)."""
        return Webhooks(public_url=f"http://127.0.0.1:{self.port}/hooks/imuzekit", secret=SECRET)

    def gets(self, glob: str = "/jobs/*") -> int:
        return self.emu.count("mureka", "GET", glob)


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    async with Emulator(render_seconds=RENDER, clock=Clock(frozen=True)) as emu:
        yield Setup(emu, sock.getsockname()[1], sock)
    sock.close()


async def test_a_job_completes_through_its_callback_before_any_safety_poll(setup: Setup) -> None:
    hooks = setup.hooks()
    async with hooks.listen(sock=setup.sock), setup.emu.client(webhooks=hooks) as kit:
        assert kit.webhooks is hooks
        job = await kit.mureka.music.create("a sunny ska tune about trains", account=ACCOUNT)
        assert job.expected == MUREKA_HINT and job.started_at is not None
        assert hooks.watching(job.id)
        sent = setup.emu.mureka.jobs[job.id].request
        assert sent["replyUrl"] == hooks.public_url
        assert hooks.ref_of(job.id) == sent["replyRef"]
        waiting = kit.as_completed([job], timeout=60)
        setup.emu.clock.advance(RENDER)
        done = await anext(waiting)
        await waiting.aclose()
    assert done is job and job.state is JobState.READY
    assert job.result is not None and len(job.result.songs) == 2
    stats = hooks.stats()
    assert (stats.accepted, stats.confirmations, stats.refused) == (1, 1, 0)
    # One confirming GET /jobs/{jobid}; no running-jobs list, no poll of its own.
    assert (setup.gets("/jobs/*"), setup.gets("/jobs")) == (1, 0)
    assert not hooks.watching(job.id)


async def test_a_job_without_webhooks_is_polled_as_before(setup: Setup) -> None:
    async with setup.emu.client() as kit:
        assert kit.webhooks is None
        job = await kit.mureka.music.create("a sunny ska tune about trains", account=ACCOUNT)
        assert "replyUrl" not in setup.emu.mureka.jobs[job.id].request
        assert job.push is None and "reply_ref" not in job.token()


async def test_a_call_with_its_own_reply_url_is_not_registered(setup: Setup) -> None:
    hooks = setup.hooks()
    async with setup.emu.client(webhooks=hooks) as kit:
        job = await kit.mureka.music.create(
            "a sunny ska tune", account=ACCOUNT, reply_url="https://elsewhere.example/cb"
        )
        assert setup.emu.mureka.jobs[job.id].request["replyUrl"] == "https://elsewhere.example/cb"
        assert not hooks.watching(job.id)


@contextlib.asynccontextmanager
async def relay(sock: socket.socket, receiver: list[Webhooks]) -> AsyncIterator[None]:
    """Serve the public URL on ``sock`` through ``receiver[0].handle`` (any framework's way),
    so the receiver behind one address can be swapped, as a restarted service would."""

    async def forward(request: web.Request) -> web.Response:
        status = await receiver[0].handle(request.path, request.headers, await request.read())
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/{tail:.*}", forward)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        yield
    finally:
        await runner.cleanup()


async def test_a_resumed_job_completes_by_push_in_another_client(setup: Setup) -> None:
    first = setup.hooks()
    receiver = [first]
    async with relay(setup.sock, receiver):
        async with setup.emu.client(webhooks=first) as kit:
            job = await kit.mureka.music.create("a sunny ska tune about trains", account=ACCOUNT)
            token = job.token()
        ref = first.ref_of(job.id)
        assert ref is not None and ref in token
        # Another process: a new receiver with the same secret behind the same public URL.
        second = receiver[0] = setup.hooks()
        async with setup.emu.client(webhooks=second) as kit:
            resumed = kit.resume(token)
            assert second.watching(resumed.id) and resumed.token() == token
            before = setup.gets()
            waiting = kit.as_completed([resumed], timeout=60)
            setup.emu.clock.advance(RENDER)
            await anext(waiting)
            await waiting.aclose()
    assert resumed.state is JobState.READY
    assert (first.stats().accepted, second.stats().accepted) == (0, 1)
    assert setup.gets() - before == 1  # its confirmation, and no poll
    assert setup.gets("/jobs") == 0


async def test_a_token_from_another_secret_leaves_the_job_to_polling(setup: Setup) -> None:
    async with setup.emu.client(webhooks=setup.hooks()) as kit:
        job = await kit.mureka.music.create("a sunny ska tune about trains", account=ACCOUNT)
        token = job.token()
    stranger = Webhooks(public_url="https://me.example/hooks", secret="another secret, 32 bytes!!")
    async with setup.emu.client(webhooks=stranger) as kit:
        resumed = kit.resume(token)
        assert not stranger.watching(resumed.id) and resumed.push is not None
        assert resumed.push() is False
        assert "reply_ref" not in resumed.token()


def test_the_client_refuses_a_webhooks_of_the_wrong_type() -> None:
    with pytest.raises(ValidationError) as caught:
        Client(webhooks="https://me.example/hooks")  # type: ignore[arg-type]
    assert caught.value.field == "webhooks"
    assert imuzekit.Webhooks is Webhooks
