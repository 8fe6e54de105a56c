"""The ``imuzekit`` command line (needs the ``cli`` extra: click and rich).

It uses only the public API: the Client, the jobs, the downloader and the emulator. Expected
failures print one line on stderr (what failed, why, what to do) and exit with a documented
code: 0 success, 1 a failure (an API error, a failed job, batch lines not done), 2 a usage or
configuration error, 130 interrupted. ``--debug`` adds the traceback and the request log.
"""

from __future__ import annotations

import logging
import pathlib
import sys
import traceback
from typing import Any

import click

from imuzekit import __version__, errors
from imuzekit.cli._common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    CliState,
    describe_error,
)

__all__ = ["cli", "main"]


class _Group(click.Group):
    """The root group: turns expected errors into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except errors.ImuzekitError as exc:
            _show_traceback(ctx)
            message, code = describe_error(exc)
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
    if debug:
        logger = logging.getLogger("imuzekit")
        if not any(getattr(h, "_imuzekit_cli", False) for h in logger.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
            )
            handler._imuzekit_cli = True  # type: ignore[attr-defined]
            logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)


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


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``imuzekit`` console script."""
    try:
        cli.main(args=argv, prog_name="imuzekit", obj=CliState())
    except KeyboardInterrupt:  # outside a command (e.g. while click parses): same exit code
        click.echo("Interrupted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
