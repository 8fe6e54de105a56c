"""``imuzekit batch``: run a JSON-lines manifest of generations, resumable after any crash.

A shell over the library (`imuzekit.batch`): ``batch run`` adds the manifest to a journal
(SQLite, or PostgreSQL shared by many workers) and runs it; it can be killed at any moment:
running the same command again skips finished lines, resumes submitted ones from their job
tokens and reconciles the ones caught mid-create before anything is sent again.
``batch status`` shows the journal's counts; ``batch resolve`` settles an ``uncertain`` line by
hand.
"""

from __future__ import annotations

import asyncio
import pathlib
import time
from typing import Any

import attrs
import click
from rich.console import Console
from rich.table import Table

from imuzekit import Timeouts
from imuzekit.batch import BatchStatus, Notice
from imuzekit.batch import open as open_batch
from imuzekit.batch._journal import (
    STATES,
    FileRecord,
    Journal,
    JournalError,
    LineRecord,
    RunLock,
)
from imuzekit.batch._lock import is_postgres_url
from imuzekit.batch._manifest import ManifestError, load_manifest
from imuzekit.batch._rules import landing_window, resubmit_after, when
from imuzekit.batch._runner import choice_errors, journal_path_for, summarize
from imuzekit.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    CliUsageError,
    describe_error,
    emit_json,
    emulator_option,
    json_option,
    open_client,
)
from imuzekit.cli._progress import BatchBoard, ByteMeter
from imuzekit.providers import registry

__all__ = ["batch"]

_JOURNAL_NAME = "imuzekit-batch.sqlite"


@click.group()
def batch() -> None:
    """Run many generations from a manifest, resumable after a crash (see docs/cli.md)."""


@batch.command("run")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path))
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=pathlib.Path),
    help="Directory for the files (and, by default, the journal).",
)
@click.option(
    "--journal",
    default=None,
    help=f"Journal file (default: <out>/{_JOURNAL_NAME}), or a postgresql:// URL shared by "
    "many workers.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 10_000),
    default=16,
    show_default=True,
    help="Lines in progress at once (from submission to download).",
)
@click.option(
    "--resubmit-uncertain",
    is_flag=True,
    help="Send again the lines whose first create may or may not have reached the provider.",
)
@click.option("--retry-failed", is_flag=True, help="Send again the lines that failed.")
@click.option(
    "--create-timeout",
    type=click.FloatRange(0.1, 3600.0),
    default=None,
    help="Seconds each request may take in all (default: the Client's 10 s connect + 60 s "
    "read). A create caught by a crash is sent again only once this plus a margin (as much "
    "again, at most 30 s; 100 s by default) has passed since its sender stopped.",
)
@emulator_option
@json_option
@click.pass_context
def run_batch(
    ctx: click.Context,
    manifest: pathlib.Path,
    out: pathlib.Path,
    journal: str | None,
    concurrency: int,
    resubmit_uncertain: bool,
    retry_failed: bool,
    create_timeout: float | None,
    use_emulator: bool,
    as_json: bool,
) -> None:
    """Generate and download every request of MANIFEST (JSON lines) into --out.

    Exit status: 0 every line downloaded, 1 some failed, are uncertain or unfinished,
    2 a bad manifest or configuration, 130 interrupted (run the same command to resume).
    """
    try:
        lines = load_manifest(manifest)
    except ManifestError as exc:
        raise CliUsageError(str(exc)) from None
    except OSError as exc:
        raise CliUsageError(f"cannot read the manifest: {exc}") from None
    where = _journal_of(journal, out)
    keys = [line.key for line in lines]
    err = Console(stderr=True)

    async def main() -> tuple[list[LineRecord], list[FileRecord], str]:
        # The journal first: its lock stops a second run before anything is touched.
        async with (
            open_batch(where) as store,
            open_client(ctx, use_emulator=use_emulator) as kit,
        ):
            if create_timeout is not None:
                # Every attempt's bound; the runner derives its landing window from it.
                timeouts = kit.transport.timeouts
                kit.transport.timeouts = attrs.evolve(
                    timeouts,
                    connect=min(timeouts.connect or create_timeout, create_timeout),
                    total=create_timeout,
                )
            refused = choice_errors(kit, lines)  # the CLI stops at a bad manifest, unsent
            if refused:
                raise refused[0]
            added = await store.add(lines)
            if added.conflicts:
                raise ManifestError(0, None, "; ".join(added.conflicts))
            board = BatchBoard(err, STATES, enabled=err.is_terminal and not as_json)
            meter = ByteMeter(board.add_bytes)
            with board:
                events = store.run(
                    out,
                    client=kit,
                    concurrency=concurrency,
                    resubmit_uncertain=resubmit_uncertain,
                    retry_failed=retry_failed,
                    only=keys,
                    on_download=lambda key, index: meter.callback(),
                    describe=lambda exc: describe_error(exc)[0],
                    board=board,
                )
                async for event in events:
                    if isinstance(event, Notice) and not as_json:
                        err.print(f"[dim]{event.message}[/dim]")
            records = await store.lines(keys=keys)
            files = await store.files() if as_json else []
            return records, files, store.journal

    try:
        records, files, shown = asyncio.run(main())
    except (JournalError, ManifestError) as exc:
        raise CliUsageError(str(exc)) from None
    _report(records, files, shown, as_json)
    done = all(record.state == "downloaded" for record in records)
    ctx.exit(EXIT_OK if done else EXIT_FAILED)


