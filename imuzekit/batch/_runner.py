"""The batch engine: submit, resume, reconcile, wait and download, recording every step.

Per line: ``pending`` -> commit ``submitting`` (with ``settle_by``) -> send the create ->
commit ``submitted`` with ``job.token()`` -> wait (``kit.resume(token)`` after a restart) ->
commit ``ready`` -> download to ``<out>/<key>.mp3`` (``<key>-1.mp3``, ``<key>-2.mp3`` for a
Mureka feed's songs), each file recorded (path, size, SHA-256) once written -> commit
``downloaded``.

A line found in ``submitting`` (the create may or may not have reached the provider) is never
simply sent again. Lines whose provider can be searched carry a marker (``ik:<12 hex>``) where
the provider's spec puts it (`CreateCall.mark`: a title), and the provider's own search
(`kit.find_created`: iMuze's song list, Mureka's running jobs and feeds) looks for it; found,
the line continues from there. Not found, it is surely absent only once ``settle_by`` has passed:
the create could land until a landing window (`landing_window()`) after its sender stopped,
and the sender keeps ``settle_by`` ahead of that while it runs; before that the run waits and
looks again. Joplin (no list) and Mureka ``create`` (no title)
lines become ``uncertain``, resubmitted only on request.
"""

from __future__ import annotations

import json
import logging
import pathlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import attrs

from imuzekit import Client, Job, errors
from imuzekit._disk import hash_file as _hash_file  # the downloader's own: one way to hash
from imuzekit.batch._events import (
    BatchEvent,
    Board,
    FileWritten,
    LineChanged,
    LineError,
    Notice,
    ProgressCallback,
    describe,
)
from imuzekit.batch._files import claim_target, own_file
from imuzekit.batch._journal import (
    STATES,
    AsyncJournal,
    FileRecord,
    LineRecord,
    TransitionError,
)
from imuzekit.batch._lock import JournalError
from imuzekit.batch._manifest import ManifestError, ManifestLine, file_name
from imuzekit.batch._rules import landing_window, marked_params, resubmit_after, when
from imuzekit.providers import registry
from imuzekit.providers._spec import CreateCall, Found, markers_in

__all__ = [
    "BatchOptions",
    "BatchRunner",
    "Board",
    "choice_errors",
    "describe",
    "landing_window",
    "marked_params",
    "markers_in",
    "resubmit_after",
]

_log = logging.getLogger("imuzekit.batch")

# Rounds of "process, then reconcile what an ambiguous error left in submitting".
_ROUNDS = 3


@attrs.frozen
class BatchOptions:
    """What ``imuzekit batch run`` was asked to do."""

    out: pathlib.Path
    concurrency: int = 16
    resubmit_uncertain: bool = False
    retry_failed: bool = False


def _refusal(exc: errors.ImuzekitError) -> str | None:
    """Where a line goes when its create raised ``exc``: ``failed`` or ``pending`` when the
    provider surely created nothing, None when it may have (reconcile first)."""
    if isinstance(exc, errors.ValidationError | errors.ConfigurationError):
        return "failed"
    if isinstance(exc, errors.RateLimitError):
        return "pending"  # refused for now: safe to send again on the next run
    if isinstance(exc, errors.APIError) and 400 <= exc.status < 500:
        return "failed"
    if isinstance(exc, errors.TransportError) and exc.sent is False:
        return "pending"  # the request never left
    return None


