"""Many workers on one PostgreSQL batch: the lease-based runner.

Each worker is the same `imuzekit batch run MANIFEST --journal postgresql://...` (or the
library call) on any machine. A worker:

1. **registers** (``host:pid:<random>``) and loads the manifest (idempotent: the first
   loader inserts each line, the others find it);
2. **claims** lines as leases (``SELECT ... FOR UPDATE SKIP LOCKED``), up to its concurrency,
   and a **heartbeat** task renews them every third of the lease; a line whose lease this
   worker lost (it stalled, its database link dropped) is given up at once, and every move
   it makes is fenced (`LeaseLostError`), so two workers never act on one line;
3. takes a line over from a dead worker as any other claim; one taken in ``submitting``
   (its create may have been sent) is **reconciled** first, through ``kit.find_created``
   exactly as the SQLite runner does, and waits out the create's landing window before
   concluding "absent": nothing is ever sent twice;
4. before a create, honours a **shared pause** (a 429 anywhere pauses that provider or
   account for every worker) and takes a **generation slot** of the account in the database
   (Mureka's 10 per account hold across all workers), held until the generation finished;
5. puts every network step through the provider's circuit (`._workers_outage`): after
   repeated connection failures it pauses and probes instead of failing line after line;
6. stops when no line of its manifest has work left that another live worker does not hold.

The line logic itself (submit, wait, download, reconcile) is the SQLite runner's
(`BatchRunner`), running on the PostgreSQL journal through a fenced adapter.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import anyio
import attrs

from imuzekit import Client, Job, errors
from imuzekit.batch._journal import AsyncJournal, FileRecord, LineRecord, TransitionError
from imuzekit.batch._lock import JournalError
from imuzekit.batch._manifest import ManifestError, ManifestLine
from imuzekit.batch._pg import ClaimedLine, LeaseLostError, PgJournal
from imuzekit.batch._pg_base import ACTIVE_STATES
from imuzekit.batch._runner import BatchOptions, BatchRunner
from imuzekit.batch._workers_outage import OutagePolicy, Outages
from imuzekit.providers import registry

__all__ = ["WorkerOptions", "WorkerRunner"]

_log = logging.getLogger("imuzekit.batch")

# A line this worker could not finish is tried at most this many times per run (as the
# SQLite runner's rounds); waits for a pause, a slot or a dead service do not count.
_TRIES = 3


@attrs.frozen
class WorkerOptions:
    """How a worker shares a PostgreSQL batch with the others."""

    lease_seconds: float = 30.0
    """How long a claimed line (or slot) stays this worker's without a heartbeat; a dead
    worker's lines are taken over this long after its last heartbeat."""
    idle_poll: float = 0.5
    """Seconds between two looks for claimable lines when there is nothing to claim."""
    slot_poll: float = 0.25
    """Seconds between two tries for a generation slot when every one is taken."""
    pause_on_429: float = 5.0
    """The shared pause after a 429 that named no ``Retry-After``."""
    outage: OutagePolicy = attrs.field(factory=OutagePolicy)
    """When a provider counts as down, how it is probed, when the run gives up on it."""
    refresh: float = 1.0
    """Seconds between two readings of the whole batch for the progress view."""


class _Fenced:
    """The PostgreSQL journal as the runner's line logic calls it: every move this worker
    makes needs its live lease on the line (`LeaseLostError` otherwise)."""

    def __init__(self, pg: PgJournal, worker: str) -> None:
        self.pg = pg
        self.worker = worker
        self.round_trips = 0
        """Journal calls made through this adapter (the benchmark's figure)."""

    async def transition(self, key: str, to_state: str, **fields: Any) -> LineRecord:
        self.round_trips += 1
        return await self.pg.transition(key, to_state, worker=self.worker, **fields)

    async def downloaded(self, key: str, files: Sequence[FileRecord]) -> LineRecord:
        self.round_trips += 1
        return await self.pg.downloaded(key, files, worker=self.worker)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.pg, name)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.round_trips += 1
            return await method(*args, **kwargs)

        return counted


class _Calls:
    """``AsyncJournal``'s calling convention (``call(journal.method, ...)``) over coroutines."""

    def __init__(self, fenced: _Fenced) -> None:
        self.journal = fenced

    async def call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await func(*args, **kwargs)

    @property
    def batch_id(self) -> str:
        return self.journal.pg.batch_id

    async def aclose(self) -> None:
        """The PostgreSQL journal is closed by its opener."""


@attrs.define
class _Line:
    """A line this worker holds now."""

    claim: int
    """The claim's sequence number (a heartbeat taken before it does not judge it)."""
    scope: anyio.CancelScope
    creating: bool = False


