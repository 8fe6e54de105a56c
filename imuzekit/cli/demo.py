"""``imuzekit demo``: every provider end to end on the embedded emulator, no account needed.

It starts the emulator in-process, creates a dozen iMuze songs, joplin musics of different
structures and a Mureka generation on each account, searches MuseScore scores (when the
emulator serves MuseScore) and downloads everything, showing one progress bar per job state
and one for the bytes, then a table of the files.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import attrs
import click
from rich.console import Console
from rich.table import Table

import imuzekit
from imuzekit import Client, Job, JobState, errors
from imuzekit.cli._common import (
    EMULATOR_POLL,
    EMULATOR_RENDER_SECONDS,
    EXIT_FAILED,
    closing_despite_cancellation,
)
from imuzekit.cli._jobs import files_of
from imuzekit.cli._progress import ByteMeter, StateBoard, human_bytes
from imuzekit.providers import registry

__all__ = ["demo"]

_TITLES = (
    "Morning Light",
    "Neon Drive",
    "Quiet Harbour",
    "Paper Planes",
    "Northern Lines",
    "Late Train",
    "Copper Sky",
    "Open Fields",
    "Glass City",
    "Slow Tide",
    "First Snow",
    "Long Way Home",
)
_STRUCTURES = (
    "calm:0.3,dynamic:0.7",
    "intro:0.1,verse:0.4,refrain:0.5",
    "calm:0.2,medium:0.4,dynamic:0.4",
    "intro:0.2,refrain:0.5,outro:0.3",
)
_PROMPTS = (
    "a sunny ska tune about trains",
    "a slow piano ballad about the sea",
)
_STATES = ("queued", "processing", "ready", "failed")


@attrs.frozen
class _Row:
    provider: str
    title: str
    duration: str
    size: str
    path: str
    ok: bool = True


@attrs.frozen
class _Item:
    """One file to download, with what the table says about it."""

    provider: str
    source: Any
    title: str
    duration: str


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} s"


async def _create(kit: Client, length: int) -> list[tuple[str, Job[Any]]]:
    jobs: list[tuple[str, Job[Any]]] = []
    arrangements = [a async for a in kit.imuze.arrangements.list()]
    for index, title in enumerate(_TITLES):
        job = await kit.imuze.songs.create(
            title=title,
            arrangement_id=arrangements[index % len(arrangements)].id,
            tags=["demo", "imuzekit"],
            desired_length=length + index,
        )
        jobs.append(("imuze", job))
    genres = [g for g in await kit.joplin.genres() if g.subgenres]
    for index, structure in enumerate(_STRUCTURES):
        genre = genres[index % len(genres)]
        joplin_job = await kit.joplin.musics.create(
            genre.name, genre.subgenres[0], (length + 5 * index) * 1000, structure
        )
        jobs.append(("joplin", joplin_job))
    for index, account in enumerate(kit.mureka.accounts):
        mureka_job = await kit.mureka.music.create(_PROMPTS[index % len(_PROMPTS)], account=account)
        jobs.append(("mureka", mureka_job))
    return jobs


def _items(jobs: Sequence[tuple[str, Job[Any]]]) -> list[_Item]:
    """The files of the jobs that finished, described as the `create` commands describe them."""
    items: list[_Item] = []
    for provider, job in jobs:
        if job.state is not JobState.READY or job.result is None:
            continue
        for source, fields in files_of(job.result):
            items.append(_Item(provider, source, fields["title"], fields["duration"]))
    return items


async def _musescore_items(kit: Client) -> list[_Item]:
    """A search, then one score's pdf and midi (when the emulator serves MuseScore)."""
    try:
        namespace = kit.musescore
    except errors.ConfigurationError:
        return []
    items: list[_Item] = []
    async for score in namespace.scores.search("bach", sort="view_count", limit=5):
        if not score.secret:
            continue
        duration = score.metadata.duration if score.metadata else None
        for fmt in ("pdf", "mid"):
            items.append(
                _Item("musescore", score.file(fmt), f"{score.title} ({fmt})", _seconds(duration))
            )
        break
    return items


