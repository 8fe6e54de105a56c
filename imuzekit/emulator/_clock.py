"""The emulator's clock: every provider's notion of "now" comes from here.

Render times, token lifetimes and the request log read the same `Clock`, so a test can move
all of them forward at once with `advance()` instead of sleeping. `now()` is a monotonic reading
for durations (render times); `wall()` is Unix time for what must look like real dates (JWT
``iat``/``exp`` claims).
"""

from __future__ import annotations

import time

import attrs

__all__ = ["Clock"]


@attrs.define
class Clock:
    """Monotonic seconds (and Unix time, `wall()`) plus an offset that `advance()` moves forward.

    `Clock()` follows real time (`time.monotonic()`) shifted by everything advanced so far.
    `Clock(frozen=True)` stands still: time only moves through `advance()`, which makes state
    transitions exact in tests ("processing" until the moment the clock passes the render time).
    """

    frozen: bool = False
    """When true, `now()` only changes through `advance()`."""

    _offset: float = attrs.field(default=0.0, init=False)
    # Everything ever passed to advance(): `_offset` also absorbs freeze()/unfreeze() bookkeeping,
    # so wall() needs the advances alone.
    _advanced: float = attrs.field(default=0.0, init=False)
    # A frozen clock still starts from a monotonic reading so that its values look like the
    # running clock's and a clock can be unfrozen without jumping backwards.
    _origin: float = attrs.field(factory=time.monotonic, init=False)

    def now(self) -> float:
        """Return the current emulator time in seconds (an arbitrary, monotonic origin)."""
        if self.frozen:
            return self._origin + self._offset
        return time.monotonic() + self._offset

    def wall(self) -> float:
        """Return Unix time in seconds: `time.time()` plus everything `advance()` added.

        Unlike `now()` it keeps following real time while the clock is frozen: a token's ``exp``
        (issued from this reading) must stay in the future of a client that reads its own
        real clock, however long a frozen-clock test or benchmark runs, while
        ``advance(token_ttl)`` still expires it on the emulator's side.
        """
        return time.time() + self._advanced

    def advance(self, seconds: float) -> float:
        """Move the clock forward by `seconds` (>= 0) and return the new `now()`."""
        if not seconds >= 0:  # also rejects NaN
            raise ValueError(f"Clock can only move forward, got advance({seconds!r})")
        self._offset += seconds
        self._advanced += seconds
        return self.now()

    def freeze(self) -> None:
        """Stop the clock at its current reading; only `advance()` moves it afterwards."""
        if not self.frozen:
            self._offset = self.now() - self._origin
            self.frozen = True

    def unfreeze(self) -> None:
        """Let the clock follow real time again, continuing from its current reading."""
        if self.frozen:
            self._offset = self.now() - time.monotonic()
            self.frozen = False
