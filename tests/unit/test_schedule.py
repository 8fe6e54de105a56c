"""The poll schedule as a pure state machine: every rule on a fake clock, no sleeps, no I/O."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from imuzekit import errors
from imuzekit.jobs import PollPolicy
from imuzekit.jobs._schedule import (
    BATCH_TRANSITIONS,
    TRANSITIONS,
    BatchEvent,
    Batching,
    Entry,
    Event,
    IllegalTransition,
    Phase,
    Poll,
    Schedule,
    Verdict,
    batch_step,
    step,
)

FIXED = PollPolicy(initial=2.0, max_interval=10.0, jitter=False, budget=0.0, learn=False)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make(rand: Callable[[], float] = lambda: 0.5, threshold: int = 3) -> tuple[Schedule, FakeClock]:
    clock = FakeClock()
    return Schedule(clock=clock, rand=rand, batch_threshold=threshold), clock


def add(schedule: Schedule, key: str, policy: PollPolicy = FIXED, **kw: object) -> Entry:
    options: dict[str, object] = {"group": "g", "batchable": False, "policy": policy}
    options.update(kw)
    return schedule.add(key, **options)  # type: ignore[arg-type]


def only_poll(schedule: Schedule) -> Poll:
    plan = schedule.due()
    assert len(plan.polls) == 1, plan
    return plan.polls[0]


# -- the tables -------------------------------------------------------------------------------


# How to bring a fresh entry into each phase through the public API.
def _into(phase: Phase) -> tuple[Schedule, FakeClock, Entry]:
    schedule, clock = make()
    entry = add(schedule, "job")
    if phase is Phase.WAITING:
        return schedule, clock, entry
    clock.advance(2.0)
    poll = only_poll(schedule)
    if phase is Phase.IN_FLIGHT:
        return schedule, clock, entry
    if phase is Phase.DIRECT:
        batch = Poll(poll.group, poll.entries, batch=True)
        schedule.batch_read(batch, {}, pages=1)
    elif phase is Phase.SETTLED:
        schedule.read(entry, changed=True, done=True)
    elif phase is Phase.ABORTED:
        schedule.abort(entry)
    assert entry.phase is phase
    return schedule, clock, entry


def _fire(schedule: Schedule, entry: Entry, event: Event) -> None:
    """Drive ``event`` on ``entry`` through the method of the schedule that emits it."""
    if event is Event.SEND and entry.phase in (Phase.WAITING, Phase.DIRECT):
        plan = schedule.due()
        assert [p.entries for p in plan.polls] == [(entry,)]
    elif event is Event.SEND:
        schedule.apply(entry, event)  # due() never sends these: the table is the guard
    elif event is Event.READ:
        schedule.read(entry, changed=False, done=False)
    elif event is Event.FINISH:
        schedule.observe(entry, changed=True, done=True)
    elif event is Event.MISS:
        schedule.batch_read(Poll(entry.group, (entry,), batch=True), {}, pages=1)
    elif event is Event.FAIL:
        schedule.failed(Poll(entry.group, (entry,), batch=False))
    elif event is Event.ABORT:
        schedule.abort(entry)
    else:
        schedule.leave(entry)


@pytest.mark.parametrize("phase", list(Phase))
@pytest.mark.parametrize("event", list(Event))
def test_every_phase_and_event_follows_the_table(phase: Phase, event: Event) -> None:
    schedule, clock, entry = _into(phase)
    clock.advance(60.0)  # anything waiting is due
    expected = TRANSITIONS.get((phase, event))
    if expected is None:
        with pytest.raises(IllegalTransition):
            _fire(schedule, entry, event)
        assert entry.phase is phase
    else:
        _fire(schedule, entry, event)
        assert entry.phase is expected


def test_the_table_is_complete_for_ended_phases_and_refuses_sending_them() -> None:
    for phase in (Phase.SETTLED, Phase.ABORTED):
        assert (phase, Event.SEND) not in TRANSITIONS
        for event in set(Event) - {Event.SEND}:
            assert TRANSITIONS[phase, event] is phase
    assert step(Phase.WAITING, Event.SEND) is Phase.IN_FLIGHT
    with pytest.raises(IllegalTransition, match="event read in phase waiting"):
        step(Phase.WAITING, Event.READ)
    assert isinstance(IllegalTransition("x"), errors.ImuzekitError)


@pytest.mark.parametrize("batching", list(Batching))
@pytest.mark.parametrize("event", list(BatchEvent))
def test_every_batching_transition_follows_its_table(batching: Batching, event: BatchEvent) -> None:
    expected = BATCH_TRANSITIONS.get((batching, event))
    if expected is None:
        with pytest.raises(IllegalTransition):
            batch_step(batching, event)
    else:
        assert batch_step(batching, event) is expected


# -- per-job polls ----------------------------------------------------------------------------


def test_first_poll_after_initial_then_backoff_up_to_the_ceiling() -> None:
    schedule, clock = make()
    entry = add(schedule, "a")
    assert schedule.due().next_due == 102.0
    times = []
    for _ in range(5):
        clock.now = entry.due
        poll = only_poll(schedule)
        assert poll.entries == (entry,) and not poll.batch
        times.append(clock.now)
        assert schedule.read(entry, changed=False, done=False) is Verdict.POLLING
    assert times == [102.0, 106.0, 114.0, 124.0, 134.0]
    assert schedule.requests("g") == 5


def test_full_jitter_scales_the_backoff() -> None:
    schedule, clock = make(rand=lambda: 0.25)
    policy = PollPolicy(initial=1.0, max_interval=10.0, budget=0.0, learn=False)
    entry = add(schedule, "a", policy)
    clock.advance(1.0)
    only_poll(schedule)
    schedule.read(entry, changed=False, done=False)
    assert entry.due == pytest.approx(clock.now + 2.0 * 0.25)


def test_nothing_is_due_early_and_in_flight_entries_are_not_sent_twice() -> None:
    schedule, clock = make()
    add(schedule, "a")
    clock.advance(1.999)
    assert schedule.due().polls == ()
    clock.advance(0.001)
    assert len(schedule.due().polls) == 1
    plan = schedule.due()
    assert plan.polls == () and plan.next_due is None


def test_a_job_polled_before_keeps_its_cadence() -> None:
    schedule, _ = make()
    entry = add(schedule, "a", polls=2, since_poll=3.0)
    assert entry.due == pytest.approx(100.0 + 8.0 - 3.0)


def test_retry_after_postpones_a_per_job_poll() -> None:
    schedule, clock = make()
    entry = add(schedule, "a")
    clock.advance(2.0)
    only_poll(schedule)
    schedule.read(entry, changed=False, done=False, retry_after=30.0)
    assert entry.due == clock.now + 30.0


def test_a_finished_reading_settles_the_entry() -> None:
    schedule, clock = make()
    entry = add(schedule, "a")
    clock.advance(2.0)
    only_poll(schedule)
    assert schedule.read(entry, changed=True, done=True) is Verdict.SETTLED
    assert entry.phase is Phase.SETTLED
    assert schedule.waiting("g") == 0
    assert schedule.due().next_due is None


def test_a_late_result_after_the_waiters_left_changes_nothing() -> None:
    schedule, clock = make()
    entry = add(schedule, "a")
    clock.advance(2.0)
    only_poll(schedule)
    schedule.leave(entry)
    assert schedule.read(entry, changed=True, done=True) is Verdict.ENDED
    assert entry.phase is Phase.ABORTED


def test_outside_readings_settle_or_restart_the_stall_clock() -> None:
    schedule, clock = make()
    policy = PollPolicy(initial=1.0, max_interval=1.0, jitter=False, stall_after=5.0, budget=0)
    entry = add(schedule, "a", policy)
    clock.advance(4.0)
    assert schedule.observe(entry, changed=True, done=False) is Verdict.POLLING
    clock.now = entry.due
    only_poll(schedule)
    clock.advance(4.0)
    assert schedule.read(entry, changed=False, done=False) is Verdict.POLLING  # 4 s since change
    assert schedule.observe(entry, changed=False, done=True) is Verdict.SETTLED


# -- stalls, failures, deadlines ----------------------------------------------------------------


def test_a_stall_ends_the_entry_and_caps_the_wait_before_it() -> None:
    schedule, clock = make()
    policy = PollPolicy(initial=1.0, max_interval=10.0, jitter=False, stall_after=3.0, budget=0)
    entry = add(schedule, "a", policy)
    clock.advance(1.0)
    only_poll(schedule)
    assert schedule.read(entry, changed=False, done=False) is Verdict.POLLING
    assert entry.due == pytest.approx(clock.now + 2.0)  # capped at the stall moment (3 s)
    clock.now = entry.due
    only_poll(schedule)
    assert schedule.read(entry, changed=False, done=False) is Verdict.STALLED
    assert entry.phase is Phase.ABORTED


def test_transient_failures_back_off_then_give_up_at_the_budget() -> None:
    schedule, clock = make(rand=lambda: 0.5)
    entry = add(schedule, "a")
    verdicts = []
    for _ in range(5):
        clock.now = entry.due
        poll = only_poll(schedule)
        verdicts.append(schedule.failed(poll)[entry])
        if entry.phase is Phase.WAITING:
            assert entry.due == pytest.approx(clock.now + 10.0 * 0.5)
    assert verdicts == [Verdict.POLLING] * 4 + [Verdict.GAVE_UP]
    assert entry.phase is Phase.ABORTED


def test_a_failure_honours_retry_after_when_longer() -> None:
    schedule, clock = make(rand=lambda: 0.1)
    entry = add(schedule, "a")
    clock.advance(2.0)
    schedule.failed(only_poll(schedule), retry_after=7.0)
    assert entry.due == clock.now + 7.0


def test_a_reading_resets_the_failure_count() -> None:
    schedule, clock = make()
    entry = add(schedule, "a")
    for _ in range(4):
        clock.now = entry.due
        schedule.failed(only_poll(schedule))
    clock.now = entry.due
    only_poll(schedule)
    schedule.read(entry, changed=False, done=False)
    assert entry.failures == 0


def test_an_entry_past_its_deadline_expires_instead_of_polling() -> None:
    schedule, clock = make()
    entry = add(schedule, "a")
    schedule.set_deadline(entry, 101.0)
    clock.advance(5.0)
    plan = schedule.due()
    assert plan.polls == () and plan.expired == (entry,)
    assert entry.phase is Phase.ABORTED


# -- coalescing and batching --------------------------------------------------------------------


def test_enough_batchable_jobs_share_one_batch() -> None:
    schedule, clock = make()
    entries = [add(schedule, k, batchable=True) for k in "abc"]
    clock.advance(2.0)
    poll = only_poll(schedule)
    assert poll.batch and set(poll.entries) == set(entries)
    assert all(e.phase is Phase.IN_FLIGHT for e in entries)
    readings = {entries[0]: (True, True), entries[1]: (False, False)}
    verdicts = schedule.batch_read(poll, readings, pages=2)
    assert verdicts[entries[0]] is Verdict.SETTLED
    assert entries[1].phase is Phase.WAITING
    assert entries[2].phase is Phase.DIRECT  # not on the list: asked about on its own
    assert schedule.requests("g") == 2
    solo = only_poll(schedule)
    assert solo.entries == (entries[2],) and not solo.batch


def test_below_the_threshold_jobs_are_polled_alone() -> None:
    schedule, clock = make()
    add(schedule, "a", batchable=True)
    add(schedule, "b", batchable=True)
    clock.advance(2.0)
    plan = schedule.due()
    assert [p.batch for p in plan.polls] == [False, False]


def test_jobs_added_during_a_batch_wait_for_the_next_one() -> None:
    schedule, clock = make()
    for k in "abc":
        add(schedule, k, batchable=True)
    clock.advance(2.0)
    poll = only_poll(schedule)
    late = add(schedule, "d", batchable=True)
    clock.advance(5.0)
    assert schedule.due().polls == ()
    schedule.batch_read(poll, dict.fromkeys(poll.entries, (False, False)), pages=1)
    clock.advance(10.0)
    nxt = only_poll(schedule)
    assert nxt.batch and late in nxt.entries


def test_a_refused_batch_turns_batching_off_for_good() -> None:
    schedule, clock = make()
    entries = [add(schedule, k, batchable=True) for k in "abc"]
    clock.advance(2.0)
    poll = only_poll(schedule)
    schedule.batch_refused(poll)
    assert schedule.batching("g") is Batching.OFF
    assert all(e.phase is Phase.DIRECT for e in entries)
    plan = schedule.due()
    assert len(plan.polls) == 3 and not any(p.batch for p in plan.polls)
    for entry in entries:
        schedule.read(entry, changed=False, done=False)
    clock.advance(60.0)
    assert not any(p.batch for p in schedule.due().polls)


def test_a_failed_batch_holds_the_group_back() -> None:
    schedule, clock = make(rand=lambda: 0.3)
    for k in "abc":
        add(schedule, k, batchable=True)
    clock.advance(2.0)
    verdicts = schedule.failed(only_poll(schedule), retry_after=1.0)
    assert set(verdicts.values()) == {Verdict.POLLING}
    assert schedule.due().next_due == pytest.approx(clock.now + 3.0)


def test_batched_jobs_are_not_jittered() -> None:
    schedule, clock = make(rand=lambda: 0.01)
    policy = PollPolicy(initial=2.0, max_interval=10.0, budget=0.0, learn=False)
    entries = [add(schedule, k, policy, batchable=True) for k in "abc"]
    clock.advance(2.0)
    poll = only_poll(schedule)
    schedule.batch_read(poll, dict.fromkeys(entries, (False, False)), pages=1)
    assert schedule.due().next_due == pytest.approx(clock.now + 4.0)


# -- the budget ---------------------------------------------------------------------------------


def _batch_of(schedule: Schedule, n: int, policy: PollPolicy, **kw: object) -> list[Entry]:
    return [add(schedule, f"j{i}", policy, batchable=True, **kw) for i in range(n)]


def test_the_budget_ticks_sooner_than_the_backoff_when_many_jobs_wait() -> None:
    schedule, _clock = make()
    policy = PollPolicy(initial=2.0, max_interval=10.0, jitter=False, budget=0.05, learn=False)
    _batch_of(schedule, 1000, policy, expected=30.0, age=0.0)
    # Prior: a job needs its hint (30 s), so 1,000 jobs finish at ~33/s; 50 requests for 1,000
    # jobs (one held back) make a tick per ~20 finishes: ~0.6 s, far below the 2 s backoff.
    first = schedule.due().next_due
    assert first is not None and 100.25 <= first <= 101.0


def test_no_budget_leaves_the_backoff_alone() -> None:
    schedule, _clock = make()
    _batch_of(schedule, 1000, FIXED, expected=30.0, age=0.0)
    assert schedule.due().next_due == 102.0


def _simulate(schedule: Schedule, clock: FakeClock, entries: list[Entry]) -> list[float]:
    """Run the group to the end; job ``j<i>`` finishes 5 + 25 i / n s after the start (uniform,
    like the benchmark's render times). Returns the detection lags, sorted."""
    start = clock.now
    done_by = {e: start + 5.0 + 25.0 * i / len(entries) for i, e in enumerate(entries)}
    lags: list[float] = []
    while schedule.waiting("g"):
        plan = schedule.due()
        if not plan.polls:
            assert plan.next_due is not None
            clock.now = plan.next_due
            continue
        (poll,) = plan.polls
        readings = {}
        for entry in poll.entries:
            done = clock.now >= done_by[entry]
            readings[entry] = (done, done)
            if done:
                lags.append(clock.now - done_by[entry])
        schedule.batch_read(poll, readings, pages=1)
    return sorted(lags)


@pytest.mark.parametrize("learn", [True, False])
def test_the_budget_is_spent_where_jobs_finish_and_never_overspent(learn: bool) -> None:
    schedule, clock = make()
    policy = PollPolicy(initial=2.0, max_interval=10.0, jitter=False, budget=0.05, learn=learn)
    entries = _batch_of(schedule, 1000, policy, expected=30.0, age=0.0)
    lags = _simulate(schedule, clock, entries)
    assert len(lags) == 1000
    assert schedule.requests("g") <= 50  # 0.05 per job
    assert lags[949] <= 1.0  # p95: ticks every ~0.6 s while the jobs finish
    assert max(lags) <= 10.0  # the backoff ceiling still bounds the last ones


def test_a_second_wave_uses_what_the_first_taught() -> None:
    schedule, clock = make()
    policy = PollPolicy(initial=2.0, max_interval=10.0, jitter=False, budget=0.05, learn=True)
    _simulate(schedule, clock, _batch_of(schedule, 1000, policy, expected=30.0, age=0.0))
    clock.advance(100.0)
    second = [
        add(schedule, f"k{i}", policy, batchable=True, expected=30.0, age=0.0) for i in range(1000)
    ]
    # Nothing finished before 5 s last time: the first tick waits for the learned start.
    first = schedule.due().next_due
    assert first is not None and first - clock.now >= 2.0
    lags = _simulate(schedule, clock, second)
    assert lags[949] <= 1.0


def test_many_pages_per_tick_mean_fewer_ticks() -> None:
    schedule, clock = make()
    policy = PollPolicy(initial=2.0, max_interval=10.0, jitter=False, budget=0.05, learn=False)
    entries = _batch_of(schedule, 1000, policy, expected=30.0, age=0.0)
    clock.now = schedule.due().next_due or 0.0
    (poll,) = schedule.due().polls
    schedule.batch_read(poll, dict.fromkeys(entries, (False, False)), pages=10)
    # 10 pages a tick: 50 - 10 (spent) - 10 (held back) = 30 left for 1,000 jobs: a tick per
    # 333 finishes, longer than the backoff's 4 s at ~33 finishes/s, so the backoff rules.
    assert schedule.due().next_due == pytest.approx(clock.now + 4.0)


def test_min_interval_floors_the_budget() -> None:
    schedule, _clock = make()
    policy = PollPolicy(
        initial=2.0, max_interval=10.0, jitter=False, budget=0.05, min_interval=1.5, learn=False
    )
    _batch_of(schedule, 1000, policy, expected=30.0, age=0.0)
    assert schedule.due().next_due == pytest.approx(101.5)


# -- learning -----------------------------------------------------------------------------------


def _finish_jobs(schedule: Schedule, clock: FakeClock, renders: list[float]) -> None:
    """Per-job entries that finish after ``renders`` seconds, read right then."""
    for i, render in enumerate(renders):
        start = clock.now
        entry = add(schedule, f"done{i}", age=0.0, expected=10.0)
        clock.now = start + render  # past its first poll (FIXED: 2 s)
        assert only_poll(schedule).entries == (entry,)
        assert schedule.read(entry, changed=True, done=True) is Verdict.SETTLED


def test_learned_render_times_place_the_first_per_job_poll() -> None:
    schedule, clock = make()
    policy = PollPolicy(initial=2.0, max_interval=10.0, jitter=False, budget=0, learn=True)
    before = add(schedule, "fresh", policy, age=0.0, expected=10.0)
    assert before.due == clock.now + 2.0  # nothing learned yet: PollPolicy.initial
    schedule.leave(before)
    _finish_jobs(schedule, clock, [20.0] * 10)
    entry = add(schedule, "new", policy, age=0.0, expected=10.0)
    # Similar jobs were seen done 20 s after they started, never read before: their render
    # time is taken as the midpoint, 10 s, which is one hint (10 s): the first poll waits.
    assert entry.due - clock.now == pytest.approx(10.0)
    off = add(schedule, "off", FIXED, age=0.0, expected=10.0)
    assert off.due == clock.now + 2.0


def test_learned_spacing_tightens_per_job_polls_in_the_finishing_window() -> None:
    schedule, clock = make()
    policy = PollPolicy(initial=2.0, max_interval=10.0, jitter=False, budget=0, learn=True)
    _finish_jobs(schedule, clock, [8.0 + i for i in range(10)])
    entry = add(schedule, "new", policy, age=0.0, expected=10.0)
    clock.now = entry.due
    only_poll(schedule)
    schedule.read(entry, changed=False, done=False)
    interval = entry.due - clock.now
    backoff = policy.interval(entry.polls, lambda: 1.0)
    assert policy.min_interval <= interval < backoff


def test_unknown_age_means_no_learning() -> None:
    schedule, clock = make()
    _finish_jobs(schedule, clock, [20.0] * 10)
    policy = PollPolicy(initial=2.0, max_interval=10.0, jitter=False, budget=0, learn=True)
    entry = add(schedule, "resumed", policy, age=None, expected=10.0)
    assert entry.due == clock.now + 2.0


# -- push: the safety schedule ------------------------------------------------------------------


def test_a_pushed_job_is_first_polled_at_twice_its_hint_and_at_least_a_minute() -> None:
    from imuzekit.jobs._safety import SAFETY

    schedule, clock = make()
    mureka = add(schedule, "m", pushed=True, age=10.0, expected=45.0)
    short = add(schedule, "s", pushed=True, age=0.0, expected=5.0)
    unhinted = add(schedule, "u", pushed=True, age=30.0)
    assert mureka.due - clock.now == pytest.approx(2 * 45.0 - 10.0)
    assert short.due - clock.now == pytest.approx(SAFETY.first) == 60.0
    assert unhinted.due - clock.now == pytest.approx(60.0 - 30.0)
    clock.advance(29.9)
    assert schedule.due().polls == ()  # FIXED.initial (2 s) is long past: no ordinary poll
    clock.advance(0.1)
    assert only_poll(schedule).entries == (unhinted,)


def test_a_pushed_job_of_unknown_age_is_polled_after_initial_then_every_minute() -> None:
    schedule, clock = make()
    entry = add(schedule, "resumed", pushed=True, age=None, expected=45.0)
    assert entry.due - clock.now == FIXED.initial  # it may have ended while nobody listened
    clock.advance(FIXED.initial)
    only_poll(schedule)
    assert schedule.read(entry, changed=True, done=False) is Verdict.POLLING
    assert entry.due - clock.now == 60.0  # FIXED does not jitter
    clock.now = entry.due
    only_poll(schedule)
    schedule.read(entry, changed=False, done=False)
    assert entry.due - clock.now == 60.0


def test_safety_polls_take_half_jitter_and_honour_retry_after() -> None:
    schedule, clock = make(rand=lambda: 0.0)
    policy = PollPolicy(initial=2.0, max_interval=10.0, budget=0, learn=False)  # jitter on
    entry = add(schedule, "a", policy, pushed=True, age=None)
    clock.advance(2.0)
    only_poll(schedule)
    schedule.read(entry, changed=False, done=False)
    assert entry.due - clock.now == 30.0  # 60 s x (0.5 + 0.5 x 0)
    clock.now = entry.due
    only_poll(schedule)
    schedule.read(entry, changed=False, done=False, retry_after=90.0)
    assert entry.due - clock.now == 90.0


def test_pushed_jobs_stay_out_of_batches_and_spend_no_budget() -> None:
    schedule, clock = make()
    policy = PollPolicy(initial=2.0, max_interval=10.0, jitter=False, budget=0.05, learn=False)
    pushed = [
        add(schedule, f"p{i}", policy, batchable=True, pushed=True, age=0.0) for i in range(5)
    ]
    clock.advance(10.0)
    assert schedule.due().polls == ()  # five batchable jobs, none polled: push covers them
    polled = [add(schedule, f"q{i}", policy, batchable=True, age=0.0) for i in range(3)]
    clock.advance(10.0)
    poll = only_poll(schedule)
    assert poll.batch and set(poll.entries) == set(polled)
    assert all(entry.phase is Phase.WAITING for entry in pushed)


def test_a_confirmed_push_settles_the_entry_and_teaches_the_schedule() -> None:
    schedule, clock = make()
    policy = PollPolicy(initial=2.0, max_interval=10.0, jitter=False, budget=0, learn=True)
    for i in range(10):
        entry = add(schedule, f"p{i}", policy, pushed=True, age=0.0, expected=10.0)
        clock.advance(20.0)
        assert schedule.observe(entry, changed=True, done=True) is Verdict.SETTLED
        assert entry.phase is Phase.SETTLED
    assert schedule.waiting("g") == 0 and schedule.requests("g") == 0
    later = add(schedule, "polled", policy, age=0.0, expected=10.0)
    # Pushed jobs finished at exactly two hints: the first poll of a polled one waits
    # until 5 % of them had, two hints (20 s), rather than PollPolicy.initial.
    assert later.due - clock.now == pytest.approx(20.0)
