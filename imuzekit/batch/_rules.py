"""The batch runner's pure rules: the landing window, when a line may be sent again, and the
reconciliation marker carried in a create's parameters (where it goes is the provider spec's
`CreateCall.mark`; `markers_in` and `spelled_marker` are the contract's).
"""

from __future__ import annotations

import time
from typing import Any

from imuzekit import Timeouts
from imuzekit.batch._journal import LineRecord
from imuzekit.providers import registry
from imuzekit.providers._spec import markers_in, spelled_marker

__all__ = [
    "landing_window",
    "marked_params",
    "markers_in",
    "resubmit_after",
    "spelled_marker",
    "when",
]

# The landing window's margin: the request's own bound again, at most this. It covers a
# provider that finishes acting on a request after the client stopped waiting for the answer,
# and the wall clocks of two processes (or machines) disagreeing a little.
_LANDING_MARGIN_MAX = 30.0
_UNBOUNDED = 600.0  # what a request with no time limit at all is assumed to take at most


def landing_window(timeouts: Timeouts) -> float:
    """Seconds after a create request's sender stopped (answered, gave up, or died) during
    which the provider could still act on it: the time the client waits for the answer to
    start (``connect + read``, or ``total`` when shorter) plus a margin of as much again, at
    most 30 s. The Client's defaults (10 + 60 s) give 100 s."""
    limits = [timeouts.total]
    if timeouts.connect is not None and timeouts.read is not None:
        limits.append(timeouts.connect + timeouts.read)
    bound = min((x for x in limits if x is not None), default=_UNBOUNDED)
    return bound + min(bound, _LANDING_MARGIN_MAX)


def resubmit_after(line: LineRecord, window: float) -> float:
    """The wall-clock time after which sending ``line``'s create again cannot make a second
    generation of a create sent earlier: its ``settle_by`` (kept from ``submitting`` into
    ``uncertain``), or, for a line that never recorded one (a version 1 journal, or an
    ``uncertain`` line from before), its last change plus ``window``. Zero for a line whose
    create was never possibly sent."""
    if line.settle_by is not None:
        return line.settle_by
    if line.state in ("submitting", "uncertain"):
        return line.updated_at + window
    return 0.0


def when(timestamp: float) -> str:
    """A wall-clock time for people: ``2026-12-03 10:08:02`` (local time)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def marked_params(line: LineRecord) -> dict[str, Any]:
    """The create call's keyword arguments, with the marker added where the provider's spec
    puts it (`CreateCall.mark`), the call's defaults, and each value as the call takes it."""
    call = registry().get(line.provider).create(line.kind)
    params = dict(line.params)
    if line.marker is not None:
        params = call.mark(params, line.marker)
    return call.arguments(params)
