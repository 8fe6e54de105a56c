"""The emulated useapi.net's callback sender: POSTs what `Outbox.due` releases to ``replyUrl``.

One background task per running emulator, started and stopped with the Mureka application
(aiohttp's ``cleanup_ctx``). It reads the emulator clock every few milliseconds, so a frozen
clock moved with ``emu.clock.advance`` releases callbacks at once; it never runs inside a
request handler. A job's callbacks go out one after the other, in release order; different
jobs' in parallel (bounded). Every outcome is recorded on the `Callback` (``status`` or
``error``); nothing is retried (useapi.net documents no retries).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from aiohttp import web

from .callbacks import Callback
from .state import MurekaState

__all__ = ["Courier", "courier_context"]

_POLL_SECONDS = 0.005
_TIMEOUT = aiohttp.ClientTimeout(total=10)
_CONCURRENCY = 64
_MAX_ANSWER = 64 * 1024


class Courier:
    """Sends the state's due callbacks until stopped."""

    def __init__(self, state: MurekaState, *, poll_seconds: float = _POLL_SECONDS) -> None:
        """Send `state`'s callbacks, looking for due ones every `poll_seconds` (real time)."""
        self.state = state
        self.poll_seconds = poll_seconds
        self._session: aiohttp.ClientSession | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._chains: dict[str, asyncio.Task[None]] = {}
        self._limit = asyncio.Semaphore(_CONCURRENCY)

    async def start(self) -> None:
        """Start the sending loop."""
        self._session = aiohttp.ClientSession(timeout=_TIMEOUT, trust_env=False)
        self._loop_task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop sending: callbacks in flight are cancelled, queued ones stay queued."""
        tasks = [t for t in (self._loop_task, *self._chains.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._chains.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        while True:
            for callback in self.state.callbacks.due(self.state.clock.now()):
                self._send(callback)
            await asyncio.sleep(self.poll_seconds)

    def _send(self, callback: Callback) -> None:
        key = callback.jobid or f"forged-{id(callback)}"
        previous = self._chains.get(key)
        task = asyncio.get_running_loop().create_task(self._post(callback, previous))
        self._chains[key] = task
        task.add_done_callback(self._forget(key))

    def _forget(self, key: str) -> Callable[[asyncio.Task[None]], None]:
        def forget(task: asyncio.Task[None]) -> None:
            if self._chains.get(key) is task:
                del self._chains[key]

        return forget

    async def _post(self, callback: Callback, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        body = self.state.callback_body(callback)
        session = self._session
        if body is None or session is None:
            callback.error = "job forgotten" if body is None else "courier stopped"
            return
        data = json.dumps(body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "useapi.net-emulator"}
        async with self._limit:
            try:
                async with session.post(callback.url, data=data, headers=headers) as response:
                    await response.content.read(_MAX_ANSWER)
                    callback.status = response.status
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
                callback.error = type(exc).__name__
            finally:
                callback.sent_at = self.state.clock.now()


def courier_context(
    state: MurekaState,
) -> Callable[[web.Application], Any]:
    """An aiohttp ``cleanup_ctx`` running a `Courier` while the application serves."""

    async def context(_: web.Application) -> AsyncIterator[None]:
        courier = Courier(state)
        await courier.start()
        try:
            yield
        finally:
            await courier.stop()

    return context
