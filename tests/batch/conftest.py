"""Fixtures for the library's batch tests: the emulator on its own thread (a child process
running a batch reaches it on 127.0.0.1, and the test reads its counters)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli.conftest import EmulatorThread


@pytest.fixture
def emu_thread() -> Iterator[EmulatorThread]:
    """An emulator with short render times (0.1 to 0.3 s)."""
    server = EmulatorThread(render_seconds=(0.1, 0.3))
    try:
        yield server
    finally:
        server.close()


# The PostgreSQL server of tests/batch_pg (given by IMUZEKIT_TEST_POSTGRES_URL, or started).
from tests.batch_pg.conftest import pg_schema, pg_url  # noqa: E402, F401
