"""Creating, waiting for and downloading a few jobs, for the provider ``create`` commands."""

from __future__ import annotations

import json
import pathlib
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from rich.console import Console

from imuzekit import Client, Job, JobState, errors
from imuzekit.cli._common import EXIT_FAILED, EXIT_OK, describe_error, emit_json
from imuzekit.cli._progress import ByteMeter, StateBoard, human_bytes
from imuzekit.cli._tables import print_table

__all__ = ["create_jobs", "files_of", "finish_jobs", "out_option"]

F = TypeVar("F", bound=Callable[..., Any])
_STATES = ("queued", "processing", "ready", "failed")


def out_option(func: F) -> F:
    """``--out DIR``: download the results there (implies waiting)."""
    return click.option(
        "--out",
        type=click.Path(file_okay=False, path_type=pathlib.Path),
        default=None,
        help="Download the files into this directory (waits for the jobs).",
    )(func)


async def create_jobs(
    factory: Callable[[], Awaitable[Job[Any]]], count: int
) -> tuple[list[Job[Any]], str | None]:
    """Call ``factory`` ``count`` times; stop at the first error and return it with the jobs.

    An error before the first job is raised (nothing was created); after it, the jobs already
    created are kept so that their ids are reported rather than lost.
    """
    jobs: list[Job[Any]] = []
    for _ in range(count):
        try:
            jobs.append(await factory())
        except errors.ImuzekitError as exc:
            if not jobs:
                raise
            message, _ = describe_error(exc)
            return jobs, f"stopped after {len(jobs)} of {count} creations: {message}"
    return jobs, None


def files_of(result: Any) -> list[tuple[Any, dict[str, Any]]]:
    """The downloadable files of a job's result, each with its table fields.

    A Mureka feed holds two songs; iMuze songs and joplin musics are one file.
    """
    songs = getattr(result, "songs", None)
    if songs is not None:  # a Mureka feed
        return [
            (
                song,
                {
                    "title": f"{song.title or '?'} (v{song.version or '?'})",
                    "id": song.song_id,
                    "duration": _seconds(song.duration_milliseconds, 1000),
                },
            )
            for song in songs
        ]
    if hasattr(result, "desired_length"):  # an iMuze song
        return [
            (
                result,
                {
                    "title": result.title or "?",
                    "id": result.id,
                    "duration": _seconds(result.desired_length, 1),
                },
            )
        ]
    # A joplin music.
    structure = ",".join(f"{m.energy or m.movement}:{m.duration:.2g}" for m in result.structure)
    return [
        (
            result,
            {
                "title": f"{result.genre}/{result.subgenre} {structure} {result.bpm or '?'} bpm",
                "id": result.id,
                "duration": _seconds(result.duration_ms, 1000),
            },
        )
    ]


def _seconds(value: float | None, per_second: float) -> str:
    return "-" if value is None else f"{value / per_second:.0f} s"


async def finish_jobs(
    kit: Client,
    jobs: list[Job[Any]],
    *,
    wait: bool,
    out: pathlib.Path | None,
    as_json: bool,
    stopped: str | None = None,
) -> int:
    """Report ``jobs`` (waiting and downloading when asked) and return the exit code."""
    if not wait:
        _report_created(jobs, as_json)
        if stopped:
            click.echo(f"error: {stopped}", err=True)
        return EXIT_FAILED if stopped else EXIT_OK
    err = Console(stderr=True)
    board = StateBoard(err, _STATES, total=len(jobs), enabled=err.is_terminal and not as_json)
    rows: list[dict[str, Any]] = []
    with board:
        async for job in kit.as_completed(jobs):
            counts = Counter(j.state.value for j in jobs)
            board.update(counts)
            if job.state is not JobState.READY or job.result is None:
                rows.append(_job_row(job, error=job.error or f"job ended {job.state.value}"))
                continue
            for source, fields in files_of(job.result):
                rows.append({**_job_row(job), **fields, "source": source})
        if out is not None:
            await _download(kit, rows, out, board)
    for row in rows:
        row.pop("source", None)
    if as_json:
        for row in rows:
            emit_json(row)
    else:
        lines = [
            (
                row["provider"],
                str(row.get("id", row["job"])),
                row.get("title", ""),
                row.get("duration", ""),
                row["state"] if not row.get("error") else f"[red]{row['error']}[/red]",
                human_bytes(row["size"]) if row.get("size") else "",
                row.get("path") or "",
            )
            for row in rows
        ]
        print_table(
            ("provider", "id", "title", "duration", "state", "size", "path"),
            lines,
            ids=("id", "path"),
        )
    if stopped:
        click.echo(f"error: {stopped}", err=True)
    failed = [row for row in rows if row.get("error")]
    return EXIT_FAILED if failed or stopped else EXIT_OK


def _job_row(job: Job[Any], error: str | None = None) -> dict[str, Any]:
    # The token nested as an object (`jq -c .token` gives the string `kit.resume` takes).
    return {
        "provider": job.provider,
        "job": job.id,
        "state": job.state.value,
        "error": error,
        "token": json.loads(job.token()),
    }


async def _download(
    kit: Client, rows: list[dict[str, Any]], out: pathlib.Path, board: StateBoard
) -> None:
    wanted = [row for row in rows if "source" in row]
    by_source = {id(row["source"]): row for row in wanted}
    meter = ByteMeter(board.add_bytes)
    async for result in kit.download_many(
        [row["source"] for row in wanted], out, on_progress=meter, checksum=True
    ):
        row = by_source[id(result.source)]
        if result.error is not None or result.path is None:
            message = (
                describe_error(result.error)[0]
                if isinstance(result.error, errors.ImuzekitError)
                else str(result.error)
            )
            row["error"] = f"download failed: {message}"
        else:
            row.update(path=str(result.path), size=result.size, sha256=result.sha256)
    board.finish_bytes()


def _report_created(jobs: list[Job[Any]], as_json: bool) -> None:
    if as_json:
        for job in jobs:
            emit_json(_job_row(job))
        return
    rows = [(job.provider, str(job.id), job.state.value) for job in jobs]
    print_table(("provider", "job", "state"), rows, ids=("job",))
    # Tokens are long: one a line, outside the table, so that they are copied whole.
    click.echo("Resume tokens (`kit.resume(token)` picks each job up anywhere):")
    for job in jobs:
        click.echo(job.token())