def _journal_of(journal: str | None, out: pathlib.Path) -> str | pathlib.Path:
    """``--journal`` (a path or a PostgreSQL URL) or ``<out>/imuzekit-batch.sqlite``."""
    if journal is not None and is_postgres_url(journal):
        return journal
    return journal_path_for(out, pathlib.Path(journal) if journal is not None else None)


def _record_json(record: LineRecord, files: list[Any]) -> dict[str, Any]:
    return {
        "key": record.key,
        "line": record.line,
        "provider": record.provider,
        "kind": record.kind,
        "state": record.state,
        "remote_id": record.remote_id,
        "attempts": record.attempts,
        "error": record.error,
        "files": files,
    }


def _report(records: list[LineRecord], files: list[FileRecord], where: str, as_json: bool) -> None:
    if as_json:
        by_key: dict[str, list[Any]] = {}
        for f in files:
            by_key.setdefault(f.key, []).append(
                {"path": f.path, "size": f.size, "sha256": f.sha256, "remote_id": f.remote_id}
            )
        for record in records:
            emit_json(_record_json(record, by_key.get(record.key, [])))
        return
    console = Console()
    counts = summarize(records)
    table = Table("state", "lines", title=f"batch: {len(records)} lines", title_justify="left")
    for state, count in counts.items():
        if count:
            table.add_row(state, str(count))
    console.print(table)
    problems = [r for r in records if r.state != "downloaded"]
    for record in problems[:20]:
        reason = f": {record.error}" if record.error else ""
        console.print(
            f"  line {record.line} (key {record.key!r}, {record.provider}) {record.state}{reason}",
            markup=False,
            highlight=False,
        )
    if len(problems) > 20:
        console.print(f"  ... and {len(problems) - 20} more (`imuzekit batch status`)")
    if problems:
        console.print(f"journal: {where}; run the same command again to resume", highlight=False)


def _journal_option(func: Any) -> Any:
    func = click.option(
        "--out",
        type=click.Path(file_okay=False, path_type=pathlib.Path),
        default=None,
        help=f"The run's --out (the journal is <out>/{_JOURNAL_NAME}).",
    )(func)
    return click.option(
        "--journal",
        default=None,
        help=f"Journal file (default: ./{_JOURNAL_NAME}), or a postgresql:// URL.",
    )(func)


def _journal_path(journal: str | None, out: pathlib.Path | None) -> pathlib.Path:
    if journal is not None:
        if is_postgres_url(journal):
            raise CliUsageError("give a SQLite journal's path here (not a PostgreSQL URL)")
        return pathlib.Path(journal)
    return (out or pathlib.Path(".")) / _JOURNAL_NAME


