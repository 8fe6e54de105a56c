"""What every command shares: errors with exit codes, JSON output, clients, option parsing."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import json
import pathlib
import re
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import attrs
import click

from imuzekit import Client, PollPolicy, errors

__all__ = [
    "EMULATOR_POLL",
    "EMULATOR_RENDER_SECONDS",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CliError",
    "CliState",
    "CliUsageError",
    "closing_despite_cancellation",
    "describe_error",
    "duration_callback",
    "emit_json",
    "emulator_option",
    "json_option",
    "jsonable",
    "open_client",
    "parse_duration_ms",
    "run",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# The embedded emulator renders in about a second: poll it often so that commands feel instant.
EMULATOR_POLL = PollPolicy(initial=0.2, max_interval=0.5, timeout=120.0)
EMULATOR_RENDER_SECONDS = (0.3, 1.5)

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass
class CliState:
    """Per-invocation state shared by the group and its commands (``ctx.obj``)."""

    debug: bool = False
    config_path: pathlib.Path | None = None
    lookup: str | None = None
    """The command that lists what the running command takes an id of (its `@command`'s
    `lookup`): named when the id is not found."""


class CliError(click.ClickException):
    """An expected failure: one line on stderr (what failed, why, what to do); exit 1."""

    def show(self, file: Any = None) -> None:
        """Print ``error: <message>`` on stderr."""
        click.echo(f"error: {self.format_message()}", err=True, file=file)


class CliUsageError(CliError):
    """Bad input or configuration: one line on stderr; exit 2."""

    exit_code = EXIT_USAGE


def _provider_name(provider: str | None) -> str:
    """The provider for people, from its spec (`"iMuze API v4"`)."""
    from imuzekit.providers import registry

    if provider and provider in registry():
        return registry().get(provider).title
    return provider or "the service"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def describe_error(exc: errors.ImuzekitError, *, lookup: str | None = None) -> tuple[str, int]:
    """One line explaining ``exc`` (what failed, why, what to do) and the exit code.

    A provider's answer is told by the provider's title and status, without the HTTP method
    and URL (``--debug`` shows the request); what to do names a command to run. `lookup` is
    the command that lists the ids the failed command takes (`imuzekit imuze songs list`).
    """
    message = _first_line(str(exc)) or type(exc).__name__
    if isinstance(exc, errors.APIError):
        who = _provider_name(exc.provider)
        said = _first_line(exc.message) or type(exc).__name__
        message = f"{who} answered {exc.status}: {said}"
    if isinstance(exc, errors.ConfigurationError):
        # The SDK speaks to programmers ("pass Client(imuze=...)"); a CLI user sets variables.
        message = re.sub(r"pass Client\(\w+=\w+\(\.\.\.\)\) or ", "", message)
        return (
            f"{message} (or put it in the config file; see `imuzekit config show`)",
            EXIT_USAGE,
        )
    if isinstance(exc, errors.ValidationError):
        return f"invalid {exc.field}: {exc.reason}", EXIT_USAGE
    if isinstance(exc, errors.AuthenticationError):
        return (
            f"{who} refused the credentials (401): {said}; check them with `imuzekit config show`",
            EXIT_FAILED,
        )
    if isinstance(exc, errors.PaymentRequiredError):
        return f"{who} wants payment ({exc.status}): {said}; check the account", EXIT_FAILED
    if isinstance(exc, errors.RateLimitError):
        wait = f" in {exc.retry_after:g} s" if exc.retry_after else " later"
        return f"{message}; the service is rate-limiting: try again{wait}", EXIT_FAILED
    if isinstance(exc, errors.NotFoundError):
        where = f"`{lookup}`" if lookup else "the `list` and `search` commands"
        return f"{message}; check the id (see {where})", EXIT_FAILED
    if isinstance(exc, errors.APIError):
        return f"{message}", EXIT_FAILED
    if isinstance(exc, errors.TransportError):
        parts = urllib.parse.urlsplit(exc.url)
        where = f" {parts.scheme}://{parts.netloc}" if parts.netloc else ""  # not the route
        return (
            f"cannot reach{where}: {message}; is the service (or the emulator) running, "
            "and is the base URL right (`imuzekit config show`)?",
            EXIT_FAILED,
        )
    if isinstance(exc, errors.JobTimeout):
        return f"{message}; it may still finish: run the command again later", EXIT_FAILED
    return message, EXIT_FAILED


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion in a new event loop (each command owns its loop)."""
    import asyncio

    return asyncio.run(coro)


