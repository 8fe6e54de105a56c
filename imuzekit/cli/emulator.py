"""``imuzekit emulator``: serve the emulator standalone, for other programs' tests."""

from __future__ import annotations

import shlex
from typing import Any

import attrs
import click

from imuzekit.cli._common import CliError

__all__ = ["emulator", "export_lines"]

# A fast emulator is best polled often (the SDK's default waits 2 s before the first poll).
_FAST_POLL = {"IMUZEKIT_POLL_INITIAL": "0.1", "IMUZEKIT_POLL_MAX_INTERVAL": "0.5"}


def _env_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None  # a PollPolicy, say: not a variable


def export_lines(emu: Any) -> list[str]:
    """``export IMUZEKIT_...=...`` lines pointing the CLI and `Client.from_env()` at `emu`:
    every registered provider's emulator config (the fields that differ from the defaults),
    and a poll policy suited to a fast emulator."""
    from imuzekit.providers import registry
    from imuzekit.providers._spec import env_var

    variables: dict[str, str] = {}
    for spec in registry():
        if spec.emulator_config is None:
            continue
        config = spec.emulator_config(emu)
        for field in attrs.fields(type(config)):
            value = getattr(config, field.name)
            text = _env_text(value)
            if text is not None and value != field.default:
                variables[env_var(spec.name, field.name)] = text
    variables.update(_FAST_POLL)
    return [f"export {name}={shlex.quote(value)}" for name, value in variables.items()]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8700, show_default=True)
@click.option("--render-seconds", type=float, default=2.0, show_default=True)
def emulator(host: str, port: int, render_seconds: float) -> None:
    """Serve the emulated provider APIs until Ctrl-C, printing their URLs, credentials and
    the ``export IMUZEKIT_...`` lines that point the CLI (and `Client.from_env()`) at them."""
    import asyncio
    import contextlib
    import signal

    from imuzekit.emulator import Emulator, serve

    def ready(emu: Emulator) -> None:
        click.echo(emu.describe())
        click.echo("\nPaste into a shell to use it (`imuzekit ...`, `Client.from_env()`):\n")
        for line in export_lines(emu):
            click.echo(line)
        click.echo("\nPress Ctrl-C to stop.")

    async def main() -> None:
        stop = asyncio.Event()
        # SIGTERM (what process managers and test harnesses send) stops as cleanly as Ctrl-C.
        with contextlib.suppress(NotImplementedError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await serve(host, port, render_seconds=render_seconds, on_ready=ready, stop=stop)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        raise CliError(f"cannot serve on {host}:{port}: {exc}") from None
