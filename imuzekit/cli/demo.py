"""``imuzekit demo``: the whole pipeline against the embedded emulator, no account needed."""

from __future__ import annotations

import asyncio
import pathlib
import time

import click
from rich.console import Console
from rich.table import Table

import imuzekit
from imuzekit import JobState
from imuzekit.emulator import Emulator

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


async def _run(
    out: pathlib.Path, count: int, length: int, console: Console
) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    async with Emulator(render_seconds=(0.3, 1.2)) as emu, emu.client() as kit:
        console.print(f"[dim]emulator on {emu.base_url}[/dim]")
        arrangements = [a async for a in kit.imuze.arrangements.list()]
        jobs = []
        for index in range(count):
            arrangement = arrangements[index % len(arrangements)]
            job = await kit.imuze.songs.create(
                title=_TITLES[index % len(_TITLES)],
                arrangement_id=arrangement.id,
                tags=["demo", "imuzekit"],
                desired_length=length,
            )
            jobs.append(job)
        console.print(f"created {len(jobs)} iMuze songs; waiting for them to render")
        ready = []
        async for job in kit.as_completed(jobs, timeout=60):
            if job.state is JobState.READY and job.result is not None:
                ready.append(job.result)
                console.print(f"  [green]ready[/green] {job.result.title} (song {job.id})")
            else:
                console.print(f"  [red]{job.state.value}[/red] song {job.id}: {job.error}")
        async for result in kit.download_many(ready, out, concurrency=4):
            song = result.source
            if result.error is not None or result.path is None:
                rows.append(("imuze", song.title or "?", "-", "-", f"failed: {result.error}"))
                continue
            rows.append(
                (
                    "imuze",
                    song.title or "?",
                    f"{song.desired_length or length} s",
                    f"{result.size / 1024:.0f} KiB",
                    str(result.path),
                )
            )
    return rows


@click.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=pathlib.Path),
    default=pathlib.Path("imuzekit-demo"),
    show_default=True,
    help="Where the generated files go.",
)
@click.option("--count", type=click.IntRange(1, 200), default=4, show_default=True)
@click.option(
    "--length",
    type=click.IntRange(1, 600),
    default=20,
    show_default=True,
    help="Song length in seconds.",
)
def demo(out: pathlib.Path, count: int, length: int) -> None:
    """Run the generation pipeline end to end on the embedded emulator."""
    console = Console()
    started = time.monotonic()
    rows = asyncio.run(_run(out, count, length, console))
    table = Table(title=f"imuzekit {imuzekit.__version__} demo")
    for column in ("provider", "title", "duration", "size", "path"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    failed = sum(1 for row in rows if row[-1].startswith("failed"))
    console.print(f"{len(rows) - failed} files in {out} ({time.monotonic() - started:.1f} s)")
    if failed:
        raise SystemExit(1)
