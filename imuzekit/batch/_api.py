"""The Batch API: open a journal, add manifest lines, run them with a Client, read the status.

```python
async with imuzekit.batch.open("batch.db", client=kit) as batch:   # or "postgresql://..."
    await batch.add(lines)                                  # idempotent
    async for event in batch.run("songs/", concurrency=16):
        ...
    print(await batch.status())
```

The journal is SQLite (a file path, the default: no server) or PostgreSQL (a
``postgresql://`` URL: many workers on many machines share one batch). `imuzekit batch run`
and `imuzekit batch status` are a shell over this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs

from imuzekit import Client, errors
from imuzekit.batch._events import BatchEvent, Board, LineChanged, ProgressCallback
from imuzekit.batch._journal import AsyncJournal, FileRecord, Journal, LineRecord
from imuzekit.batch._lock import RunLock, is_postgres_url
from imuzekit.batch._manifest import (
    REJECTED,
    ManifestError,
    ManifestLine,
    check_unique,
    parse_line,
    rejected_line,
    variants,
)
from imuzekit.batch._runner import BatchOptions, BatchRunner, choice_errors

if TYPE_CHECKING:
    from imuzekit.batch._pg import PgJournal

__all__ = ["AddResult", "Batch", "BatchStatus", "Line", "RejectedLine", "open_batch"]

Line: TypeAlias = Mapping[str, Any] | str
"""A manifest line: a dict (``{"provider": "imuze", "key": "a", ...}``) or its JSON text."""

_END = object()  # the run's last item on its event queue


@attrs.frozen
class RejectedLine:
    """A line that failed validation: recorded ``failed`` with ``reason``, never sent."""

    line: int
    key: str
    reason: str


@attrs.frozen
class AddResult:
    """What `Batch.add` did with the lines it was given."""

    lines: int
    """How many lines were given (the valid and the rejected ones)."""
    rejected: tuple[RejectedLine, ...] = ()
    """The lines that failed validation (each recorded ``failed`` with its reason)."""
    conflicts: tuple[str, ...] = ()
    """Lines the journal already holds with another request that was sent: the journal keeps
    its own (give the new request another key, or use another journal)."""


@attrs.frozen
class BatchStatus:
    """A batch's lines counted per state, its files, and the lines that need attention."""

    journal: str
    """The journal's path, or its URL with the password masked."""
    counts: Mapping[str, int]
    """Lines per state (every state listed, in the journal's order)."""
    files: tuple[FileRecord, ...] = ()
    """Every file written (path, size, SHA-256, remote id; the host on PostgreSQL)."""
    problems: tuple[LineRecord, ...] = ()
    """The ``failed``, ``uncertain`` and ``submitting`` lines, with their errors."""

    @property
    def total(self) -> int:
        """How many lines the batch has."""
        return sum(self.counts.values())

    @property
    def done(self) -> bool:
        """Whether every line is ``downloaded``."""
        return self.counts.get("downloaded", 0) == self.total


