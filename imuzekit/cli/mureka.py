"""``imuzekit mureka``: Mureka through useapi.net, feeds and creation."""

from __future__ import annotations

import pathlib
from typing import Any

import click

from imuzekit.cli._command import Invocation, command
from imuzekit.cli._common import emit_json
from imuzekit.cli._jobs import create_jobs, finish_jobs, out_option
from imuzekit.cli._tables import print_table

__all__ = ["mureka"]


@click.group()
def mureka() -> None:
    """Mureka through useapi.net: feeds and generations (IMUZEKIT_MUREKA_*)."""


@command(mureka)
@click.option("--prompt", required=True, help="What the song is about (style, mood, topic).")
@click.option("--instrumental", is_flag=True, help="No vocals (create-instrumental).")
@click.option("--title", default=None, help="Title (instrumentals only).")
@click.option("--model", default=None, help="Model: V9 (the service's default), V8, O2 or V7.6.")
@click.option("--account", default=None, help="Account id (default: the least busy).")
@click.option("--count", type=click.IntRange(1, 1000), default=1, show_default=True)
@out_option
async def create(
    call: Invocation,
    prompt: str,
    instrumental: bool,
    title: str | None,
    model: str | None,
    account: str | None,
    count: int,
    out: pathlib.Path | None,
) -> int:
    """Generate songs (two per generation), wait for them, and download them with --out."""
    if title is not None and not instrumental:
        raise click.UsageError("--title goes with --instrumental (create takes a prompt only)")
    kit = call.kit
    music = kit.mureka.music

    def factory() -> Any:
        if instrumental:
            return music.create_instrumental(prompt, title=title, model=model, account=account)
        return music.create(prompt, model=model, account=account)

    jobs, stopped = await create_jobs(factory, count)
    return await finish_jobs(kit, jobs, wait=True, out=out, as_json=call.as_json, stopped=stopped)


@command(mureka, "list")
@click.option("--account", default=None, help="Only this account (default: every account).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N feeds.")
async def list_feeds(call: Invocation, account: str | None, limit: int | None) -> None:
    """List the feeds (generations) and their songs, newest first."""
    kit = call.kit
    rows: list[tuple[str, Any]] = []
    accounts: list[str | None] = [account] if account else [*kit.mureka.accounts] or [None]
    for name in accounts:
        count = 0
        async for feed in kit.mureka.music.list(account=name):
            rows.append((name or "", feed))
            count += 1
            if limit is not None and count >= limit:
                break
    if call.as_json:
        for name, feed in rows:
            emit_json({"account": name or None, **_feed_dict(feed)})
        return
    lines: list[tuple[str, ...]] = []
    for name, feed in rows:
        for song in feed.songs or ():
            seconds = (
                f"{song.duration_milliseconds / 1000:.0f} s" if song.duration_milliseconds else "-"
            )
            lines.append(
                (
                    name,
                    "" if feed.feed_id is None else str(feed.feed_id),
                    str(feed.state),
                    song.song_id or "",
                    song.title or "",
                    seconds,
                )
            )
    print_table(
        ("account", "feed", "state", "song", "title", "duration"),
        lines,
        ids=("account", "feed", "song"),
        title="Mureka feeds",
    )


def _feed_dict(feed: Any) -> dict[str, Any]:
    from imuzekit.cli._common import jsonable

    data: dict[str, Any] = jsonable(feed)
    return data