class BatchRunner:
    """Runs a manifest against a Client, resuming from and recording into the journal."""

    def __init__(
        self,
        kit: Client,
        journal: AsyncJournal,
        manifest: Sequence[ManifestLine],
        options: BatchOptions,
        *,
        board: Board | None = None,
        say: Callable[[str], None] = lambda _: None,
        describe: Callable[[errors.ImuzekitError], str] = describe,
        progress: Callable[[str, int], ProgressCallback | None] = lambda key, index: None,
        on_event: Callable[[BatchEvent], None] = lambda _: None,
    ) -> None:
        self.kit = kit
        self.journal = journal
        self.manifest = manifest
        self.options = options
        self.board = board
        self._say = say
        self.emit = on_event
        """Called with each event as it happens (`Batch.run` yields them)."""
        self.states: dict[str, str] = {}
        self._given_up: set[str] = set()
        # submitting lines not found yet whose create could still land: key -> settle_by.
        self._waiting: dict[str, float] = {}
        # The landing window of this run's creates; a live sender pushes its line's settle_by
        # to "now + window + beat" every beat, so settle_by outlasts its death by a window.
        self.window = landing_window(kit.transport.timeouts)
        self._beat = self.window / 3
        self._limiter = anyio.CapacityLimiter(options.concurrency)
        self._describe = describe
        # Each download's on_progress callback (the CLI's byte meter), or None.
        self._progress = progress

    # -- journal helpers ------------------------------------------------------------------

    def say(self, message: str) -> None:
        """Tell the user what the run does for the whole batch (a `Notice`)."""
        self._say(message)
        self.emit(Notice(message))

    def _moved(self, record: LineRecord, previous: str | None) -> None:
        self.states[record.key] = record.state
        self._show()
        error = record.error if record.state in ("failed", "uncertain") else None
        self.emit(
            LineChanged(
                record.key,
                record.line,
                record.provider,
                previous,
                record.state,
                error,
                record.attempts,
            )
        )

    def _message(self, exc: BaseException) -> str:
        if isinstance(exc, BaseExceptionGroup):
            return "; ".join(self._message(inner) for inner in exc.exceptions)
        if isinstance(exc, errors.ImuzekitError):
            return self._describe(exc)
        return f"{type(exc).__name__}: {exc}"

    def _show(self) -> None:
        if self.board is not None:
            self.board.update(Counter(self.states.values()))

    async def _move(self, key: str, to_state: str, **fields: Any) -> LineRecord:
        previous = self.states.get(key)
        record = await self.journal.call(self.journal.journal.transition, key, to_state, **fields)
        self._moved(record, previous)
        return record

    async def _lines(self, *states: str) -> list[LineRecord]:
        return await self.journal.call(self.journal.journal.lines, states or None)

    async def _note(self, key: str, error: str, *, give_up: bool = True) -> None:
        """Record ``error`` on a line; unless told otherwise, leave it alone for this run."""
        if give_up:
            self._given_up.add(key)
        await self.journal.call(self.journal.journal.note_error, key, error)
        self.emit(LineError(key, error))

    # -- the run --------------------------------------------------------------------------

    def check_configuration(self) -> None:
        """ConfigurationError unless every provider the manifest uses is configured, and
        ManifestError for a value outside what its field's `choices` lists (a Mureka account
        that is not configured)."""
        refused = choice_errors(self.kit, self.manifest)
        if refused:
            raise refused[0]

    async def run(self) -> list[LineRecord]:
        """Bring every line as far as it goes; return the journal's lines afterwards."""
        self.check_configuration()
        journal = self.journal.journal
        conflicts = await self.journal.call(journal.sync, self.manifest)
        if conflicts:
            raise ManifestError(0, None, "; ".join(conflicts))
        wanted = {line.key for line in self.manifest}
        rows = [row for row in await self._lines() if row.key in wanted]
        self.states = {row.key: row.state for row in rows}
        if self.board is not None:
            self.board.set_total(len(rows))
        self._show()
        now = time.time()
        for row in rows:
            if row.state == "uncertain" and self.options.resubmit_uncertain:
                safe = resubmit_after(row, self.window)
                if now < safe:
                    # Its create could still land: a second one now could make two.
                    await self._note(
                        row.key,
                        f"not resubmitted: the create sent earlier could still land until "
                        f"{when(safe)}; run again with --resubmit-uncertain after that",
                    )
                    continue
            if (row.state == "failed" and self.options.retry_failed) or (
                row.state == "uncertain" and self.options.resubmit_uncertain
            ):
                await self._move(row.key, "pending", detail=f"resubmitting a {row.state} line")
        rounds = 0
        while True:
            stuck = [
                row
                for row in await self._lines("submitting")
                if row.key in wanted and row.key not in self._given_up
            ]
            self._waiting.clear()
            if stuck:
                self.say(
                    f"reconciling {len(stuck)} line(s) whose create may have been sent"
                    + (" by an interrupted run" if rounds == 0 else "")
                )
                await self.reconcile(stuck)
            todo = [
                row
                for row in await self._lines("ready", "submitted", "pending")
                if row.key in wanted and row.key not in self._given_up
            ]
            if todo and rounds < _ROUNDS:
                rounds += 1
                order = {"ready": 0, "submitted": 1, "pending": 2}
                todo.sort(key=lambda r: (order[r.state], r.line))
                async with anyio.create_task_group() as group:
                    for row in todo:
                        group.start_soon(self._process, row)
                continue
            if not self._waiting or not await self._await_landing():
                break
        if self.board is not None:
            self.board.finish_bytes()
        return [row for row in await self._lines() if row.key in wanted]

    async def _await_landing(self) -> bool:
        """Sleep until the first waiting line's landing window has passed, then return True
        (look again); False when none may be waited for (they became ``uncertain``)."""
        now = time.time()
        # settle_by was set by this run or an earlier one from the wall clock; one further away
        # than a whole window (a longer timeout then, or a clock set back) is not waited for.
        limit = now + self.window + self._beat + 1.0
        for key, settle_by in list(self._waiting.items()):
            if settle_by > limit:
                del self._waiting[key]
                await self._move(
                    key,
                    "uncertain",
                    error=(
                        "not found yet, and the create could still land until "
                        f"{when(settle_by)}; "
                        f"after that, `imuzekit batch resolve {key}` or run with "
                        "--resubmit-uncertain"
                    ),
                )
        if not self._waiting:
            return False
        wait = max(0.0, min(self._waiting.values()) - now)
        self.say(f"{len(self._waiting)} line(s) could still land: looking again in {wait:.1f} s")
        await anyio.sleep(wait + 0.05)  # a little past settle_by, on this clock
        return True

    # -- one line -------------------------------------------------------------------------

    async def _process(self, row: LineRecord) -> None:
        async with self._limiter:
            try:
                await self._advance(row)
            except Exception as exc:
                # One line's trouble (an API error, a disk full, a journal write that failed,
                # a group of them from a task group) never stops the others.
                _log.debug("line %r failed", row.key, exc_info=exc)
                await self._note(row.key, self._message(exc))

    async def _advance(self, row: LineRecord) -> None:
        job: Job[Any] | None
        if row.state == "pending":
            job = await self._submit(row)
            if job is None:
                return
        elif row.token:
            job = self.kit.resume(row.token)
        else:
            job = None
        if job is not None:
            result = await self._wait(row, job)
            if result is None:
                return
            files = self._files_of(row, result)
            if row.state != "ready":
                info = {"files": [{"remote_id": rid} for rid, _ in files]}
                await self._move(
                    row.key,
                    "ready",
                    token=job.token(),
                    remote_id=row.remote_id or job.id,
                    result=json.dumps(info),
                )
        else:
            files = await self._stored_files(row)
        await self._download(row, files)

    async def _submit(self, row: LineRecord) -> Job[Any] | None:
        params = marked_params(row)
        try:
            # Wall-clock: another process (the next run) compares it with its own time.time().
            await self._move(
                row.key, "submitting", count_attempt=True, settle_by=self._settle_by(self._beat)
            )
        except TransitionError as exc:
            # Another sender committed this line first: it is theirs to send.
            await self._note(row.key, f"not sent: {exc}")
            return None
        try:
            job = await self._create_beating(row, params)
        except JournalError:
            # The journal failed (e.g. recording a shared pause), not the create: whatever
            # the create did, the line stays submitting, for reconciliation before anything
            # is sent again; never "answer lost" and resent by a run whose journal fails.
            raise
        except errors.ImuzekitError as exc:
            target = _refusal(exc)
            if target is None:
                # Maybe created: leave it in submitting; reconciliation decides once the
                # request can no longer land (its sender stopped now).
                lost = f"create answer lost: {self._message(exc)}"
                await self.journal.call(
                    self.journal.journal.note_error,
                    row.key,
                    lost,
                    settle_by=self._settle_by(0.0),
                )
                self.emit(LineError(row.key, lost))
            else:
                await self._move(row.key, target, error=f"create refused: {self._message(exc)}")
                self._given_up.add(row.key)
            return None
        await self._move(row.key, "submitted", token=job.token(), remote_id=job.id)
        return job

    def _settle_by(self, slack: float) -> float:
        return time.time() + self.window + slack

    async def _create_beating(self, row: LineRecord, params: dict[str, Any]) -> Job[Any]:
        """The create, while a heartbeat keeps the line's settle_by a window ahead (a Mureka
        create may wait minutes for a free slot before its request leaves)."""
        journal = self.journal.journal

        async def beat() -> None:
            while True:
                await anyio.sleep(self._beat)
                try:
                    await self.journal.call(journal.extend, row.key, self._settle_by(self._beat))
                except Exception as exc:
                    # Never cancel a create that may be out: the line stays in submitting with
                    # its last settle_by, and reconciliation decides it if this run dies.
                    _log.warning("line %r: heartbeat not recorded: %s", row.key, self._message(exc))
                    self.say(f"line {row.key!r}: heartbeat not recorded: {self._message(exc)}")

        job: Job[Any] | None = None
        failure: Exception | None = None
        async with anyio.create_task_group() as group:
            group.start_soon(beat)
            try:
                job = await self._create(row, params)
            except Exception as exc:  # re-raised below, outside the task group's wrapping
                failure = exc
            group.cancel_scope.cancel()
        if failure is not None:
            raise failure
        assert job is not None
        return job

    def _call(self, row: LineRecord) -> CreateCall:
        return registry().get(row.provider).create(row.kind)

    async def _create(self, row: LineRecord, params: dict[str, Any]) -> Job[Any]:
        return await self._call(row).call(self.kit.namespace(row.provider), **params)

    async def _wait(self, row: LineRecord, job: Job[Any]) -> Any:
        try:
            return await job.wait()
        except errors.JobTimeout:  # before JobFailed: it is a subclass
            await self._note(row.key, "still rendering at the deadline; run again to resume")
        except errors.JobFailed as exc:
            await self._move(row.key, "failed", error=f"generation failed: {exc.reason or exc}")
        except errors.NotFoundError as exc:
            await self._move(
                row.key, "failed", error=f"the remote job is gone: {self._message(exc)}"
            )
        return None

    def _files_of(self, row: LineRecord, result: Any) -> list[tuple[str, Any]]:
        outputs = self._call(row).outputs
        assert outputs is not None  # the manifest takes only creates that make files
        return list(outputs(result))

    async def _stored_files(self, row: LineRecord) -> list[tuple[str, Any]]:
        """A ready line without a job token (a Mureka feed adopted complete): read its files
        again (`CreateCall.output_again`), for fresh links."""
        info = json.loads(row.result or "{}")
        again = self._call(row).output_again
        files: list[tuple[str, Any]] = []
        if again is not None:
            namespace = self.kit.namespace(row.provider)
            for item in info.get("files", []):
                files.append((item["remote_id"], await again(namespace, item["remote_id"])))
        if not files:
            raise errors.ParseError(f"line {row.key!r} is ready but its journal row has no files")
        return files

    def _target(self, row: LineRecord, index: int, source: Any) -> pathlib.Path:
        """The file's natural name: ``<key>.mp3``; a Mureka line's songs are always
        ``<key>-<n>.mp3`` (the names manifest validation keeps apart)."""
        suffix = source.download_spec().suffix or ".mp3"
        # Absolute: the journal's claims and records outlive this working directory.
        files = self._call(row).files
        return self.options.out.absolute() / file_name(row.key, files, index, suffix)

    async def _download(self, row: LineRecord, files: Sequence[tuple[str, Any]]) -> None:
        records: list[FileRecord] = []
        for index, (remote_id, source) in enumerate(files, 1):
            own = await own_file(self.journal, row.key, index, remote_id)
            if own is not None:
                # Written and recorded by an earlier run that died before it could finish the
                # line: announced again, since that run's event may have died with it (events
                # reach the caller at least once; a file is never written twice).
                self.emit(
                    FileWritten(
                        row.key, index, pathlib.Path(own.path), own.size, own.sha256, remote_id
                    )
                )
                records.append(own)
                continue
            # Never a file this journal did not record: a fresh, claimed name instead.
            natural = self._target(row, index, source)
            target = await claim_target(self.journal, row.key, index, natural)
            try:
                # The SDK writes <name>.part and renames it once complete and verified; the
                # path it returns is the one recorded.
                path = await self.kit.download(
                    source, target, on_progress=self._progress(row.key, index)
                )
            except (errors.ImuzekitError, OSError) as exc:
                await self._note(row.key, f"download failed: {self._message(exc)}")
                return
            size, digest = await anyio.to_thread.run_sync(_hash_file, path)
            written = FileRecord(row.key, index, remote_id, str(path), size, digest)
            await self.journal.call(self.journal.journal.file_written, written)
            self.emit(FileWritten(row.key, index, path, size, digest, remote_id))
            records.append(written)
        previous = self.states.get(row.key)
        record = await self.journal.call(self.journal.journal.downloaded, row.key, records)
        self._moved(record, previous)

    # -- reconciliation -------------------------------------------------------------------

    async def reconcile(self, rows: Sequence[LineRecord]) -> None:
        """Decide each ``submitting`` line: found remotely, surely absent, or uncertain."""
        by_provider: dict[str, list[LineRecord]] = {}
        for row in rows:
            spec = registry().get(row.provider)
            if row.marker and spec.find_created is not None:
                by_provider.setdefault(row.provider, []).append(row)
                continue
            where = (
                f"{row.provider} cannot be searched"
                if spec.find_created is None
                else "its create carries no marker"
            )
            await self._move(
                row.key,
                "uncertain",
                error=(
                    f"the create may have reached {row.provider} but cannot be looked up "
                    f"({where}); check it, then `imuzekit batch resolve {row.key}` or run "
                    "with --resubmit-uncertain"
                ),
            )
        for provider, searched in by_provider.items():
            found = await self.kit.find_created(provider, [r.marker for r in searched if r.marker])
            for row in searched:
                assert row.marker is not None
                await self._reconciled(row, found.get(row.marker))

    async def _reconciled(self, row: LineRecord, found: Found | None) -> None:
        """Move a searched line where its search result `found` takes it."""
        if found is None:
            await self._absent(row, "no creation has its marker")
        elif found.job is not None:
            remote_id = found.remote_id or found.job.id
            await self._move(
                row.key,
                "submitted",
                token=found.job.token(),
                remote_id=remote_id,
                detail=f"reconciled: {row.provider} {remote_id} has its marker",
            )
        elif found.result is not None:
            files = self._files_of(row, found.result)
            info = {"files": [{"remote_id": remote_id} for remote_id, _ in files]}
            await self._move(
                row.key,
                "ready",
                remote_id=found.remote_id,
                result=json.dumps(info),
                detail=f"reconciled: complete {row.provider} {found.remote_id} has its marker",
            )
        else:  # seen half-made, its job not found (not settled)
            await self._move(
                row.key,
                "uncertain",
                error=f"a {row.provider} creation with its marker is still being made but its "
                "job was not found; run again later",
            )

    async def _absent(self, row: LineRecord, why: str) -> None:
        """A searched line was not found: ``pending`` (send again) once its landing window
        has passed; until then it stays ``submitting`` and the run looks again later."""
        # A journal from before settle_by was recorded: the window started at updated_at.
        settle_by = row.settle_by
        if settle_by is None:
            settle_by = row.updated_at + self.window
        now = time.time()
        if now >= settle_by:
            await self._move(row.key, "pending", detail=f"reconciled: {why}; sending again")
            return
        self._waiting[row.key] = settle_by
        await self._note(
            row.key,
            f"{why} yet; the create could still land for {settle_by - now:.1f} s",
            give_up=False,
        )


