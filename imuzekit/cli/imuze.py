"""``imuzekit imuze``: iMuze API v4 arrangements and songs."""

from __future__ import annotations

import pathlib
from typing import Any

import click

from imuzekit.cli._command import Invocation, command
from imuzekit.cli._common import emit_json
from imuzekit.cli._jobs import create_jobs, finish_jobs, out_option
from imuzekit.cli._tables import print_table

__all__ = ["imuze"]


@click.group()
def imuze() -> None:
    """iMuze API v4: arrangements and songs (IMUZEKIT_IMUZE_*)."""


@command(imuze)
async def arrangements(call: Invocation) -> None:
    """List the arrangements (styles) songs can be created with."""
    items = [a async for a in call.kit.imuze.arrangements.list()]
    if call.as_json:
        for item in items:
            emit_json(item)
        return
    rows = [(str(item.id), item.name or "") for item in items]
    print_table(("id", "name"), rows, title="iMuze arrangements")


@imuze.group()
def songs() -> None:
    """Create, list and show songs."""


@command(songs, "list")
async def list_songs(call: Invocation) -> None:
    """List the account's songs with their status."""
    items = [s async for s in call.kit.imuze.songs.list()]
    if call.as_json:
        for item in items:
            emit_json(item)
        return
    rows = [
        (str(item.id), item.title or "", item.status or "", item.arrangement_name or "")
        for item in items
    ]
    print_table(("id", "title", "status", "arrangement"), rows, title="iMuze songs")


@command(songs, lookup="imuzekit imuze songs list")
@click.argument("song_id", type=int, metavar="ID")
async def show(call: Invocation, song_id: int) -> None:
    """Show one song (status, mp3 URL, arrangement, tags)."""
    song = await call.kit.imuze.songs.get(song_id)
    if call.as_json:
        emit_json(song)
        return
    rows: list[tuple[str, str]] = []
    for name in (
        "id",
        "title",
        "status",
        "arrangement_id",
        "arrangement_name",
        "tags",
        "desired_length",
        "musical_mode",
        "mp3_url",
    ):
        value: Any = getattr(song, name)
        if isinstance(value, tuple):
            value = ", ".join(value)
        rows.append((name, "" if value is None else str(value)))
    print_table(
        ("field", "value"), rows, ids=("value",), title=f"iMuze song {song.id}", show_header=False
    )


@command(songs)
@click.option(
    "--arrangement",
    "arrangement_id",
    type=int,
    default=None,
    help="Arrangement id; without it the --tag values choose the arrangement.",
)
@click.option("--title", required=True, help="Song title.")
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option(
    "--length",
    type=click.IntRange(min=1),
    default=60,
    show_default=True,
    help="Desired length in seconds.",
)
@click.option("--count", type=click.IntRange(1, 1000), default=1, show_default=True)
@click.option("--wait", is_flag=True, help="Wait until the songs are ready.")
@out_option
async def create(
    call: Invocation,
    arrangement_id: int | None,
    title: str,
    tags: tuple[str, ...],
    length: int,
    count: int,
    wait: bool,
    out: pathlib.Path | None,
) -> int:
    """Create songs; with --wait wait for them, with --out also download them."""
    kit = call.kit
    jobs, stopped = await create_jobs(
        lambda: kit.imuze.songs.create(
            title=title, arrangement_id=arrangement_id, tags=tags, desired_length=length
        ),
        count,
    )
    return await finish_jobs(
        kit, jobs, wait=wait or out is not None, out=out, as_json=call.as_json, stopped=stopped
    )
