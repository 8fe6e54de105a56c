"""The root ``imuzekit`` group: global options, one line per expected error, quiet on a closed pipe.

Quiet only when the closed pipe is stdout's (the reader of the output went away, as with
``imuzekit ... | head``): any other ``BrokenPipeError`` (a subprocess or a socket that went
away) is an error like any ``OSError``, one line and exit 1.

Imported only by `imuzekit.cli.main` (and `imuzekit.cli.cli`), after the `cli` extra is known
to be installed: this module imports click and, through the commands, rich.
"""

from __future__ import annotations

import errno
import os
import pathlib
import select
import sys
import traceback
from typing import Any

import click

from imuzekit import __version__, errors
from imuzekit._logs import log_to_stderr
from imuzekit.cli._common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CliState,
    CliUsageError,
    describe_error,
)
from imuzekit.providers._env import unknown_variables

__all__ = ["cli", "run_cli"]


class _Group(click.Group):
    """The root group: turns expected errors into one line and an exit code."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        # `--help` and `--version` print while the arguments are parsed, before `invoke`.
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise  # the help itself, not an error
        except click.UsageError as exc:
            raise _usage_error(exc) from None
        except BrokenPipeError as exc:
            if not _stdout_is_broken():
                click.echo(f"error: {exc}", err=True)
                raise click.exceptions.Exit(EXIT_FAILED) from None
            _leave_quietly()
            raise click.exceptions.Exit(EXIT_OK) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            # click's own: "Usage: ...", "Try ...", "Error: ..."; ours: one `error:` line.
            raise _usage_error(exc) from None
        except BrokenPipeError as exc:
            if not _stdout_is_broken():
                # Another pipe or socket went away: an error like any other OSError.
                _show_traceback(ctx)
                click.echo(f"error: {exc}", err=True)
                ctx.exit(EXIT_FAILED)
            # The reader went away (`imuzekit ... | head`): what it read was complete, and a
            # tool in a pipeline says nothing about it (click alone would exit 1).
            _leave_quietly()
            ctx.exit(EXIT_OK)
        except SystemExit as exc:
            # rich handles a broken pipe itself: stdout to /dev/null, then `SystemExit(1)`
            # raised while handling the `BrokenPipeError` (`Console.on_broken_pipe`).
            if isinstance(exc.__context__, BrokenPipeError):
                _leave_quietly()
                ctx.exit(EXIT_OK)
            raise
        except errors.ImuzekitError as exc:
            _show_traceback(ctx)
            state = ctx.find_object(CliState)
            message, code = describe_error(exc, lookup=state.lookup if state else None)
            click.echo(f"error: {message}", err=True)
            ctx.exit(code)
        except KeyboardInterrupt:
            _show_traceback(ctx)
            click.echo("Interrupted.", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except OSError as exc:
            # A file we could not write or read: the OS message names it.
            _show_traceback(ctx)
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_FAILED)


def _usage_error(exc: click.UsageError) -> CliUsageError:
    """A usage error as every other error line: ``error: <what>; see `<command> --help```."""
    if isinstance(exc, CliUsageError):
        return exc
    message = exc.format_message().strip().rstrip(".")
    if message[:1].isupper() and message[1:2].islower():  # "Invalid value": not "IMUZEKIT_LOG"
        message = message[0].lower() + message[1:]
    command = exc.ctx.command_path if exc.ctx is not None else "imuzekit"
    return CliUsageError(f"{message}; see `{command} --help`")


def _stdout_is_broken() -> bool:
    """Whether stdout's reader went away: flushing it fails with EPIPE, or its descriptor
    polls as an error (a pipe with no reader left), so a ``BrokenPipeError`` was ours."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    except (AttributeError, ValueError, OSError) as exc:  # closed, or not a real file
        return getattr(exc, "errno", None) == errno.EPIPE
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # not a real file (e.g. click's CliRunner)
        return False
    if not hasattr(select, "poll"):  # pragma: no cover - Windows: trust the flush above
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    # A pipe whose every reader closed polls as POLLERR (Linux) or POLLHUP (BSD, macOS).
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def _leave_quietly() -> None:
    """Point stdout at /dev/null: Python flushes it once more at exit, which would fail again.

    The recipe of the `signal` module's documentation ("Note on SIGPIPE"); restoring the
    default SIGPIPE action instead would kill the process in the middle of its cleanup.
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # not a real file (e.g. click's CliRunner)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _show_traceback(ctx: click.Context) -> None:
    state = ctx.find_object(CliState)
    if state is not None and state.debug:
        traceback.print_exc(file=sys.stderr)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="imuzekit")
@click.option(
    "--debug", is_flag=True, help="Show tracebacks and the request log (DEBUG) on stderr."
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=pathlib.Path),
    default=None,
    help="Config file (default: $XDG_CONFIG_HOME/imuzekit/config.toml).",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool, config_path: pathlib.Path | None) -> None:
    """imuzekit: generate music with iMuze, joplin, Mureka and MuseScore from the command line.

    Credentials come from IMUZEKIT_* variables over the config file over defaults
    (`imuzekit config show`); every provider command also runs against an embedded emulator
    with --emulator.
    """
    state = ctx.ensure_object(CliState)
    state.debug = debug
    state.config_path = config_path
    # A typo in a variable name would leave a provider unconfigured without a word.
    for note in unknown_variables(os.environ):
        click.echo(f"note: {note}", err=True)
    # --debug, or IMUZEKIT_LOG=debug|info (as OPENAI_LOG): imuzekit's log lines on stderr.
    level = "debug" if debug else os.environ.get("IMUZEKIT_LOG", "")
    if level:
        try:
            log_to_stderr(level)
        except errors.ConfigurationError as exc:
            raise CliUsageError(str(exc)) from None


def _register() -> None:
    from imuzekit.cli import batch, config, demo, emulator, imuze, joplin, mureka, musescore

    for command in (
        batch.batch,
        config.config,
        demo.demo,
        emulator.emulator,
        imuze.imuze,
        joplin.joplin,
        mureka.mureka,
        musescore.musescore,
    ):
        cli.add_command(command)


_register()


def run_cli(argv: list[str] | None = None) -> None:
    """Run the ``imuzekit`` group on ``argv`` (default: the process's arguments) and exit."""
    try:
        cli.main(args=argv, prog_name="imuzekit", obj=CliState())
    except KeyboardInterrupt:  # outside a command (e.g. while click parses): same exit code
        click.echo("Interrupted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
