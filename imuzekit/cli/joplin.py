"""``imuzekit joplin``: the iMuze music engine's genres and structured music generation."""

from __future__ import annotations

import pathlib

import click

from imuzekit.cli._command import Invocation, command
from imuzekit.cli._common import duration_callback, emit_json
from imuzekit.cli._jobs import create_jobs, finish_jobs, out_option
from imuzekit.cli._tables import print_table
from imuzekit.providers.joplin import Structure

__all__ = ["joplin"]


@click.group()
def joplin() -> None:
    """The iMuze music engine (joplin): genres and musics (IMUZEKIT_JOPLIN_*)."""


@command(joplin)
async def genres(call: Invocation) -> None:
    """List the genres and their subgenres."""
    items = await call.kit.joplin.genres()
    if call.as_json:
        for item in items:
            emit_json(item)
        return
    rows = [(item.name, ", ".join(item.subgenres)) for item in items]
    print_table(("genre", "subgenres"), rows, ids=("genre",), title="joplin genres")


def _structure(ctx: click.Context, param: click.Parameter, value: str) -> Structure:
    from imuzekit import errors

    try:
        return Structure.parse(value)
    except errors.ValidationError as exc:
        raise click.BadParameter(f"{exc.field}: {exc.reason}", ctx, param) from None


@command(joplin)
@click.option("--genre", required=True, help="Genre (see `imuzekit joplin genres`).")
@click.option("--subgenre", required=True, help="Subgenre of that genre.")
@click.option(
    "--duration",
    "duration_ms",
    callback=duration_callback,
    required=True,
    help="Length: 30s, 1m30s, 45000ms or plain seconds.",
)
@click.option(
    "--structure",
    required=True,
    callback=_structure,
    help="Movements and their share, e.g. calm:0.3,dynamic:0.7 or intro:0.1,verse:0.4,refrain:0.5.",
)
@click.option("--count", type=click.IntRange(1, 1000), default=1, show_default=True)
@out_option
async def create(
    call: Invocation,
    genre: str,
    subgenre: str,
    duration_ms: int,
    structure: Structure,
    count: int,
    out: pathlib.Path | None,
) -> int:
    """Generate musics, wait for them, and download them with --out."""
    kit = call.kit
    jobs, stopped = await create_jobs(
        lambda: kit.joplin.musics.create(genre, subgenre, duration_ms, structure), count
    )
    return await finish_jobs(kit, jobs, wait=True, out=out, as_json=call.as_json, stopped=stopped)