class Batch:
    """A batch on its journal; get one with `imuzekit.batch.open(journal)`."""

    def __init__(
        self,
        store: AsyncJournal | PgJournal,
        *,
        journal: str,
        path: pathlib.Path | None,
        locked: bool = False,
        client: Client | None = None,
    ) -> None:
        self._store = store
        self.client = client
        """The Client `run` sends through unless given another (`open(..., client=kit)`)."""
        self._path = path
        self._locked = locked
        self.journal = journal
        """The journal's path, or its URL with the password masked."""

    def __repr__(self) -> str:
        return f"<Batch {self.journal}>"

    async def _do(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """One journal operation (SQLite's in its worker thread, PostgreSQL's as it is)."""
        store = self._store
        if isinstance(store, AsyncJournal):
            return await store.call(getattr(store.journal, name), *args, **kwargs)
        return await getattr(store, name)(*args, **kwargs)

    def _lock(self) -> contextlib.AbstractContextManager[Any]:
        # One writer at a time on a SQLite journal; PostgreSQL's workers share theirs.
        if self._path is None or self._locked:
            return contextlib.nullcontext()
        return RunLock(self._path)

    # -- reading ---------------------------------------------------------------------------

    async def lines(self, *states: str, keys: Iterable[str] | None = None) -> list[LineRecord]:
        """The journal's lines in manifest order: all, or those in ``states`` (and ``keys``)."""
        rows: list[LineRecord] = await self._do("lines", states or None)
        if keys is None:
            return rows
        wanted = set(keys)
        return [row for row in rows if row.key in wanted]

    async def files(self, key: str | None = None) -> list[FileRecord]:
        """The files written (of one line, or all)."""
        files: list[FileRecord] = await self._do("files", key)
        return files

    async def status(self) -> BatchStatus:
        """The lines per state, the files, and the lines that need attention."""
        counts: dict[str, int] = await self._do("counts")
        return BatchStatus(
            self.journal,
            counts,
            tuple(await self.files()),
            tuple(await self.lines("failed", "uncertain", "submitting")),
        )

    # -- adding ----------------------------------------------------------------------------

    async def add(
        self, lines: Iterable[Line | ManifestLine] | str | os.PathLike[str], *, start: int = 1
    ) -> AddResult:
        """Add manifest lines (idempotent: a line the journal has is left as it is).

        ``lines``: dicts or JSON texts in the manifest's line format (`docs/cli.md`), or the
        path of a JSON-lines manifest. Each is validated against its provider's create call
        (the same limits as the SDK); a line that fails is recorded ``failed`` with the reason
        before anything is sent, and the others go on. A line without ``key`` is keyed by its
        number: its position counting from ``start`` (a manifest file's line number), so add
        the same lines in the same order, or give every line a key. Two lines with one key (or
        keys naming the same file) are a `ManifestError` and nothing is added.

        Raises:
            ManifestError: a line is not a manifest line (not JSON, no provider,
                ...), the file is not UTF-8, or two lines share a key or a file: nothing is added.
            imuzekit.batch.JournalError: another process holds the SQLite journal's lock.
        """
        if isinstance(lines, str | os.PathLike):
            parsed = _parse(await asyncio.to_thread(_numbered, lines, start))
        else:
            parsed = _parse(_numbered(lines, start))
        check_unique(parsed)
        if not parsed:
            return AddResult(0)
        with self._lock():
            before = {row.key: row for row in await self.lines()}
            conflicts: list[str] = await self._do("sync", parsed)
            rejected: list[RejectedLine] = []
            for item in parsed:
                old = before.get(item.key)
                if item.rejected is not None:
                    rejected.append(RejectedLine(item.number, item.key, item.rejected))
                    row: LineRecord | None = await self._do("line", item.key)
                    if row is not None and row.state == "pending":
                        await self._do("transition", item.key, "failed", error=item.rejected)
                elif (
                    old is not None
                    and old.digest.startswith(REJECTED)
                    and old.state == "failed"
                    and old.digest != item.digest
                ):
                    # Corrected: the rejected line's key now holds a valid request.
                    await self._do("transition", item.key, "pending", detail="corrected")
        return AddResult(len(parsed), tuple(rejected), tuple(conflicts))

    # -- running ---------------------------------------------------------------------------

    async def run(
        self,
        out: str | os.PathLike[str],
        *,
        client: Client | None = None,
        concurrency: int = 16,
        resubmit_uncertain: bool = False,
        retry_failed: bool = False,
        only: Iterable[str] | None = None,
        on_download: Callable[[str, int], ProgressCallback | None] | None = None,
        describe: Callable[[errors.ImuzekitError], str] | None = None,
        board: Board | None = None,
    ) -> AsyncIterator[BatchEvent]:
        """Bring every line as far as it goes, yielding what happens as it happens.

        Each line is submitted (committed ``submitting`` first, so a crash never sends it
        twice), waited for, downloaded into ``out`` (``<key>.mp3``; a Mureka line's songs
        ``<key>-1.mp3``, ``<key>-2.mp3``) and recorded; a line caught mid-create by a crash is
        reconciled with the provider's own search before anything is sent again. The
        iteration ends when no line can go further in this run; `status` then tells what is
        left. Stopping the iteration early (``break``, cancellation) stops the run; running
        again resumes it.

        ``client``: the Client to send through (default: the one given to `open`).
        ``concurrency``: lines in progress at once. ``resubmit_uncertain``, ``retry_failed``:
        send those lines again. ``only``: run just these keys. ``on_download(key, index)``:
        called as each file's download starts, returns its ``on_progress(done, total)`` (or
        None). ``describe``: how an error is worded in the journal. ``board``: a progress
        view (`Board`). ``ConfigurationError`` before anything is sent when a provider the
        lines use is not configured.

        A line's own failure (a refused create, a failed job, a broken download) is not
        raised: it is journalled and yielded as a `LineError`.

        Raises:
            errors.ValidationError: no Client was given, to `open` or to `run`.
            errors.ConfigurationError: a provider the lines use is not configured (nothing is
                sent).
            imuzekit.batch.JournalError: another process holds the SQLite journal's lock, or
                the journal cannot be written.
            ManifestError: the journal's lines name one file twice.
        """
        client = client if client is not None else self.client
        if not isinstance(client, Client):
            raise errors.ValidationError(
                "client",
                "run needs a Client: open(journal, client=kit), or run(out, client=kit)",
            )
        queue: asyncio.Queue[Any] = asyncio.Queue()
        options = BatchOptions(
            out=pathlib.Path(out),
            concurrency=concurrency,
            resubmit_uncertain=resubmit_uncertain,
            retry_failed=retry_failed,
        )
        kwargs: dict[str, Any] = {"on_event": queue.put_nowait, "board": board}
        if on_download is not None:
            kwargs["progress"] = on_download
        if describe is not None:
            kwargs["describe"] = describe
        keys = set(only) if only is not None else None
        task = asyncio.create_task(self._drive(client, options, keys, kwargs, queue))
        try:
            while (item := await queue.get()) is not _END:
                yield item
            await task  # its error, if it raised
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait([task])

    async def _drive(
        self,
        client: Client,
        options: BatchOptions,
        keys: set[str] | None,
        kwargs: dict[str, Any],
        queue: asyncio.Queue[Any],
    ) -> None:
        try:
            await self._run(client, options, keys, kwargs)
        finally:
            queue.put_nowait(_END)

    async def _run(
        self,
        client: Client,
        options: BatchOptions,
        keys: set[str] | None,
        kwargs: dict[str, Any],
    ) -> None:
        # Resolved: the journal records absolute paths, valid from any working directory.
        out = await asyncio.to_thread(_ready_dir, options.out)
        options = attrs.evolve(options, out=out)
        with self._lock():
            manifest = await self._runnable(client, options, keys, kwargs["on_event"])
            runner = self._runner(client, manifest, options, kwargs)
            await runner.run()

    async def _runnable(
        self,
        client: Client,
        options: BatchOptions,
        keys: set[str] | None,
        emit: Callable[[BatchEvent], None],
    ) -> list[ManifestLine]:
        """The journal's lines this run may move, as manifest lines; a pending line with a
        value its Client does not offer (a Mureka account) is failed with the reason."""
        table = variants()
        lines: list[ManifestLine] = []
        for row in await self.lines(keys=keys):
            if row.digest.startswith(REJECTED) or (row.provider, row.kind) not in table:
                continue  # never valid: it stays failed with its reason
            if row.state == "downloaded" or (
                (row.state == "failed" and not options.retry_failed)
                or (row.state == "uncertain" and not options.resubmit_uncertain)
            ):
                continue
            params = json.loads(row.request)["params"]
            lines.append(
                ManifestLine(row.line, row.key, row.provider, row.kind, params, row.digest)
            )
        refused = {error.line: error for error in choice_errors(client, lines)}
        runnable: list[ManifestLine] = []
        for line in lines:
            error = refused.get(line.number)
            if error is None:
                runnable.append(line)
                continue
            row = await self._do("line", line.key)
            if row is not None and row.state in ("pending", "failed"):
                if row.state == "pending":
                    moved = await self._do("transition", line.key, "failed", error=error.reason)
                    emit(
                        LineChanged(
                            row.key,
                            row.line,
                            row.provider,
                            "pending",
                            "failed",
                            moved.error,
                            moved.attempts,
                        )
                    )
                continue
            runnable.append(line)  # already sent: the runner says what is wrong
        return runnable

    def _runner(
        self,
        client: Client,
        manifest: Sequence[ManifestLine],
        options: BatchOptions,
        kwargs: dict[str, Any],
    ) -> BatchRunner:
        store = self._store
        if isinstance(store, AsyncJournal):
            return BatchRunner(client, store, manifest, options, **kwargs)
        from imuzekit.batch._workers import WorkerRunner

        return WorkerRunner(client, store, manifest, options, **kwargs)


def _ready_dir(out: pathlib.Path) -> pathlib.Path:
    out.mkdir(parents=True, exist_ok=True)
    return out.resolve()


def _numbered(
    lines: Iterable[Line | ManifestLine] | str | os.PathLike[str], start: int
) -> Iterable[tuple[int, Line | ManifestLine]]:
    if isinstance(lines, str | os.PathLike):
        path = pathlib.Path(lines)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ManifestError(0, None, f"{path} is not UTF-8 text: {exc.reason}") from None
        return [(n, t) for n, t in enumerate(text.splitlines(), 1) if t.strip()]
    return enumerate(lines, start)


def _parse(numbered: Iterable[tuple[int, Line | ManifestLine]]) -> list[ManifestLine]:
    parsed: list[ManifestLine] = []
    for number, item in numbered:
        if isinstance(item, ManifestLine):
            parsed.append(item)
            continue
        if isinstance(item, str):
            text = item
        else:
            try:
                text = json.dumps(dict(item), ensure_ascii=False)
            except (TypeError, ValueError) as exc:
                text = repr(dict(item))
                parsed.append(rejected_line(number, text, ManifestError(number, None, str(exc))))
                continue
        try:
            parsed.append(parse_line(number, text))
        except ManifestError as exc:
            parsed.append(rejected_line(number, text, exc))
    return parsed


@contextlib.asynccontextmanager
async def open_batch(
    journal: str | os.PathLike[str],
    *,
    client: Client | None = None,
    create: bool = True,
    lock: bool = True,
    schema: str = "imuzekit",
) -> AsyncIterator[Batch]:
    """Open the batch whose journal is ``journal``: a SQLite file's path (created if need be)
    or a ``postgresql://`` URL (the ``postgres`` extra; ``schema`` names the PostgreSQL
    schema holding its tables). ``create=False``: only an existing journal. ``client``: the
    Client that `Batch.run` sends through (it may also be given to `run`).

    A SQLite journal is locked while open (`lock`): another process opening it gets a
    `JournalError` at once, before it touches the file (two runners would send the same
    lines). ``lock=False`` opens it beside a running batch, to read its status; `Batch.add`
    and `Batch.run` then take the lock while they work. PostgreSQL journals are shared.

    `JournalError` naming the journal (a URL's password masked) when it cannot be reached or
    opened, or holds a journal of another schema version: before any line is touched.

    Raises:
        imuzekit.batch.JournalError: the journal cannot be reached or opened, is of another
            schema version, does not exist (with `create=False`), or is locked by another
            process.
    """
    spelled = os.fspath(journal)
    if is_postgres_url(spelled):
        from imuzekit.batch._pg import PgJournal

        pg = await PgJournal.open(spelled, schema=schema, create=create)
        try:
            yield Batch(pg, journal=pg.where, path=None, client=client)
        finally:
            await pg.aclose()
        return
    path = pathlib.Path(spelled)
    with RunLock(path) if lock else contextlib.nullcontext():
        store = AsyncJournal(await asyncio.to_thread(Journal, path, create=create))
        try:
            yield Batch(store, journal=str(path), path=path, locked=lock, client=client)
        finally:
            await store.aclose()
