"""Shared by the examples: a Client for the real services, or for an emulator started here.

If any ``IMUZEKIT_<PROVIDER>_*`` variable of a provider the example needs is set, the example
talks to the real service through ``Client.from_env()``. Otherwise it starts the embedded
emulator (no account needed) and polls fast, so that every example finishes in seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import tempfile
from collections.abc import AsyncIterator, Iterator

from imuzekit import Client, PollPolicy
from imuzekit.emulator import Emulator

FAST_POLL = PollPolicy(initial=0.05, max_interval=0.3, timeout=120.0)
"""Polling suited to the emulator's 0.2 s renders (the default waits 2 s before the first poll)."""


def uses_real_services(*providers: str) -> bool:
    """Whether the environment configures one of `providers` (``IMUZEKIT_IMUZE_TOKEN``, ...)."""
    prefixes = tuple(f"IMUZEKIT_{name.upper()}_" for name in providers)
    return any(key.startswith(prefixes) and value for key, value in os.environ.items())


@contextlib.asynccontextmanager
async def connect(*providers: str, render_seconds: float = 0.2) -> AsyncIterator[Client]:
    """An open Client: from the environment if it names one of `providers`, else an emulator's."""
    if uses_real_services(*providers):
        async with Client.from_env() as kit:
            yield kit
        return
    async with (
        Emulator(render_seconds=render_seconds) as emu,
        emu.client(poll=FAST_POLL) as kit,
    ):
        print(f"emulator on {emu.base_url} (set IMUZEKIT_* variables to use the real services)")
        yield kit


def add_out_argument(parser: argparse.ArgumentParser) -> None:
    """``--out DIR``: where files go (a fresh temporary directory when omitted)."""
    parser.add_argument(
        "--out",
        type=pathlib.Path,
        default=None,
        help="folder for the downloaded files (default: a temporary folder, removed at exit)",
    )


@contextlib.contextmanager
def output_dir(out: pathlib.Path | None) -> Iterator[pathlib.Path]:
    """`out` (created if needed), or a temporary directory removed afterwards."""
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        yield out
        return
    with tempfile.TemporaryDirectory(prefix="imuzekit-example-") as tmp:
        yield pathlib.Path(tmp)
