"""Fixtures of the reliability suite: the hypothesis profile, the matrix's report, an emulator,
a scripted server and a ready song.

The fuzz tests run under the ``reliability`` hypothesis profile (1,000 examples per parser,
no deadline; ``IMUZEKIT_FUZZ_EXAMPLES`` sets another count for a deeper run: generating the
examples, not parsing them, is most of their time, and 2,000 took the suite past 5 minutes on
2 cores). The fault matrix records one outcome per case in `MATRIX_RESULTS`; when
``IMUZEKIT_WRITE_RELIABILITY_DOC=1`` is set, the session writes them to ``docs/reliability.md``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from imuzekit import Client
from imuzekit.emulator import Emulator
from imuzekit.providers.imuze import Song
from tests.reliability._report import MATRIX_RESULTS, kept_part, render_page

# The transport tests' scripted server fixture, shared (a fixture is found by its name here).
from tests.transport.conftest import server  # noqa: F401

settings.register_profile(
    "reliability",
    max_examples=int(os.environ.get("IMUZEKIT_FUZZ_EXAMPLES", "1000")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
    derandomize=False,
    print_blob=True,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
WRITE_DOC_ENV = "IMUZEKIT_WRITE_RELIABILITY_DOC"


@pytest.fixture(scope="session", autouse=True)
def reliability_doc() -> Iterator[None]:
    """After the session, write ``docs/reliability.md`` from the matrix (only when asked)."""
    yield
    if os.environ.get(WRITE_DOC_ENV) == "1" and MATRIX_RESULTS:
        kept = kept_part(DOC.read_text(encoding="utf-8")) if DOC.exists() else ""
        DOC.write_text(render_page(MATRIX_RESULTS, kept), encoding="utf-8")


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """An emulator whose songs render in 10 ms."""
    async with Emulator(render_seconds=0.01) as emulator:
        yield emulator


async def ready_song(kit: Client, title: str = "Track", length: int = 20) -> Song:
    """An iMuze song created through ``kit`` and waited for until it is ready."""
    job = await kit.imuze.songs.create(
        title=title, arrangement_id=1, tags=[], desired_length=length
    )
    return await job.wait(timeout=5)
