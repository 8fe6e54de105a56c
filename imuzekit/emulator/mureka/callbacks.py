"""The emulated useapi.net's job callbacks (``replyUrl``): what falls due when, faults applied.

Pure: no aiohttp (the `courier` POSTs them). A creation that carries ``replyUrl`` schedules
a ``created`` callback at once and a ``completed`` or ``failed`` one when its generation ends,
on the emulator clock; each callback's JSON is the job's ``GET /jobs/{jobid}`` record as it
read at that event (useapi.net: "The JSON payload shape matches GET /jobs/jobid response").

Faults (`CallbackFaults`, ``emu.mureka.callback_faults``) apply when a callback falls due:
``drop``, ``duplicate``, ``delay`` (emulator seconds) and ``reorder``. Callbacks of one job are
sent one after the other, in the order they are released; different jobs' in parallel.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Mapping
from typing import Any, Final

import attrs

from imuzekit.emulator._faults import CallbackFaults

__all__ = ["EVENTS", "FORGED_MP3_URL", "Callback", "Outbox", "forged_record"]

EVENTS: Final = ("created", "completed", "failed")
"""The events useapi.net calls ``replyUrl`` for."""
FORGED_MP3_URL: Final = "https://forged.invalid/stolen.mp3"
"""The audio link a forged callback claims (no job may ever show it)."""
_SENT_LIMIT = 100_000


@attrs.define(eq=False)
class Callback:
    """One callback POST: to `url`, about `jobid` and `event`; `status` once answered."""

    url: str
    event: str
    jobid: str | None
    due: float
    """Emulator clock time it falls due (moved by a ``delay`` fault)."""
    origin: str = ""
    """Scheme and host the job's record links its CDN files under."""
    body: Mapping[str, Any] | None = None
    """The JSON sent instead of the job's record (a forged callback)."""
    forged: bool = False
    faulted: bool = False
    """Whether the callback faults were consulted already (a delayed one is not re-faulted)."""
    dropped: bool = False
    status: int | None = None
    """The receiver's HTTP status, once sent."""
    error: str | None = None
    """Why it could not be sent (the exception's type), if so."""
    sent_at: float | None = None

    @property
    def done(self) -> bool:
        """Whether it was sent (answered or failed) or dropped."""
        return self.dropped or self.status is not None or self.error is not None


@attrs.define
class Outbox:
    """Callbacks waiting for their time, and every one released so far (`released`)."""

    faults: CallbackFaults = attrs.field(factory=CallbackFaults)
    released: deque[Callback] = attrs.field(factory=lambda: deque(maxlen=_SENT_LIMIT))
    """Callbacks handed to the courier (copies included), oldest first; the last 100,000."""
    dropped: list[Callback] = attrs.field(factory=list)
    """Callbacks a ``drop`` fault swallowed."""
    _heap: list[tuple[float, int, Callback]] = attrs.field(factory=list, init=False)
    _seq: itertools.count[int] = attrs.field(factory=itertools.count, init=False)
    _held: dict[str, list[Callback]] = attrs.field(factory=dict, init=False)
    _waiting: dict[str, int] = attrs.field(factory=dict, init=False)

    def schedule(self, callback: Callback) -> Callback:
        """Queue a callback for its `due` time and return it."""
        heapq.heappush(self._heap, (callback.due, next(self._seq), callback))
        if callback.jobid is not None and not callback.forged:
            self._waiting[callback.jobid] = self._waiting.get(callback.jobid, 0) + 1
        return callback

    @property
    def pending(self) -> int:
        """Callbacks not yet released (scheduled, delayed or held back)."""
        return len(self._heap) + sum(len(held) for held in self._held.values())

    def next_due(self) -> float | None:
        """When the earliest queued callback falls due, if any."""
        return self._heap[0][0] if self._heap else None

    def _resolved(self, jobid: str | None) -> None:
        if jobid is None:
            return
        left = self._waiting.get(jobid, 0) - 1
        if left > 0:
            self._waiting[jobid] = left
        else:
            self._waiting.pop(jobid, None)

    def due(self, now: float, provider: str = "mureka") -> list[Callback]:
        """Release the callbacks due at `now`, faults applied, in the order to send them."""
        out: list[Callback] = []
        while self._heap and self._heap[0][0] <= now:
            _, _, callback = heapq.heappop(self._heap)
            if callback.forged or callback.faulted:
                self._emit(callback, out)
                continue
            callback.faulted = True
            fault = self.faults.take(provider, callback.event)
            if fault is None:
                self._emit(callback, out)
            elif fault.drop:
                callback.dropped = True
                self.dropped.append(callback)
                self._resolved(callback.jobid)
            elif fault.delay is not None:
                callback.due = now + fault.delay
                heapq.heappush(self._heap, (callback.due, next(self._seq), callback))
            elif fault.reorder and callback.jobid is not None:
                self._held.setdefault(callback.jobid, []).append(callback)
                self._resolved(callback.jobid)
            else:
                self._emit(callback, out)
                for _ in range(fault.duplicate):
                    copy = attrs.evolve(callback, status=None, error=None, sent_at=None)
                    self.released.append(copy)
                    out.append(copy)
        # A held-back callback whose job has nothing left to send goes out now.
        for jobid in [j for j in self._held if j not in self._waiting]:
            for callback in self._held.pop(jobid):
                self.released.append(callback)
                out.append(callback)
        return out

    def _emit(self, callback: Callback, out: list[Callback]) -> None:
        self.released.append(callback)
        out.append(callback)
        if not callback.forged:
            self._resolved(callback.jobid)
        held = self._held.pop(callback.jobid, None) if callback.jobid is not None else None
        if held:
            self.released.extend(held)
            out.extend(held)


def forged_record(
    *,
    jobid: str,
    status: str,
    account: str | None,
    url: str,
    reply_ref: str | None,
    mp3_url: str = FORGED_MP3_URL,
) -> dict[str, Any]:
    """A job record as a forger would POST it: the claimed status and a foreign audio link."""
    request: dict[str, Any] = {"account": account, "async": True, "replyUrl": url}
    if reply_ref is not None:
        request["replyRef"] = reply_ref
    record: dict[str, Any] = {
        "jobid": jobid,
        "verb": "music/create",
        "jobType": "music",
        "status": status,
        "request": request,
    }
    if status == "completed":
        record["response"] = {
            "feed_id": 1,
            "state": 3,
            "songs": [
                {"song_id": "user:1-mureka:1-song:1", "version": "1", "mp3_url": mp3_url},
                {"song_id": "user:1-mureka:1-song:2", "version": "2", "mp3_url": mp3_url},
            ],
        }
    return record
