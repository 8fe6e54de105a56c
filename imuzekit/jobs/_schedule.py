"""The poll schedule: which jobs to refresh, and when, as a sans-I/O state machine (after h11).

The asyncio poller (`imuzekit.jobs._poller`) is a thin driver: it registers the jobs being
waited on here (`Schedule.add`), asks what is due (`Schedule.due`), sends the requests, and
feeds back what came of them (`read`, `batch_read`, `batch_refused`, `failed`, `abort`,
`leave`). Nothing here sleeps, sends or reads a clock of its own: time comes from the injected
``clock`` and randomness from ``rand``, so every rule is tested in milliseconds.

Each registration of a job (an `Entry`) moves through the phases of `TRANSITIONS`; each group
of jobs that share a driver has a `Batching` phase moved by `BATCH_TRANSITIONS`. Both are
tables, and an event a table does not list raises `IllegalTransition`.

The rules:

* **Coalescing.** When a group's driver can list many jobs' statuses in one request and at
  least ``batch_threshold`` of its entries are waiting, one batch (a list request, following
  its pages) refreshes all of them. A job the list does not show goes DIRECT: it is asked about
  on its own once. A batch that fails for good (an unreadable list) turns batching OFF for the
  group, for good, and its jobs are polled one by one from then on.
* **The latency budget.** A batch group may spend ``PollPolicy.budget`` status requests per
  job. The next tick comes when the jobs expected to finish since the last one reach an even
  share of what is left (waiting jobs x pages per tick / requests left), so ticks come as
  often as the budget allows and cluster where jobs finish. A tenth of the budget is held back
  (at most four ticks) for the last jobs of a wave (ticks twice as far apart each time). The
  backoff stays the ceiling: the schedule may poll sooner, never later.
* **Learning.** The render times of the jobs that finished (normalised by each job's hint, such
  as a song's requested length, when it has one) estimate when the waiting ones will finish;
  where they say nothing yet, the hint does (remaining time: the hint minus the age, at least a
  quarter of the hint), else the job's age (a job is expected to need about as long again).
  The rate of finishes seen in the last ticks is a floor. Per-job polls use the same samples:
  the first poll when 5 % of similar jobs had finished, then about eight polls over the span in
  which the middle 80 % of them finished.
* **Push.** An entry whose callbacks a push receiver awaits follows the safety schedule
  (`imuzekit.jobs._safety.SAFETY`: first at twice its hint, at least a minute, after it
  started, then every minute): alone, outside batches, spending no budget.
* **Jitter** (full, on the backoff; half on learned spacings) spreads per-job polls; batched
  entries share the tick and are not jittered.
* **Stalls, Retry-After, failures, deadlines.** A reading without a state change for
  ``stall_after`` ends the entry (STALLED); a ``Retry-After`` postpones a per-job poll; a
  transient failure is retried after ``max_interval x rand`` (at least its ``Retry-After``),
  and the fifth in a row ends the entry (GAVE_UP); an entry past its deadline is not polled
  any more (EXPIRED).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from imuzekit.jobs._entries import Entry, Plan, Poll, Verdict
from imuzekit.jobs._learning import MIN_SAMPLES, Samples
from imuzekit.jobs._phases import (
    BATCH_TRANSITIONS,
    TRANSITIONS,
    BatchEvent,
    Batching,
    Event,
    IllegalTransition,
    Phase,
    batch_step,
    step,
)
from imuzekit.jobs._safety import SAFETY
from imuzekit.jobs.job import PollPolicy

__all__ = [
    "BATCH_TRANSITIONS",
    "TRANSITIONS",
    "BatchEvent",
    "Batching",
    "Entry",
    "Event",
    "IllegalTransition",
    "Phase",
    "Plan",
    "Poll",
    "Schedule",
    "Verdict",
    "batch_step",
    "step",
]

MAX_FAILURES = 5
"""Transient failures in a row after which an entry gives up (the last error is raised)."""
TAIL_SHARE = 0.1
"""Of the budget of a wave (the jobs added since the group was last empty), the share held
back for its last jobs..."""
TAIL_TICKS = 4
"""... but never more than this many ticks."""
PER_JOB_STEPS = 8
"""Per-job polls spread over the span where the middle 80 % of similar jobs finished."""
FIRST_POLL_QUANTILE = 0.05
"""A per-job first poll comes when this share of similar jobs had finished."""


class _Group:
    """The state of the jobs that share one driver."""

    def __init__(self, rand: Callable[[], float]) -> None:
        self.batching = Batching.ON
        self.in_flight = False
        self.entries: dict[int, Entry] = {}
        self.credit = 0.0
        self.spent = 0
        self.cost = 1
        self.last_tick: float | None = None
        self.last_interval = 0.0
        self.wave_credit = 0.0  # the credit of the jobs added since the group was last empty
        self.rate: float | None = None
        self.hold_until = 0.0
        self.tick_due: float | None = None
        self.stale = True
        self.samples = Samples(rand)


class Schedule:
    """The poll schedule of one provider (see the module docstring)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        rand: Callable[[], float],
        batch_threshold: int = 3,
    ) -> None:
        self._clock = clock
        self._rand = rand
        self.batch_threshold = batch_threshold
        self._groups: dict[Hashable, _Group] = {}

    # -- registering --------------------------------------------------------------------------

    def add(
        self,
        key: Any,
        *,
        group: Hashable,
        batchable: bool,
        policy: PollPolicy,
        expected: float | None = None,
        age: float | None = None,
        polls: int = 0,
        since_poll: float | None = None,
        since_change: float = 0.0,
        pushed: bool = False,
    ) -> Entry:
        """Register a job being waited on and return its entry.

        ``expected``: the job's hint in seconds; ``age``: seconds since the provider accepted
        it (None: unknown); ``polls`` and ``since_poll``: readings so far and seconds since the
        last, so that a job polled before keeps its cadence; ``since_change``: seconds since
        its state last changed (for stalls); ``pushed``: a push receiver awaits its callbacks,
        so it is polled only on the safety schedule (`SAFETY`), alone, and spends no budget.
        """
        now = self._clock()
        state = self._groups.get(group) or self._groups.setdefault(group, _Group(self._rand))
        entry = Entry(key, group, batchable and not pushed, policy)
        entry.added_at = now
        entry.polls = polls
        entry.changed_at = now - since_change
        entry.pushed = pushed
        if expected is not None and math.isfinite(expected) and expected > 0:
            entry.scale = expected
        if age is not None and math.isfinite(age) and age >= 0:
            entry.started = now - age
        if pushed:
            started = None if entry.started is None else now - entry.started
            entry.due = now + SAFETY.first_wait(
                hint=entry.scale, age=started, initial=policy.initial
            )
        elif since_poll is not None:
            entry.last_read = now - since_poll
            entry.due = now + max(0.0, policy.interval(polls, _one) - since_poll)
        else:
            first = self._learned_first(state, entry, now)
            entry.due = now + (policy.initial if first is None else first)
            if polls == 0:
                state.credit += policy.budget
                state.wave_credit = policy.budget + (state.wave_credit if state.entries else 0)
        state.entries[id(entry)] = entry
        state.stale = True
        return entry

    def apply(self, entry: Entry, event: Event) -> Phase:
        """Apply one ``event`` to ``entry`` by `TRANSITIONS` and return its new phase.

        The low-level step the other methods take; `IllegalTransition` for a pair the table
        does not list (the entry is then unchanged).
        """
        entry._step(event)
        if entry.phase in (Phase.SETTLED, Phase.ABORTED):
            self._drop(entry)
        return entry.phase

    def leave(self, entry: Entry) -> None:
        """Every waiter left: the entry is no longer polled."""
        entry._step(Event.LEAVE)
        self._drop(entry)

    def abort(self, entry: Entry) -> None:
        """A permanent error (or the driver's own reason) ends the entry."""
        entry._step(Event.ABORT)
        self._drop(entry)

    def set_deadline(self, entry: Entry, deadline: float | None) -> None:
        """The latest deadline of the entry's waiters (clock time), or None."""
        entry.deadline = deadline

    def batching(self, group: Hashable) -> Batching:
        """Whether ``group`` is refreshed by batches (ON until a batch fails for good)."""
        state = self._groups.get(group)
        return Batching.ON if state is None else state.batching

    def requests(self, group: Hashable) -> int:
        """Status requests spent on ``group`` so far."""
        state = self._groups.get(group)
        return 0 if state is None else state.spent

    def waiting(self, group: Hashable) -> int:
        """Live entries of ``group``."""
        state = self._groups.get(group)
        return 0 if state is None else len(state.entries)

    # -- what is due --------------------------------------------------------------------------

    def due(self) -> Plan:
        """Start the polls due now (their entries go IN_FLIGHT) and say when the next is due."""
        now = self._clock()
        polls: list[Poll] = []
        expired: list[Entry] = []
        next_due = math.inf
        for key, state in self._groups.items():
            for entry in list(state.entries.values()):
                if entry.deadline is not None and entry.deadline <= now:
                    entry._step(Event.ABORT)
                    self._drop(entry)
                    expired.append(entry)
            shared = [
                e
                for e in state.entries.values()
                if e.phase is Phase.WAITING and e.batchable and state.batching is Batching.ON
            ]
            # While a batch is in flight, the jobs added meanwhile wait for the next one.
            batched = state.in_flight or len(shared) >= self.batch_threshold
            if shared and batched and not state.in_flight:
                tick = self._tick_due(state, shared, now)
                if tick <= now:
                    state.batching = batch_step(state.batching, BatchEvent.SEND)
                    state.in_flight = True
                    for entry in shared:
                        entry._step(Event.SEND)
                    polls.append(Poll(key, tuple(shared), batch=True))
                else:
                    next_due = min(next_due, tick)
            for entry in state.entries.values():
                alone = not (batched and entry.batchable and state.batching is Batching.ON)
                if entry.phase is Phase.DIRECT or (entry.phase is Phase.WAITING and alone):
                    if entry.due <= now:
                        entry._step(Event.SEND)
                        polls.append(Poll(key, (entry,), batch=False))
                    else:
                        next_due = min(next_due, entry.due)
        return Plan(tuple(polls), tuple(expired), None if math.isinf(next_due) else next_due)

    def _tick_due(self, state: _Group, shared: list[Entry], now: float) -> float:
        if state.stale:
            state.tick_due = self._budget_tick(state, shared, now)
            state.stale = False
        ceiling = min(e.due for e in shared)
        tick = ceiling if state.tick_due is None else min(ceiling, state.tick_due)
        return max(tick, state.hold_until)

    # -- the budget and the learning ------------------------------------------------------------

    def _budget_tick(self, state: _Group, shared: list[Entry], now: float) -> float | None:
        """When the budget places the group's next tick (None: it leaves it to the backoff)."""
        budget = min(e.policy.budget for e in shared)
        if budget <= 0:
            return None
        floor = max(e.policy.min_interval for e in shared)
        ceiling = min(e.policy.max_interval for e in shared)
        reserve = min(TAIL_SHARE * state.wave_credit, TAIL_TICKS * state.cost)
        left = state.credit - reserve - state.spent
        if left < state.cost:
            # The tail: the last jobs of a wave come in ones and twos, so the held-back share
            # pays for ticks twice as far apart each time, until the backoff takes over.
            if state.credit - state.spent < state.cost or state.last_tick is None:
                return None
            return state.last_tick + min(ceiling, max(floor, 2 * state.last_interval))
        quota = len(shared) * state.cost / left
        # The window starts at the last tick, or when the oldest of these jobs was added.
        # The finishing rate seen at the last ticks only speaks for jobs that were there.
        anchor = min(e.added_at for e in shared)
        rate = 0.0
        if state.last_tick is not None and state.last_tick >= anchor:
            anchor, rate = min(now, state.last_tick), state.rate or 0.0
        learn = all(e.policy.learn for e in shared)
        bins = Counter(self._bin(e, anchor) for e in shared)
        survivors = sorted(
            (anchor - e.started) / (e.scale or 1.0) for e in shared if e.started is not None
        )

        def expected(width: float) -> float:
            model = sum(n * self._share(state, b, width, learn, survivors) for b, n in bins.items())
            return max(model, rate * width)

        if floor >= ceiling or expected(ceiling) < quota:
            return None
        low, high = floor, ceiling
        if expected(low) < quota:
            for _ in range(20):
                middle = (low + high) / 2
                low, high = (middle, high) if expected(middle) < quota else (low, middle)
            low = high
        return anchor + low

    @staticmethod
    def _bin(entry: Entry, at: float) -> tuple[float | None, float, float]:
        start = entry.started if entry.started is not None else entry.added_at
        return (entry.scale, round(max(0.0, at - start), 1), entry.policy.initial)

    @staticmethod
    def _share(
        state: _Group,
        key: tuple[float | None, float, float],
        width: float,
        learn: bool,
        survivors: list[float],
    ) -> float:
        """The chance that a job of this bin finishes within ``width`` seconds."""
        scale, age, initial = key
        if learn and len(state.samples) >= MIN_SAMPLES:
            unit = scale or 1.0
            share = state.samples.share(age / unit, width / unit, survivors)
            if share is not None:
                return share
        # No samples cover this age yet: the hint (a job needs about its hint, and at least a
        # quarter of it more), else the age (it needs about as long again).
        remaining = max(scale - age, scale / 4) if scale is not None else max(age, initial, 1.0)
        return min(1.0, width / remaining)

    def _learned_first(self, state: _Group, entry: Entry, now: float) -> float | None:
        """Seconds to a per-job first poll from the samples (None: too few, or no age)."""
        if not entry.policy.learn or entry.started is None or len(state.samples) < MIN_SAMPLES:
            return None
        first = state.samples.quantile(FIRST_POLL_QUANTILE) * (entry.scale or 1.0)
        return max(0.0, first - (now - entry.started))

    def _learned_spacing(self, state: _Group, entry: Entry, now: float) -> float | None:
        if not entry.policy.learn or entry.started is None or len(state.samples) < MIN_SAMPLES:
            return None
        unit = entry.scale or 1.0
        if (now - entry.started) / unit > state.samples.quantile(0.95):
            return None  # older than nearly all: back off as usual
        spread = (state.samples.quantile(0.9) - state.samples.quantile(0.1)) * unit
        return max(entry.policy.min_interval, spread / PER_JOB_STEPS)

    def _learn(self, state: _Group, entry: Entry, now: float) -> None:
        if entry.started is None:
            return
        # It finished between the last reading and this one: a uniform draw in that span keeps
        # the samples as smooth as the truth, where midpoints would bunch at the ticks.
        seen_before = entry.last_read if entry.last_read is not None else entry.added_at
        render = max(0.0, seen_before + (now - seen_before) * self._rand() - entry.started)
        state.samples.add(render / (entry.scale or 1.0))

    # -- results ------------------------------------------------------------------------------

    def read(
        self,
        entry: Entry,
        *,
        changed: bool,
        done: bool,
        retry_after: float | None = None,
    ) -> Verdict:
        """A per-job poll came back with a reading (``changed``: the job's state changed)."""
        now = self._clock()
        state = self._groups[entry.group]
        state.spent += 1
        state.stale = True
        return self._reading(state, entry, now, changed, done, retry_after, batched=False)

    def observe(self, entry: Entry, *, changed: bool, done: bool) -> Verdict:
        """A reading from outside the schedule (``refresh()``, a confirmed push)."""
        now = self._clock()
        if done:
            live = entry._step(Event.FINISH)
            state = self._groups.get(entry.group)
            if live and entry.pushed and state is not None and entry.started is not None:
                # A confirmed callback: the job ended just now (no span to draw from).
                state.samples.add((now - entry.started) / (entry.scale or 1.0))
            self._drop(entry)
            return Verdict.SETTLED if live else Verdict.ENDED
        if changed:
            entry.changed_at = now
        return Verdict.POLLING

    def batch_read(
        self, poll: Poll, readings: Mapping[Entry, tuple[bool, bool]], pages: int
    ) -> dict[Entry, Verdict]:
        """A batch came back after ``pages`` requests with (changed, done) per entry it showed;
        the entries it did not show go DIRECT."""
        now = self._clock()
        state = self._groups[poll.group]
        state.in_flight = False
        state.spent += pages
        state.cost = max(1, pages)
        verdicts: dict[Entry, Verdict] = {}
        finished = 0
        for entry in poll.entries:
            reading = readings.get(entry)
            if reading is None:
                entry._step(Event.MISS)
                entry.due = now
                verdicts[entry] = Verdict.POLLING
                continue
            changed, done = reading
            verdict = self._reading(state, entry, now, changed, done, None, batched=True)
            finished += verdict is Verdict.SETTLED
            verdicts[entry] = verdict
        if state.last_tick is not None and now > state.last_tick:
            observed = finished / (now - state.last_tick)
            state.rate = observed if state.rate is None else (state.rate + observed) / 2
            state.last_interval = now - state.last_tick
        state.last_tick = now
        state.stale = True
        return verdicts

    def batch_refused(self, poll: Poll, pages: int = 1) -> None:
        """A batch failed for good: batching goes OFF and its entries are polled alone, now."""
        now = self._clock()
        state = self._groups[poll.group]
        state.in_flight = False
        state.spent += pages
        state.batching = batch_step(state.batching, BatchEvent.REFUSE)
        for entry in poll.entries:
            entry._step(Event.MISS)
            entry.due = now

    def failed(
        self, poll: Poll, *, retry_after: float | None = None, requests: int = 1
    ) -> dict[Entry, Verdict]:
        """A poll failed transiently: retry after a backoff, or give up at the failure budget."""
        now = self._clock()
        state = self._groups[poll.group]
        state.spent += requests
        state.stale = True
        verdicts: dict[Entry, Verdict] = {}
        backoff = 0.0
        for entry in poll.entries:
            entry.failures += 1
            if entry.phase is not Phase.IN_FLIGHT:
                entry._step(Event.FAIL)
                verdicts[entry] = Verdict.ENDED
            elif entry.failures >= MAX_FAILURES:
                entry._step(Event.ABORT)
                self._drop(entry)
                verdicts[entry] = Verdict.GAVE_UP
            else:
                entry._step(Event.FAIL)
                backoff = max(entry.policy.max_interval * self._rand(), retry_after or 0.0)
                entry.due = now + self._capped(entry, now, backoff)
                verdicts[entry] = Verdict.POLLING
        if poll.batch:
            state.in_flight = False
            state.hold_until = now + backoff
        return verdicts

    def _reading(
        self,
        state: _Group,
        entry: Entry,
        now: float,
        changed: bool,
        done: bool,
        retry_after: float | None,
        *,
        batched: bool,
    ) -> Verdict:
        if entry.phase is not Phase.IN_FLIGHT:
            entry._step(Event.FINISH if done else Event.READ)
            return Verdict.ENDED
        entry.failures = 0
        entry.polls += 1
        if done:
            entry._step(Event.FINISH)
            self._learn(state, entry, now)
            self._drop(entry)
            return Verdict.SETTLED
        entry._step(Event.READ)
        entry.last_read = now
        if changed:
            entry.changed_at = now
        stall = entry.policy.stall_after
        if stall is not None and now - entry.changed_at >= stall:
            entry._step(Event.ABORT)
            self._drop(entry)
            return Verdict.STALLED
        policy = entry.policy
        if entry.pushed:
            interval = SAFETY.next_wait(self._rand(), jitter=policy.jitter)
        elif batched:
            interval = policy.interval(entry.polls, _one)
        else:
            interval = policy.interval(entry.polls, self._rand)
            learned = self._learned_spacing(state, entry, now)
            if learned is not None:
                ceiling = policy.interval(entry.polls, _one)
                interval = min(ceiling, learned)
                if policy.jitter:
                    interval *= 0.5 + 0.5 * self._rand()
        if retry_after is not None:
            interval = max(interval, retry_after)
        entry.due = now + self._capped(entry, now, interval)
        return Verdict.POLLING

    @staticmethod
    def _capped(entry: Entry, now: float, interval: float) -> float:
        """A wait never passes the moment the entry would count as stalled."""
        stall = entry.policy.stall_after
        if stall is None:
            return interval
        return min(interval, max(0.0, stall - (now - entry.changed_at)))

    def _drop(self, entry: Entry) -> None:
        state = self._groups.get(entry.group)
        if state is not None and state.entries.pop(id(entry), None) is not None:
            state.stale = True


def _one() -> float:
    return 1.0