@batch.command()
@_journal_option
@json_option
def status(journal: str | None, out: pathlib.Path | None, as_json: bool) -> None:
    """Count the journal's lines per state (and list the ones that need attention)."""
    where: str | pathlib.Path
    if journal is not None and is_postgres_url(journal):
        where = journal
    else:
        where = _journal_path(journal, out)

    async def read() -> BatchStatus:
        async with open_batch(where, create=False, lock=False) as store:
            return await store.status()

    try:
        found = asyncio.run(read())
    except JournalError as exc:
        raise CliUsageError(str(exc)) from None
    counts = dict(found.counts)
    if as_json:
        emit_json({"journal": found.journal, "total": found.total, "counts": counts})
        return
    console = Console()
    table = Table("state", "lines", title=f"{found.journal}", title_justify="left")
    for state, count in counts.items():
        table.add_row(state, str(count))
    table.add_row("total", str(found.total))
    console.print(table)
    for record in found.problems:
        console.print(
            f"  line {record.line} (key {record.key!r}) {record.state}: {record.error or ''}",
            markup=False,
            highlight=False,
        )


@batch.command()
@click.argument("key")
@click.option(
    "--remote-id",
    default=None,
    help="The provider's id of the generation this line made (song id, music id, Mureka job).",
)
@click.option("--resubmit", is_flag=True, help="Nothing was created: send it again next run.")
@click.option(
    "--force",
    is_flag=True,
    help="With --resubmit: even while the create sent earlier could still land (it may then "
    "be made twice).",
)
@_journal_option
@click.pass_context
def resolve(
    ctx: click.Context,
    key: str,
    remote_id: str | None,
    resubmit: bool,
    force: bool,
    journal: str | None,
    out: pathlib.Path | None,
) -> None:
    """Settle an uncertain line KEY: adopt the generation you found, or resubmit it.

    --resubmit is refused while the create sent earlier could still land (until the line's
    settle_by, or 100 s after its last change in an older journal), unless --force.
    """
    if (remote_id is None) == (not resubmit):
        raise CliUsageError("give exactly one of --remote-id ID and --resubmit")
    if force and not resubmit:
        raise CliUsageError("--force goes with --resubmit only")
    path = _journal_path(journal, out)

    async def token_for(provider: str, remote: str) -> str:
        # Building the job handle sends nothing; it needs the provider's configuration only.
        # The provider's spec builds the job from the id it gave (ValidationError: not one).
        job_for = registry().get(provider).job_for
        if job_for is None:
            raise CliUsageError(f"{provider} has no job to adopt by id; use --resubmit")
        async with open_client(ctx, use_emulator=False) as kit:
            return job_for(kit.namespace(provider), remote).token()

    try:
        with RunLock(path), Journal(path, create=False) as store:
            record = store.line(key)
            if record is None:
                raise CliUsageError(f"no line with key {key!r} in {path}")
            if record.state not in ("uncertain", "submitting"):
                raise CliUsageError(
                    f"line {key!r} is {record.state}; only uncertain lines need resolving"
                )
            if resubmit and not force:
                # The run's create timeout is not known here: the Client's default window.
                safe = resubmit_after(record, landing_window(Timeouts()))
                if time.time() < safe:
                    raise CliUsageError(
                        f"line {key!r}: the create sent earlier could still land until "
                        f"{when(safe)}; resubmitting before then could make it twice. Look for "
                        "it after that time (then --remote-id or --resubmit), or --force"
                    )
            if record.state == "submitting":
                store.transition(key, "uncertain", error="resolved by hand")
            if resubmit:
                store.transition(key, "pending", detail="resolved by hand: resubmit")
                click.echo(f"line {key!r} will be sent again by the next `batch run`")
                return
            assert remote_id is not None
            token = asyncio.run(token_for(record.provider, remote_id))
            store.transition(
                key,
                "submitted",
                token=token,
                remote_id=remote_id,
                detail=f"resolved by hand: {remote_id}",
            )
            click.echo(f"line {key!r} adopts {record.provider} {remote_id}; `batch run` resumes it")
    except JournalError as exc:
        raise CliUsageError(str(exc)) from None