def jsonable(value: Any) -> Any:
    """``value`` (models, enums, dates, paths, containers) as plain JSON data."""
    if attrs.has(type(value)):
        return {
            field.name: jsonable(getattr(value, field.name)) for field in attrs.fields(type(value))
        }
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def emit_json(value: Any) -> None:
    """Print ``value`` as one JSON object on one line of stdout."""
    click.echo(json.dumps(jsonable(value), ensure_ascii=False, separators=(",", ":")))


def json_option(func: F) -> F:
    """``--json``: machine output, one JSON object per line, nothing else on stdout."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Machine output: one JSON object per line, nothing else on stdout.",
    )(func)


def emulator_option(func: F) -> F:
    """``--emulator``: run against an emulator started in-process for this command."""
    return click.option(
        "--emulator",
        "use_emulator",
        is_flag=True,
        help="Run against an embedded emulator started for this command (no account needed).",
    )(func)


@contextlib.asynccontextmanager
async def open_client(ctx: click.Context, *, use_emulator: bool) -> AsyncIterator[Client]:
    """A Client from the configuration (env over file over defaults), or an embedded emulator's.

    The client (and the emulator) close completely even when Ctrl-C arrives while they close;
    the interruption is then reported as usual.
    """
    stack = contextlib.AsyncExitStack()
    try:
        if use_emulator:
            from imuzekit.emulator import Emulator

            emu = await stack.enter_async_context(Emulator(render_seconds=EMULATOR_RENDER_SECONDS))
            kit = await stack.enter_async_context(emu.client(poll=EMULATOR_POLL))
        else:
            from imuzekit.cli._config import load_settings

            state = ctx.find_object(CliState)
            settings = load_settings(state.config_path if state else None)
            kit = await stack.enter_async_context(settings.client())
        yield kit
    finally:
        await _close_despite_cancellation(stack.aclose)


@contextlib.asynccontextmanager
async def closing_despite_cancellation() -> AsyncIterator[contextlib.AsyncExitStack]:
    """An exit stack whose contexts (clients, emulators) close completely even on Ctrl-C.

    For commands that open their client themselves (`demo`, `musescore login`) instead of
    through `open_client`.
    """
    stack = contextlib.AsyncExitStack()
    try:
        yield stack
    finally:
        await _close_despite_cancellation(stack.aclose)


async def _close_despite_cancellation(close: Callable[[], Awaitable[object]]) -> None:
    """Await ``close()`` to its end even if this task is cancelled meanwhile, then re-raise.

    asyncio turns Ctrl-C into a cancellation of the command's task; landing in the middle of
    closing, it used to abandon the aiohttp session half-closed ("Unclosed client session" on
    stderr at exit). The close is short, so it finishes first; a second Ctrl-C still stops at
    once (asyncio raises `KeyboardInterrupt` directly then).
    """
    import asyncio

    closing = asyncio.ensure_future(close())
    interrupted: asyncio.CancelledError | None = None
    while not closing.done():
        try:
            await asyncio.shield(closing)
        except asyncio.CancelledError as exc:
            if closing.done():  # the close itself was cancelled: nothing left to wait for
                raise
            interrupted = exc
    closing.result()  # the close's own error, if it had one
    if interrupted is not None:
        raise interrupted


_DURATION = re.compile(r"(?i)\s*(\d+(?:\.\d+)?)\s*(ms|h|m|s)\s*")


def parse_duration_ms(text: str) -> int:
    """Milliseconds from ``30s``, ``1m30s``, ``45000ms``, ``1.5s`` or plain seconds (``90``)."""
    cleaned = text.strip()
    if not cleaned:
        raise ValueError("empty duration")
    try:
        seconds = float(cleaned)
    except ValueError:
        pass
    else:
        if seconds <= 0 or seconds != seconds or seconds == float("inf"):
            raise ValueError(f"duration must be positive, got {text!r}")
        return round(seconds * 1000)
    position = 0
    total = 0.0
    for match in _DURATION.finditer(cleaned):
        if match.start() != position:
            break
        number, unit = float(match.group(1)), match.group(2).lower()
        total += number * {"h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}[unit]
        position = match.end()
    if position != len(cleaned) or position == 0:
        raise ValueError(f"not a duration: {text!r} (try 30s, 1m30s, 45000ms or 90)")
    if total <= 0:
        raise ValueError(f"duration must be positive, got {text!r}")
    return round(total)


def duration_callback(ctx: click.Context, param: click.Parameter, value: Any) -> int | None:
    """A click callback turning a duration option (see `parse_duration_ms()`) into ms."""
    if value is None or isinstance(value, int):
        return value
    try:
        return parse_duration_ms(str(value))
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
