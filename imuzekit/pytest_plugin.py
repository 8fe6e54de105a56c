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
test runs (markers on the module or class apply too, outermost first, to those of their tests
that use the fixtures). Mistakes are usage errors, never faults that silently do nothing:

- the marker on a test that uses neither `imuzekit_emulator` nor `imuzekit_client` (directly or
  through another fixture) stops the run before any test, naming the tests;
- a malformed fault stops the run the same way;
- an unknown provider or keyword, or a value `Faults.add` refuses, errors the test at setup,
  naming the test and listing the valid providers or keywords.

Loading the plugin costs a few milliseconds: it imports the emulator, the client and aiohttp only
inside its fixtures, so a test run that never asks for them never loads them.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest

if TYPE_CHECKING:
    from imuzekit.client import Client
    from imuzekit.emulator import Emulator

__all__ = [
    "FIXTURES",
    "MARKER",
    "imuzekit_client",
    "imuzekit_emulator",
    "pytest_collection_modifyitems",
    "pytest_configure",
]

MARKER = "imuzekit_faults"
"""Name of the marker that installs faults on `imuzekit_emulator` before a test."""

FIXTURES = ("imuzekit_emulator", "imuzekit_client")
"""The plugin's fixtures: a test with the marker must use one of them."""

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


def _faults_of(node: pytest.Item) -> list[tuple[str, str, Mapping[str, Any]]]:
    """The faults the `imuzekit_faults` markers on `node` name (outermost first), checked in
    shape; `pytest.UsageError` names the test when one is malformed."""
    faults: list[tuple[str, str, Mapping[str, Any]]] = []
    for marker in reversed(list(node.iter_markers(MARKER))):
        if marker.kwargs:
            raise pytest.UsageError(
                f"@pytest.mark.{MARKER} on {node.nodeid} takes tuples, not keyword arguments: "
                f"({', '.join(repr(k) for k in marker.kwargs)})"
            )
        for fault in marker.args:
            if not isinstance(fault, tuple) or len(fault) not in (2, 3):
                raise pytest.UsageError(
                    f"@pytest.mark.{MARKER} on {node.nodeid}: each fault is (provider, pattern) "
                    f"or (provider, pattern, {{options}}), got {fault!r}"
                )
            provider, pattern, *rest = fault
            options = rest[0] if rest else {}
            if not isinstance(provider, str) or not isinstance(pattern, str):
                raise pytest.UsageError(
                    f"@pytest.mark.{MARKER} on {node.nodeid}: a fault's provider and pattern are "
                    f"strings ('imuze', 'GET /songs/*'), got {provider!r} and {pattern!r}"
                )
            if not isinstance(options, Mapping):
                raise pytest.UsageError(
                    f"@pytest.mark.{MARKER} on {node.nodeid}: the options of {provider!r} "
                    f"{pattern!r} must be a dict of Faults.add keyword arguments, got {options!r}"
                )
            faults.append((provider, pattern, options))
    return faults


def _did_you_mean(word: object, choices: list[str]) -> str:
    import difflib  # only when a marker is wrong: loading the plugin stays cheap

    close = difflib.get_close_matches(str(word), choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse `imuzekit_faults` on tests that use neither fixture, and malformed faults.

    A marker on the test itself must reach the emulator: a test that asks for neither
    `imuzekit_emulator` nor `imuzekit_client` (directly or through other fixtures) would run
    without its faults. Both mistakes are a `pytest.UsageError` before any test runs.
    """
    forgotten: list[str] = []
    for item in items:
        if not any(mark.name == MARKER for mark in item.own_markers):
            continue
        _faults_of(item)
        if not set(FIXTURES) & set(getattr(item, "fixturenames", ())):
            forgotten.append(item.nodeid)
    if forgotten:
        raise pytest.UsageError(
            f"@pytest.mark.{MARKER} on a test that uses neither {FIXTURES[0]} nor {FIXTURES[1]}, "
            f"so its faults would never be installed: {', '.join(forgotten)}. Ask for "
            f"{FIXTURES[1]} (a client of the faulty emulator) or {FIXTURES[0]} in the test's "
            "arguments, or remove the marker."
        )


def _install_faults(emulator: Emulator, node: pytest.Item) -> None:
    """Add every fault named by `imuzekit_faults` markers on `node` (outermost first).

    An unknown provider or keyword, or a value `Faults.add` refuses, is a `pytest.UsageError`
    naming the test and, for a name, the valid ones.
    """
    __tracebackhide__ = True  # the message says it all: no plugin source in the report
    where = f"@pytest.mark.{MARKER} on {node.nodeid}"
    providers = sorted(emulator.providers)
    parameters = inspect.signature(emulator.faults.add).parameters.values()
    keywords = sorted(p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY)
    for provider, pattern, options in _faults_of(node):
        if provider != "*" and provider not in providers:
            raise pytest.UsageError(
                f"{where}: unknown provider {provider!r}{_did_you_mean(provider, providers)}; "
                f"valid providers: '*', {', '.join(providers)}"
            )
        for name in options:
            if name not in keywords:
                raise pytest.UsageError(
                    f"{where}: unknown fault option {name!r}{_did_you_mean(name, keywords)}; "
                    f"valid options: {', '.join(keywords)}"
                )
        try:
            emulator.faults.add(provider, pattern, **dict(options))
        except (ValueError, TypeError) as error:
            raise pytest.UsageError(f"{where}: {provider!r} {pattern!r}: {error}") from None


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