class WorkerRunner(BatchRunner):
    """One worker of a batch shared through a PostgreSQL journal (see the module docstring)."""

    def __init__(
        self,
        kit: Client,
        journal: PgJournal,
        manifest: Sequence[ManifestLine],
        options: BatchOptions,
        workers: WorkerOptions | None = None,
        *,
        worker_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.pg = journal
        self.worker = worker_id or ""
        self.settings = workers or WorkerOptions()
        self._fenced = _Fenced(journal, self.worker)
        super().__init__(kit, cast(AsyncJournal, _Calls(self._fenced)), manifest, options, **kwargs)
        self.outages = Outages(self.settings.outage)
        self._held: dict[str, _Line] = {}
        self._claims = 0
        self._tries: dict[str, int] = {}
        self._skipped: set[str] = set()
        self._transient: set[str] = set()
        self._probes: dict[str, bool] = {}
        self._slots: dict[str, int] = {}
        self._accounts: dict[str, str] = {}
        self._wanted: frozenset[str] = frozenset(line.key for line in manifest)
        self._changed = anyio.Event()
        self.stats: dict[str, float] = {"claims": 0, "takeovers": 0, "lost": 0, "reconciled": 0}
        """What this worker did (claims, takeovers, leases lost, lines reconciled)."""

    @property
    def round_trips(self) -> int:
        """Journal calls this worker made (claims, heartbeats and moves included)."""
        return self._fenced.round_trips

    # -- the run --------------------------------------------------------------------------

    async def run(self) -> list[LineRecord]:
        """Work on the shared batch until no line of the manifest has work left that another
        live worker does not hold; return the manifest's lines afterwards."""
        self.check_configuration()
        pg = self.pg
        self.worker = await pg.register_worker(worker_id=self.worker or None)
        self._fenced.worker = self.worker
        try:
            conflicts = await pg.sync(self.manifest, worker=self.worker)
            if conflicts:
                raise ManifestError(0, None, "; ".join(conflicts))
            await self._reopen()
            if self.board is not None:
                self.board.set_total(len(self._wanted))
            async with anyio.create_task_group() as group:
                group.start_soon(self._heartbeat)
                if self.board is not None:
                    group.start_soon(self._refresh)
                await self._claim_loop(group)
                group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await pg.unregister_worker(self.worker)
                except JournalError as exc:  # the leases lapse by themselves
                    _log.warning("worker %s: could not unregister: %s", self.worker, exc)
        if self.board is not None:
            await self._refresh_once()
            self.board.finish_bytes()
        return [row for row in await pg.lines() if row.key in self._wanted]

    async def _reopen(self) -> None:
        """``--retry-failed`` / ``--resubmit-uncertain``, as the SQLite runner applies them
        (several workers may try the same line: the first move wins, the others' are refused)."""
        if not (self.options.retry_failed or self.options.resubmit_uncertain):
            return
        from imuzekit.batch._rules import resubmit_after, when

        now = time.time()
        for row in await self.pg.lines(("failed", "uncertain")):
            if row.key not in self._wanted:
                continue
            if row.state == "uncertain" and not self.options.resubmit_uncertain:
                continue
            if row.state == "failed" and not self.options.retry_failed:
                continue
            if row.state == "uncertain" and now < resubmit_after(row, self.window):
                await self._note(
                    row.key,
                    "not resubmitted: the create sent earlier could still land until "
                    f"{when(resubmit_after(row, self.window))}; run again with "
                    "--resubmit-uncertain after that",
                )
                continue
            with contextlib.suppress(TransitionError):  # another worker moved it first
                # Not fenced (no worker holds a failed or uncertain line), but an event as
                # every other move.
                record = await self.pg.transition(
                    row.key, "pending", detail=f"resubmitting a {row.state} line"
                )
                self._fenced.round_trips += 1
                self._moved(record, row.state)

    async def _claim_loop(self, group: anyio.abc.TaskGroup) -> None:
        concurrency = self.options.concurrency
        while True:
            # A fresh event before any await: a line that ends while this round claims sets it.
            changed = self._changed = anyio.Event()
            free = concurrency - len(self._held)
            claimed: list[ClaimedLine] = []
            if free > 0:
                extra = len(self._skipped)  # lines this run gave up come back: let them go
                claimed = await self.pg.claim_lines(
                    self.worker, free + extra, self.settings.lease_seconds
                )
                self._fenced.round_trips += 1
                self._claims += 1
                dropped = [
                    c.record.key
                    for c in claimed
                    if c.record.key in self._skipped or c.record.key not in self._wanted
                ]
                if dropped:
                    await self.pg.release(self.worker, dropped)
                kept = [c for c in claimed if c.record.key not in dropped]
                claimed = kept[:free]
                extra_back = [c.record.key for c in kept[free:]]  # more than it can work on
                if extra_back:
                    await self.pg.release(self.worker, extra_back)
                for item in claimed:
                    self.stats["claims"] += 1
                    if item.taken_over:
                        self.stats["takeovers"] += 1
                    line = _Line(claim=self._claims, scope=anyio.CancelScope())
                    self._held[item.record.key] = line
                    group.start_soon(self._work, item, line)
            if not claimed:
                if not self._held and await self._finished():
                    return
                with anyio.move_on_after(self.settings.idle_poll):
                    await changed.wait()
            elif len(self._held) >= concurrency:
                await changed.wait()

    async def _finished(self) -> bool:
        """Whether no line of the manifest has work left that this run may still do: every
        line is done, given up by this run, or held by another live worker (who finishes it,
        or dies and leaves it to be taken over: so those are waited for)."""
        rows = await self.pg.lines(ACTIVE_STATES)
        self._fenced.round_trips += 1
        left = [r for r in rows if r.key in self._wanted and r.key not in self._skipped]
        return not left

    async def _heartbeat(self) -> None:
        every = self.settings.lease_seconds / 3
        while True:
            await anyio.sleep(every)
            taken = self._claims
            try:
                held = await self.pg.heartbeat(self.worker, self.settings.lease_seconds)
            except JournalError as exc:
                # The journal is out of reach: the moves will say so (the leases may lapse).
                _log.warning("worker %s: heartbeat failed: %s", self.worker, exc)
                continue
            self._fenced.round_trips += 1
            for key, line in list(self._held.items()):
                if key not in held and line.claim <= taken and not line.creating:
                    # Lost (it lapsed: this worker stalled): another worker may have it now.
                    self.stats["lost"] += 1
                    self.say(f"line {key!r}: lease lost; another worker takes it over")
                    line.scope.cancel()

    # -- one line -------------------------------------------------------------------------

    async def _work(self, item: ClaimedLine, line: _Line) -> None:
        key = item.record.key
        self.states[key] = item.record.state  # the `previous` of its first move's event
        try:
            with line.scope:
                await self._line(item.record)
        except LeaseLostError:
            self.stats["lost"] += 1
            self.say(f"line {key!r}: lease lost; another worker takes it over")
        except Exception as exc:
            # One line's trouble never stops the others (nor this worker).
            _log.debug("line %r failed", key, exc_info=exc)
            self._skipped.add(key)
            with contextlib.suppress(JournalError):
                await self._note(key, self._message(exc))
        finally:
            self._held.pop(key, None)
            with anyio.CancelScope(shield=True):
                await self._release_slot(key)
                with contextlib.suppress(JournalError):  # else the lease lapses by itself
                    await self.pg.release(self.worker, [key])
            self._changed.set()

    async def _line(self, row: LineRecord) -> None:
        key = row.key
        while True:
            self._given_up.discard(key)
            self._transient.discard(key)
            if row.state == "submitting":
                self.stats["reconciled"] += 1
                self._waiting.pop(key, None)
                await self.reconcile([row])
                settle_by = self._waiting.pop(key, None)
                if settle_by is not None:
                    # Not found, and the create could still land: look again after that.
                    await anyio.sleep(max(0.0, settle_by - time.time()) + 0.05)
            elif row.state in ("pending", "submitted", "ready"):
                await self._advance_guarded(row)
            else:
                return
            fresh = await self.pg.line(key)
            self._fenced.round_trips += 1
            if fresh is None or fresh.state not in ACTIVE_STATES:
                return
            if key in self._transient:
                row = fresh  # a pause, a dead service or a slot: not the line's fault
                continue
            if key in self._given_up or fresh.state == row.state:
                self._tries[key] = self._tries.get(key, 0) + 1
                if self._tries[key] >= _TRIES:
                    self._skipped.add(key)
                    return
            row = fresh

    async def _advance_guarded(self, row: LineRecord) -> None:
        """The SQLite runner's steps for one line, through the provider's circuit."""
        circuit = self.outages[row.provider]
        self._probes[row.key] = await circuit.admit()
        try:
            await self._advance(row)
        except (LeaseLostError, anyio.get_cancelled_exc_class()):
            raise
        except Exception as exc:
            if self._report(row, exc):
                await self._note(row.key, f"unreachable: {self._message(exc)}", give_up=False)
                return
            raise
        else:
            if self._probes.pop(row.key, False):
                circuit.succeeded()
        finally:
            self._probes.pop(row.key, None)

    def _report(self, row: LineRecord, exc: BaseException) -> bool:
        """Tell the provider's circuit how a step failed; True for a connection failure
        (the line is kept and tried again once the circuit lets it)."""
        probe = self._probes.pop(row.key, False)
        if self.outages[row.provider].failed(exc, probe=probe):
            self._transient.add(row.key)
            return True
        return False

    async def _submit(self, row: LineRecord) -> Job[Any] | None:
        # Everything that may wait comes before `submitting` is committed: a worker that dies
        # waiting leaves a line that was surely never sent.
        await self._honour_pause(row)
        if not await self._take_slot(row):
            return None
        line = self._held.get(row.key)
        if line is not None:
            line.creating = True
        try:
            job = await super()._submit(row)
        finally:
            if line is not None:
                line.creating = False
        if job is None and row.key in self._slots:
            await self._release_slot(row.key)
        return job

    async def _create(self, row: LineRecord, params: dict[str, Any]) -> Job[Any]:
        account = self._accounts.get(row.key)
        if account is not None:
            params = {**params, "account": account}
        try:
            job = await super()._create(row, params)
        except errors.RateLimitError as exc:
            self.outages[row.provider].succeeded()  # it answered
            seconds = exc.retry_after or self.settings.pause_on_429
            await self.pg.pause(row.provider, account, seconds, reason=f"429 from {row.provider}")
            self._fenced.round_trips += 1
            self.say(f"{row.provider} answered 429: paused for every worker for {seconds:g} s")
            self._transient.add(row.key)
            raise
        except Exception as exc:
            # A create that failed before it was sent goes back to pending (the SQLite
            # runner's rule): the circuit decides when it goes again.
            self._report(row, exc)
            raise
        self._probes.pop(row.key, None)
        self.outages[row.provider].succeeded()
        return job

    async def _wait(self, row: LineRecord, job: Job[Any]) -> Any:
        try:
            return await super()._wait(row, job)
        finally:
            await self._release_slot(row.key)

    # -- pauses and slots -----------------------------------------------------------------

    async def _honour_pause(self, row: LineRecord) -> None:
        account = row.params.get("account")
        while True:
            left = await self.pg.paused_for(row.provider, account)
            self._fenced.round_trips += 1
            if left <= 0:
                return
            await anyio.sleep(min(left, 1.0) + 0.01)

    def _slot_group(self, row: LineRecord) -> tuple[int, tuple[str, ...]] | None:
        """(limit, accounts) when the provider limits generations per account, else None."""
        namespace = self.kit.namespace(row.provider)
        pool = getattr(namespace, "slots", None)
        limit = getattr(pool, "limit", None)
        if not isinstance(limit, int):
            return None
        call = registry().get(row.provider).create(row.kind)
        if "account" not in {field.name for field in call.fields}:
            return None
        accounts = tuple(getattr(namespace, "accounts", ()) or ("",))
        return limit, accounts

    async def _take_slot(self, row: LineRecord) -> bool:
        """A generation slot of the line's account (or of the first account with one free),
        waited for; False when the lease was lost meanwhile."""
        group = self._slot_group(row)
        if group is None:
            return True
        limit, accounts = group
        wanted = row.params.get("account")
        candidates = (wanted,) if wanted else accounts
        offset = hash(self.worker) % len(candidates)
        order = candidates[offset:] + candidates[:offset]
        while True:
            for account in order:
                slot = await self.pg.acquire_slot(
                    self.worker,
                    row.provider,
                    account or None,
                    limit=limit,
                    lease_seconds=self.settings.lease_seconds,
                    key=row.key,
                )
                self._fenced.round_trips += 1
                if slot is not None:
                    self._slots[row.key] = slot
                    if account:
                        self._accounts[row.key] = account
                    return True
            await anyio.sleep(self.settings.slot_poll)

    async def _release_slot(self, key: str) -> None:
        slot = self._slots.pop(key, None)
        self._accounts.pop(key, None)
        if slot is not None:
            with anyio.CancelScope(shield=True):
                try:
                    await self.pg.release_slot(self.worker, slot)
                    self._fenced.round_trips += 1
                except JournalError:
                    pass  # its lease lapses

    # -- the progress view ----------------------------------------------------------------

    def _show(self) -> None:
        """The board shows the whole batch, read from the journal by `_refresh`."""

    async def _refresh(self) -> None:
        while True:
            await self._refresh_once()
            await anyio.sleep(self.settings.refresh)

    async def _refresh_once(self) -> None:
        if self.board is None:
            return
        try:
            counts = await self.pg.counts()
            workers = await self.pg.workers()
        except JournalError:
            return
        self.board.update(counts)
        show = getattr(self.board, "show_workers", None)
        if show is not None:
            live = [w for w in workers if w.stopped_at is None]
            show(live, self.settings.lease_seconds)
