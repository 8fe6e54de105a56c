"""Helpers for the push tests: a counting confirmer and callback bodies as useapi.net sends."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

SECRET = "correct horse battery staple, 32b"
PUBLIC_URL = "https://me.example/hooks/imuzekit"
PATH = "/hooks/imuzekit"
JSON = {"Content-Type": "application/json"}


@attrs.define
class Confirmer:
    """Counts its calls; answers `settled` (or raises `error`), like a real GET /jobs/{id}."""

    settled: bool = True
    error: BaseException | None = None
    calls: int = 0

    async def __call__(self) -> bool:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.settled


def record(
    jobid: str,
    ref: str | None,
    status: str = "completed",
    *,
    account: str | None = "12345678901234",
    mp3_url: str = "https://cdn.example/x.mp3",
) -> dict[str, Any]:
    """A job record as ``GET /jobs/{jobid}`` answers it (the callback's JSON)."""
    request: dict[str, Any] = {"account": account, "async": True, "replyUrl": PUBLIC_URL}
    if ref is not None:
        request["replyRef"] = ref
    body: dict[str, Any] = {"jobid": jobid, "status": status, "request": request}
    if status == "completed":
        body["response"] = {"feed_id": 1, "state": 3, "songs": [{"mp3_url": mp3_url}]}
    return body


def encode(body: Any) -> bytes:
    """JSON bytes."""
    return json.dumps(body).encode()


Handle = Callable[[bytes], Awaitable[int]]


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (5 ms steps, bounded) until ``predicate()`` holds; fail the test otherwise."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)