def choice_errors(kit: Client, lines: Sequence[ManifestLine]) -> list[ManifestError]:
    """A ManifestError for each line with a value outside what its field's `choices` lists
    (a Mureka account that is not configured); ConfigurationError unless every provider the
    lines use is configured."""
    namespaces = {
        provider: kit.namespace(provider) for provider in sorted({line.provider for line in lines})
    }
    refused: list[ManifestError] = []
    for line in lines:
        for field in line.variant.fields:
            value = line.params.get(field.name)
            if field.choices is None or not value:
                continue
            allowed = tuple(getattr(namespaces[line.provider], field.choices))
            if allowed and value not in allowed:
                refused.append(
                    ManifestError(
                        line.number,
                        field.name,
                        f"{value!r} is not a configured {field.name} ({', '.join(allowed)})",
                    )
                )
                break
    return refused


def summarize(lines: Sequence[LineRecord]) -> dict[str, int]:
    """Counts per state (every state listed)."""
    counts = dict.fromkeys(STATES, 0)
    for line in lines:
        counts[line.state] += 1
    return counts


def journal_path_for(out: pathlib.Path, journal: pathlib.Path | None) -> pathlib.Path:
    """``--journal`` or ``<out>/imuzekit-batch.sqlite``."""
    return journal if journal is not None else out / "imuzekit-batch.sqlite"
