"""The hand-written contenders of `polling.py`: a per-job loop over plain aiohttp.

What an application without an SDK would write: create the jobs, then ask each one's status
every ``interval`` seconds until it is ready. Also the creation helper both sides share.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = [
    "JOPLIN_DURATION_MS",
    "MUREKA_PROMPT",
    "SONG_LENGTH",
    "create_all",
    "raw_aiohttp_contender",
    "raw_per_job_contender",
]

# Create requests in flight at once: enough to create 10,000 songs in seconds, well under the
# connection pool's 100.
CREATE_CONCURRENCY = 64
SONG_LENGTH = 30  # seconds of audio per song: irrelevant here (nothing is downloaded)
MUREKA_PROMPT = "Morning Song about trains"
JOPLIN_DURATION_MS = 30_000


def polling_result(
    detected: dict[Any, float],
    states: dict[str, int],
    started: float,
    waiting: float,
    finished: float,
    **extra: Any,
) -> dict[str, Any]:
    """A contender's result dict: detection times, final states and the two phases' seconds."""
    return {
        "detected": detected,
        "states": states,
        "create_s": waiting - started,
        "wait_s": finished - waiting,
        **extra,
    }


async def create_all(create: Any, n: int) -> list[Any]:
    """Call ``create(i)`` for i in 0..n-1 with at most CREATE_CONCURRENCY in flight."""
    semaphore = asyncio.Semaphore(CREATE_CONCURRENCY)

    async def one(i: int) -> Any:
        async with semaphore:
            return await create(i)

    return await asyncio.gather(*(one(i) for i in range(n)))


async def raw_aiohttp_contender(
    url: str, token: str, jobs: int, wait_limit: float, interval: float
) -> dict[str, Any]:
    """Create ``jobs`` songs with plain aiohttp and poll each every ``interval`` seconds."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=100)
    headers = {"Authorization": token}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def create(i: int) -> int:
            body = {
                "title": "Bench Song",
                "arrangement_id": 1 + i % 12,
                "tags": ["bench"],
                "desired_length": SONG_LENGTH,
            }
            async with session.post(f"{url}/songs", json=body) as response:
                response.raise_for_status()
                return int((await response.json())["id"])

        async def ready(song_id: int) -> bool:
            async with session.get(f"{url}/songs/{song_id}") as response:
                data = await response.json() if response.status == 200 else {}
                return bool(data.get("status") == "ready")

        return await _poll_each(create, ready, jobs, wait_limit, interval)


async def _poll_each(
    create: Callable[[int], Awaitable[Any]],
    ready: Callable[[Any], Awaitable[bool]],
    jobs: int,
    wait_limit: float,
    interval: float,
) -> dict[str, Any]:
    """The hand-written contenders' loop: create ``jobs``, then ask ``ready(id)`` of each every
    ``interval`` seconds until it says so or ``wait_limit`` passes (a failed probe is "not
    yet"). Returns the detection times, the outcomes and the phases' durations."""
    import aiohttp

    detected: dict[Any, float] = {}
    states: dict[str, int] = {}
    max_polls = int(wait_limit / interval) + 1  # a hard bound on each loop, besides the deadline

    async def wait(job_id: Any) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_limit
        for _ in range(max_polls):
            try:
                if await ready(job_id):
                    detected[job_id] = time.monotonic()
                    return "ready"
            except (aiohttp.ClientError, TimeoutError, ValueError):
                pass
            if loop.time() + interval > deadline:
                break
            await asyncio.sleep(interval)
        return "timeout"

    started = time.monotonic()
    ids = await create_all(create, jobs)
    waiting = time.monotonic()
    for outcome in await asyncio.gather(*(wait(job_id) for job_id in ids)):
        states[outcome] = states.get(outcome, 0) + 1
    finished = time.monotonic()
    return polling_result(detected, states, started, waiting, finished)


async def raw_per_job_contender(
    url: str, headers: dict[str, str], provider: str, jobs: int, wait_limit: float, interval: float
) -> dict[str, Any]:
    """Create joplin or Mureka jobs with plain aiohttp and poll each every ``interval`` s."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=100)
    accounts: list[str] = headers.pop("X-Accounts", "").split(",")
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def create(i: int) -> str:
            if provider == "joplin":
                from imuzekit.providers.joplin import _api  # pure: the body only

                body = _api.build_create_music(
                    url,
                    genre="electronic",
                    subgenre="house",
                    duration_ms=JOPLIN_DURATION_MS,
                    structure="dynamic:1",
                ).json
                target = f"{url}/musics"
            else:
                account = accounts[i % len(accounts)]
                body = {"prompt": MUREKA_PROMPT, "account": account, "async": True}
                target = f"{url}/music/create"
            async with session.post(target, json=body) as response:
                response.raise_for_status()
                data = await response.json()
                return str(data["id"] if provider == "joplin" else data["jobid"])

        async def ready(job_id: str) -> bool:
            if provider == "joplin":
                probe = {"Range": "bytes=0-0"}
                async with session.get(f"{url}/musics/{job_id}/mp3", headers=probe) as response:
                    await response.read()
                    return response.status in (200, 206)
            async with session.get(f"{url}/jobs/{job_id}") as response:
                data = await response.json() if response.status == 200 else {}
                return bool(data.get("status") == "completed")

        return await _poll_each(create, ready, jobs, wait_limit, interval)
