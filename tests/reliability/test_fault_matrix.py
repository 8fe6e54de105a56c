"""The fault matrix: every provider x operation class x fault, against the real emulator.

Each case asserts that the outcome is the correct result or the documented typed error, within
a hard deadline, with no partial file left behind and nothing created twice. The outcomes are
recorded for ``docs/reliability.md`` (see `conftest.py`), and a test checks that the committed
page lists every case.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from pathlib import Path
from typing import Any

import pytest

from imuzekit import PollPolicy, RetryPolicy, Timeouts, errors
from imuzekit.emulator import Clock, Emulator
from tests.reliability._ops import WAIT, Operation, creations, musescore_config
from tests.reliability._report import (
    FAULTS,
    KEPT_BEGIN,
    KEPT_END,
    MATRIX_RESULTS,
    FaultCase,
    Result,
    cases,
    kept_part,
    parse_page,
    render_page,
)
from tests.reliability.conftest import DOC

# Three attempts: enough for the bursts of two 429 to end in success, and no more waiting.
FAST_RETRY = RetryPolicy(max_attempts=3, backoff_base=0.01, backoff_max=0.05)
# The client and the emulator share one event loop: a pause of the whole process (a garbage
# collection, a busy CI machine) counts against the read timeout, so the cases that do not test
# it keep a wide margin (0.2 s once timed out a reset on CI).
TIMEOUTS = Timeouts(connect=1.0, read=2.0, total=5.0)
# The read-timeout cases wait for real: a tight read timeout keeps them quick.
TIGHT_TIMEOUTS = Timeouts(connect=1.0, read=0.05, total=5.0)
HARD_DEADLINE = 10.0

# Faults applied after the real handler ran when the operation creates something: the work is
# done and only the answer is lost, the case where a blind retry would create a duplicate.
_AFTER_HANDLER = {"reset", "500 storm", "502 storm", "503 storm", "504 storm"}
_AFTER_HANDLER |= {"malformed JSON", "wrong shape", "HTML 200"}
_STORMS = {"500 storm", "502 storm", "503 storm", "504 storm"}
_UNREADABLE = {"malformed JSON", "wrong shape", "HTML 200"}


def expected(op: Operation, fault: FaultCase) -> set[str]:
    """The outcomes the documentation allows for ``fault`` on ``op``."""
    name = fault.name
    if name in ("429 + Retry-After", "429 bare"):
        return {"ok"}
    if name == "stalled job":
        return {"JobTimeout"}
    if op.is_job:
        # Transient errors of a status request are polled through until the job's deadline or
        # a few failures in a row (then the last one surfaces); an unreadable status is
        # permanent and reaches the waiter at once.
        if name in _UNREADABLE:
            return {"ParseError"}
        if name == "truncated" and op.key == "joplin-poll":
            return {"ok"}  # the probe's answer is one byte (Range: bytes=0-0): nothing to cut
        if name in ("refused", "reset", "truncated"):
            return {"TransportError", "JobTimeout"}
        if name == "read timeout":
            return {"RequestTimeout", "JobTimeout"}
        return {"ServerError", "JobTimeout"}
    if op.is_download:
        if name == "refused" or name == "reset":
            return {"TransportError", "DownloadError"}
        if name == "read timeout":
            return {"RequestTimeout", "DownloadError"}
        if name in _STORMS:
            return {"ServerError", "DownloadError"}
        # An HTML page, JSON or a cut/lying body instead of the audio: the format or size check.
        return {"IntegrityError", "DownloadError", "TransportError"}
    if name == "refused" or name == "reset":
        return {"TransportError"}
    if name == "read timeout":
        return {"RequestTimeout"}
    if name in _STORMS:
        return {"ServerError"}
    if name == "truncated":
        return {"TransportError", "ParseError"}
    return {"ParseError"}


def _fault_kwargs(op: Operation, fault: FaultCase) -> dict[str, Any]:
    kwargs = dict(fault.fault or {})
    kwargs.setdefault("times", None)
    if op.creates and fault.name in _AFTER_HANDLER:
        kwargs["after_handler"] = True
    return kwargs


def _check_download(emu: Emulator, op: Operation, ctx: Any, value: Path) -> None:
    data = value.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if op.provider == "imuze":
        assert digest == emu.imuze.audio_sha256(ctx.id)
    elif op.provider == "joplin":
        assert digest == emu.joplin.audio_sha256(ctx.id)
    elif op.provider == "mureka":
        assert digest == emu.mureka.audio_sha256(ctx.song_id)


async def run_case(op: Operation, fault: FaultCase, tmp_path: Path) -> Result:
    """Run one case and check its invariants; return what happened."""
    stalled = fault.name == "stalled job"
    clock = Clock(frozen=True) if stalled else None
    poll = PollPolicy(
        initial=0.02, max_interval=0.05, timeout=WAIT, stall_after=0.3 if stalled else None
    )
    folder = tmp_path / "downloads"
    folder.mkdir()
    async with asyncio.timeout(HARD_DEADLINE):
        async with Emulator(render_seconds=0.05, clock=clock) as emu:
            emu.joplin.retry_after_seconds = 0  # polls at the case's pace, not once a second
            overrides: dict[str, Any] = {}
            if op.no_user_token:
                overrides["musescore"] = musescore_config(emu, with_token=False)
            async with emu.client(
                retry=FAST_RETRY,
                timeouts=TIGHT_TIMEOUTS if fault.name == "read timeout" else TIMEOUTS,
                poll=poll,
                **overrides,
            ) as kit:
                ctx = await op.setup(emu, kit, folder) if op.setup is not None else None
                before = creations(emu, op.provider)
                injected = None
                if fault.name == "refused":
                    await emu.stop()
                elif fault.fault is not None:
                    injected = emu.faults.add(op.provider, op.pattern, **_fault_kwargs(op, fault))
                started = time.monotonic()
                try:
                    value = await op.run(emu, kit, ctx, folder)
                except errors.ImuzekitError as exc:
                    outcome, value = type(exc).__name__, None
                else:
                    outcome = "ok"
                seconds = time.monotonic() - started
                if op.is_download and outcome == "ok":
                    _check_download(emu, op, ctx, value)
            await asyncio.sleep(0)
            created = creations(emu, op.provider) - before
    # Nothing created twice; nothing created at all by an operation that does not create.
    assert created <= (1 if op.creates else 0)
    # No partial file: nothing at all after a failure, never a .part.
    assert not list(folder.glob("*.part")) and not list(folder.glob(".*.part"))
    if outcome != "ok":
        assert list(folder.iterdir()) == []
    if injected is not None and fault.name not in ("429 + Retry-After", "429 bare"):
        assert injected.hits >= 1, "the fault never fired: the case tests nothing"
    return Result(
        outcome=outcome,
        seconds=seconds,
        retried=injected is not None and injected.hits > 0,
        created=created if op.creates else None,
    )


@pytest.mark.parametrize(
    ("op", "fault"),
    [pytest.param(op, fault, id=f"{op.key}-{fault.name}") for op, fault in cases()],
)
async def test_fault(op: Operation, fault: FaultCase, tmp_path: Path) -> None:
    result = await run_case(op, fault, tmp_path)
    MATRIX_RESULTS[(op.key, fault.name)] = result
    assert result.outcome in expected(op, fault), result
    assert result.seconds < HARD_DEADLINE


def missing_cases(text: str) -> list[str]:
    """The cases of the matrix that a rendered page does not report."""
    cells = parse_page(text)
    return [
        f"{op.key} / {fault.name}"
        for op, fault in cases()
        if cells.get((op.key, fault.name), "n/a") in ("n/a", "not run", "")
    ]


def test_the_committed_page_lists_every_case() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert not missing_cases(text), f"docs/reliability.md is stale: {missing_cases(text)}"
    assert {name for _, name in parse_page(text)} == {fault.name for fault in FAULTS}


def test_the_page_checker_notices_a_missing_case() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "imuze-login / 503 storm" in missing_cases(text.replace("| 503 storm |", "| 5O3 |"))
    assert "mureka-poll / stalled job" in missing_cases(text.replace("## mureka", "## murekb"))


def test_regenerating_the_page_keeps_the_hand_written_part() -> None:
    text = DOC.read_text(encoding="utf-8")
    kept = kept_part(text)
    assert kept.startswith(KEPT_BEGIN)
    assert kept.endswith(KEPT_END)
    page = render_page({}, kept)
    assert kept in page
    assert page.index(kept) < page.index("## Faults")
    # A table in the hand-written part is never read as a row of the matrix.
    with_table = kept.replace(
        KEPT_END, "| Fault | create |\n| --- | --- |\n| refused | x |\n" + KEPT_END
    )
    assert parse_page(render_page({}, with_table)) == parse_page(render_page({}, kept))


def test_the_page_has_a_section_per_promise_of_issue_14() -> None:
    kept = kept_part(DOC.read_text(encoding="utf-8"))
    headings = [line for line in kept.splitlines() if line.startswith("### ")]
    assert len(headings) == 10, headings
    for heading in headings:
        section = kept.split(heading, 1)[1].split("\n### ", 1)[0]
        for part in ("**The failure.**", "**The rule now.**", "**The test.**"):
            assert part in section, f"{heading}: missing {part}"


def test_the_promises_name_only_tests_that_exist() -> None:
    kept = kept_part(DOC.read_text(encoding="utf-8"))
    names = {name.split("[")[0] for name in re.findall(r"`(test_\w+)(?![*\w])", kept)}
    sources = "\n".join(
        path.read_text(encoding="utf-8") for path in (Path(__file__).parents[1]).rglob("test_*.py")
    )
    assert len(names) > 30
    assert sorted(name for name in names if f"def {name}(" not in sources) == []