async def _download(
    kit: Client, items: Sequence[_Item], out: pathlib.Path, board: StateBoard
) -> list[_Row]:
    meter = ByteMeter(board.add_bytes)
    rows: list[_Row] = []

    async def one_provider(provider: str) -> None:
        mine = [item for item in items if item.provider == provider]
        by_source = {id(item.source): item for item in mine}
        async for result in kit.download_many(
            [item.source for item in mine], out / provider, overwrite=True, on_progress=meter
        ):
            item = by_source[id(result.source)]
            if result.error is not None or result.path is None:
                rows.append(
                    _Row(provider, item.title, item.duration, "-", f"failed: {result.error}", False)
                )
            else:
                rows.append(
                    _Row(
                        provider,
                        item.title,
                        item.duration,
                        human_bytes(result.size),
                        str(result.path),
                    )
                )

    providers = sorted({item.provider for item in items})
    await asyncio.gather(*(one_provider(p) for p in providers))
    board.finish_bytes()
    order = {name: index for index, name in enumerate(registry().names())}
    return sorted(rows, key=lambda r: (order.get(r.provider, len(order)), r.path))


async def _tick(board: StateBoard, jobs: Sequence[tuple[str, Job[Any]]]) -> None:
    while True:
        board.update(_counts(jobs))
        await asyncio.sleep(0.1)


def _counts(jobs: Sequence[tuple[str, Job[Any]]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for _, job in jobs:
        state = job.state.value if job.state is not JobState.UNKNOWN else "processing"
        counts[state] += 1
    return counts


async def _run(out: pathlib.Path, length: int, console: Console) -> tuple[list[_Row], int]:
    from imuzekit.emulator import Emulator

    async with closing_despite_cancellation() as stack:
        emu = await stack.enter_async_context(Emulator(render_seconds=EMULATOR_RENDER_SECONDS))
        kit = await stack.enter_async_context(emu.client(poll=EMULATOR_POLL))
        console.print(f"[dim]emulator on {emu.base_url}; files go to {out}[/dim]")
        with StateBoard(console, _STATES) as board:
            search = asyncio.ensure_future(_musescore_items(kit))
            jobs: list[tuple[str, Job[Any]]] = []
            ticker = asyncio.ensure_future(_tick(board, jobs))
            try:
                jobs.extend(await _create(kit, length))
                board.set_total(len(jobs))
                async for _ in kit.as_completed([job for _, job in jobs], timeout=60):
                    board.update(_counts(jobs))
            finally:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
            board.update(_counts(jobs))
            items = _items(jobs) + await search
            rows = await _download(kit, items, out, board)
    failed_jobs = sum(1 for _, job in jobs if job.state is not JobState.READY)
    return rows, failed_jobs


@click.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=pathlib.Path),
    default=pathlib.Path("imuzekit-demo"),
    show_default=True,
    help="Where the generated files go (one folder per provider).",
)
@click.option(
    "--length",
    type=click.IntRange(1, 600),
    default=10,
    show_default=True,
    help="Length of the first song in seconds (the others are a little longer).",
)
def demo(out: pathlib.Path, length: int) -> None:
    """Run every provider end to end on the embedded emulator (no account needed)."""
    console = Console()
    started = time.monotonic()
    rows, failed_jobs = asyncio.run(_run(out, length, console))
    table = Table(title=f"imuzekit {imuzekit.__version__} demo")
    for column in ("provider", "title", "duration", "size", "path"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row.provider, row.title, row.duration, row.size, row.path)
    console.print(table)
    failed = sum(1 for row in rows if not row.ok) + failed_jobs
    providers = len({row.provider for row in rows if row.ok})
    console.print(
        f"{sum(1 for row in rows if row.ok)} files from {providers} providers in {out} "
        f"({time.monotonic() - started:.1f} s)"
    )
    if failed:
        console.print(f"[red]{failed} jobs or downloads failed[/red]")
        raise SystemExit(EXIT_FAILED)
