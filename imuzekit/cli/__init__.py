"""The ``imuzekit`` command line (needs the ``cli`` extra: click and rich).

It uses only the public API: the Client, the jobs, the downloader and the emulator.
"""

from __future__ import annotations

import sys

import click

from imuzekit import __version__, errors

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="imuzekit")
@click.option("--debug", is_flag=True, help="Show tracebacks and the request log on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """imuzekit: generate music with iMuze, Mureka and MuseScore from the command line."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")


def _register() -> None:
    from imuzekit.cli import demo, emulator

    cli.add_command(demo.demo)
    cli.add_command(emulator.emulator)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``imuzekit`` console script."""
    _register()
    try:
        cli.main(args=argv, prog_name="imuzekit", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except errors.ImuzekitError as exc:
        if "--debug" in (argv if argv is not None else sys.argv):
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
