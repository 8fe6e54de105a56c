"""A pytest plugin that gives your own tests an imuzekit emulator and a client wired to it.

Installed with imuzekit (the `pytest11` entry point `imuzekit`), so there is nothing to import
or register. It needs [pytest-asyncio](https://pypi.org/project/pytest-asyncio/) to run the async
fixtures; with `asyncio_mode = auto` your `async def` tests just ask for them:

```python
import pathlib

import pytest

from imuzekit import Client
from imuzekit.emulator import Emulator


async def test_song(imuzekit_client: Client, tmp_path: pathlib.Path) -> None:
    job = await imuzekit_client.imuze.songs.create(
        title="Morning Song", arrangement_id=1, tags=["x"], desired_length=10
    )
    song = await job.wait(timeout=10)
    assert (await imuzekit_client.download(song, tmp_path)).stat().st_size > 0


@pytest.mark.imuzekit_faults(("imuze", "GET /songs/*", {"status": 503, "times": 2}))
async def test_retries(imuzekit_client: Client, imuzekit_emulator: Emulator) -> None: ...
```

Fixtures (function scope):

- `imuzekit_emulator`: an `imuzekit.emulator.Emulator` with `render_seconds=0.2`, started on
  127.0.0.1 (a free port) and stopped after the test.
- `imuzekit_client`: `imuzekit_emulator.client(poll=PollPolicy(initial=0.05, max_interval=0.2))`,
  an `imuzekit.Client` configured for all four providers and closed after the test.

Marker `imuzekit_faults(*faults)`: each fault is `(provider, pattern)` or
`(provider, pattern, {keyword arguments})`, passed to `imuzekit.emulator.Faults.add` before the
test runs (markers on the module or class apply too, outermost first).

Loading the plugin costs a few milliseconds: it imports the emulator, the client and aiohttp only
inside its fixtures, so a test run that never asks for them never loads them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest

if TYPE_CHECKING:
    from imuzekit.client import Client
    from imuzekit.emulator import Emulator

__all__ = ["MARKER", "imuzekit_client", "imuzekit_emulator", "pytest_configure"]

MARKER = "imuzekit_faults"
"""Name of the marker that installs faults on `imuzekit_emulator` before a test."""

_RENDER_SECONDS = 0.2

_F = TypeVar("_F", bound=Callable[..., Any])


def _async_fixture(function: _F) -> _F:
    """`pytest_asyncio.fixture` when pytest-asyncio is installed (so strict mode works too),
    else a plain `pytest.fixture` (pytest then reports that async fixtures need a plugin)."""
    try:
        import pytest_asyncio
    except ImportError:  # pragma: no cover - pytest-asyncio is documented as required
        return cast("_F", pytest.fixture(function))
    return cast("_F", pytest_asyncio.fixture(function))


def pytest_configure(config: pytest.Config) -> None:
    """Register the `imuzekit_faults` marker (so `--strict-markers` accepts it)."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(*faults): install faults on the imuzekit_emulator fixture before the test; "
        "each fault is (provider, 'METHOD /path-glob', {Faults.add keyword arguments}).",
    )


def _install_faults(emulator: Emulator, node: pytest.Item) -> None:
    """Add every fault named by `imuzekit_faults` markers on `node` (outermost first)."""
    for marker in reversed(list(node.iter_markers(MARKER))):
        if marker.kwargs:
            raise pytest.UsageError(
                f"@pytest.mark.{MARKER} takes tuples, not keyword arguments: "
                f"({', '.join(repr(k) for k in marker.kwargs)})"
            )
        for fault in marker.args:
            if not isinstance(fault, tuple) or len(fault) not in (2, 3):
                raise pytest.UsageError(
                    f"@pytest.mark.{MARKER}: each fault is (provider, pattern) or "
                    f"(provider, pattern, {{options}}), got {fault!r}"
                )
            provider, pattern, *rest = fault
            options = rest[0] if rest else {}
            if not isinstance(options, Mapping):
                raise pytest.UsageError(
                    f"@pytest.mark.{MARKER}: the options of {provider!r} {pattern!r} must be a "
                    f"dict of Faults.add keyword arguments, got {options!r}"
                )
            emulator.faults.add(provider, pattern, **dict(options))


@_async_fixture
async def imuzekit_emulator(request: pytest.FixtureRequest) -> AsyncIterator[Emulator]:
    """A running emulator of every provider (`render_seconds=0.2`), stopped after the test.

    Faults named by `@pytest.mark.imuzekit_faults(...)` are installed before the test.
    """
    # Imported here: loading the plugin (in every pytest run of a project that has imuzekit
    # installed) must not import aiohttp or the emulator.
    from imuzekit.emulator import Emulator

    emulator = Emulator(render_seconds=_RENDER_SECONDS)
    await emulator.start()
    try:
        _install_faults(emulator, request.node)
        yield emulator
    finally:
        await emulator.stop()


@_async_fixture
async def imuzekit_client(imuzekit_emulator: Emulator) -> AsyncIterator[Client]:
    """An `imuzekit.Client` for `imuzekit_emulator`, polling fast, closed after."""
    from imuzekit.jobs import PollPolicy

    client = imuzekit_emulator.client(poll=PollPolicy(initial=0.05, max_interval=0.2))
    try:
        yield client
    finally:
        await client.close()
