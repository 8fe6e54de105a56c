"""Fixtures for end-to-end tests: the real emulator on 127.0.0.1 and a Client wired to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from imuzekit import Client, PollPolicy, RetryPolicy
from imuzekit.emulator import Emulator

FAST_POLL = PollPolicy(initial=0.05, max_interval=0.1, timeout=10)
FAST_RETRY = RetryPolicy(backoff_base=0.01, backoff_max=0.05)


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(render_seconds=0.2) as emulator:
        # joplin's "still rendering" hint would make every wait take a whole second.
        emulator.joplin.retry_after_seconds = 0
        yield emulator


@pytest.fixture
async def kit(emu: Emulator) -> AsyncIterator[Client]:
    async with emu.client(poll=FAST_POLL, retry=FAST_RETRY) as client:
        yield client
