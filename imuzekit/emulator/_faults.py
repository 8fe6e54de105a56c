"""Fault injection as data: what to do to which requests, and how many times.

A `Fault` is matched against every request a provider receives, by provider name and by a
``"METHOD /path-glob"`` pattern over the path relative to the provider's base URL (the part after
``/imuze/api/4`` for iMuze). The server (`_app.py`) applies the effects; this module only holds the
registry and picks the fault that applies.

Effects, in the order the server applies them:

1. ``delay``: sleep that many seconds (real time) first; alone, the request then proceeds.
   With ``read_first=True`` the request body is read in full before the delay, so the handler
   acts even if the client has gone meanwhile: a provider that accepted a create and makes it
   seconds later (without it, a client that disconnects during the delay makes the handler
   fail on the lost body, and nothing is created).
2. ``reset``: drop the TCP connection without answering.
3. ``status``: answer that status without running the handler (JSON body unless ``body``);
   ``retry_after`` adds ``Retry-After`` (whole seconds, rounded up) and ``retry-after-ms``.
   With ``after_handler=True``, ``reset`` and ``status`` happen *after* the real handler ran:
   the work is done (a song exists) but the answer is lost, which is what makes blind retries
   of non-idempotent requests dangerous.
4. otherwise the real handler runs, then the response faults apply: ``ignore_range`` (the Range
   header is dropped before the handler, so the answer is a 200 with the full body), ``garbage``
   (body replaced by random bytes of the same length), ``truncate`` (full Content-Length declared,
   only the first N bytes sent, connection closed) and ``content_length`` (Content-Length N
   declared whatever the body, then the connection closed).

``headers`` and ``retry_after`` are added to whatever response is sent, injected or real.

Callbacks a provider sends (Mureka's ``replyUrl`` POSTs) have faults of their own, a
`CallbackFault` in a `CallbackFaults` registry, matched by provider and event (``created``,
``completed``, ``failed``) when a callback falls due: ``drop`` (never sent), ``duplicate``
(N extra copies), ``delay`` (seconds on the emulator clock) and ``reorder`` (held back until
the job's next callback has been sent).
"""

from __future__ import annotations

import fnmatch
import random
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

__all__ = ["CallbackFault", "CallbackFaults", "Fault", "FaultBody", "Faults", "garbage_bytes"]

FaultBody = str | bytes | Mapping[str, Any] | list[Any]
"""What an injected status may answer: text, raw bytes, or a JSON value."""


def _parse_pattern(pattern: str) -> tuple[str, str]:
    parts = pattern.split(None, 1)
    if len(parts) == 1:
        # A bare glob ("/songs/*") is accepted as "any method".
        method, glob = "*", parts[0]
    elif len(parts) == 2:
        method, glob = parts[0].upper(), parts[1].strip()
    else:
        raise ValueError("fault pattern must be 'METHOD /path-glob', got an empty string")
    if not glob.startswith(("/", "*")):
        raise ValueError(f"fault path glob must start with '/' or '*', got {pattern!r}")
    return method, glob


def _non_negative(name: str, value: float | None) -> None:
    if value is not None and not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")


@attrs.define(eq=False)
class Fault:
    """One registered fault: which requests it matches, what it does, and how often it fired.

    Created by `Faults.add`; `hits` counts the requests it has affected so far, and the fault
    stops applying once `hits` reaches `times` (never, when `times` is None).
    """

    provider: str
    """Provider name the fault applies to (``"imuze"``), or ``"*"`` for all."""
    pattern: str
    """The pattern as given, ``"METHOD /path-glob"``."""
    method: str
    """Upper-cased method from the pattern, ``"*"`` for any."""
    path_glob: str
    """fnmatch glob over the path relative to the provider's base URL."""
    times: int | None = 1
    """How many matching requests it affects; None: every one."""
    status: int | None = None
    """Status to answer instead of the handler's."""
    body: FaultBody | None = None
    """Body of the injected status (default ``{"error": "injected fault", "code": N}``)."""
    headers: Mapping[str, str] | None = None
    """Headers added to the response, injected or real."""
    retry_after: float | None = None
    """Seconds announced in ``Retry-After`` (rounded up) and ``retry-after-ms``."""
    delay: float | None = None
    """Real seconds to wait before anything else."""
    read_first: bool = False
    """Read the whole request body before `delay`, so the handler acts even if the client
    has gone by then."""
    reset: bool = False
    """Drop the connection without answering."""
    truncate: int | None = None
    """Send only this many body bytes (under the full Content-Length), then close."""
    content_length: int | None = None
    """Declare this Content-Length whatever the body, send at most that much, then close."""
    garbage: bool = False
    """Replace the body with as many random, non-audio bytes."""
    ignore_range: bool = False
    """Drop the request's Range header: a 200 with the full body instead of a 206."""
    after_handler: bool = False
    """Run the real handler before `status`/`reset` replace its answer."""
    hits: int = 0
    """How many requests this fault has affected."""

    @property
    def active(self) -> bool:
        """Whether the fault still applies to the next matching request."""
        return self.times is None or self.hits < self.times

    @property
    def remaining(self) -> int | None:
        """How many more requests it will affect (None: unlimited)."""
        return None if self.times is None else max(0, self.times - self.hits)

    @property
    def touches_response(self) -> bool:
        """Whether the fault rewrites the real handler's response body or framing."""
        return self.garbage or self.truncate is not None or self.content_length is not None

    def matches(self, provider: str, method: str, path: str) -> bool:
        """Whether this fault targets a request (provider, method, provider-relative path)."""
        return (
            (self.provider == "*" or self.provider == provider)
            and (self.method == "*" or self.method == method)
            and fnmatch.fnmatchcase(path, self.path_glob)
        )


@attrs.define
class Faults:
    """The registry of faults of one emulator (`emu.faults`).

    Faults are consulted in the order they were added; the first active one that matches a
    request applies to it, and only that one.
    """

    _rng: random.Random = attrs.field(factory=lambda: random.Random(0))
    # Known provider names, when given, turn a typo ("imuz") into an error instead of a fault
    # that silently never fires.
    _providers: frozenset[str] | None = None
    _faults: list[Fault] = attrs.field(factory=list, init=False)

    def add(
        self,
        provider: str,
        pattern: str,
        *,
        status: int | None = None,
        times: int | None = 1,
        body: FaultBody | None = None,
        headers: Mapping[str, str] | None = None,
        retry_after: float | None = None,
        delay: float | None = None,
        reset: bool = False,
        truncate: int | None = None,
        content_length: int | None = None,
        garbage: bool = False,
        ignore_range: bool = False,
        after_handler: bool = False,
        read_first: bool = False,
    ) -> Fault:
        """Register a fault and return it (its `hits` counts the requests it affects).

        `pattern` is ``"METHOD /path-glob"`` (e.g. ``"GET /songs/*"``, ``"* /arrangements*"``),
        matched with fnmatch against the path relative to the provider's base URL; `times` is
        how many matching requests it affects (None: all of them). See the module docstring for
        what each effect does and in which order.
        """
        if self._providers is not None and provider != "*" and provider not in self._providers:
            known = ", ".join(sorted(self._providers))
            raise ValueError(f"unknown provider {provider!r}: expected '*' or one of {known}")
        method, glob = _parse_pattern(pattern)
        if times is not None and (isinstance(times, bool) or times < 1):
            raise ValueError(f"times must be a positive integer or None, got {times!r}")
        if status is not None and (isinstance(status, bool) or not 200 <= status <= 599):
            raise ValueError(f"status must be an HTTP status in 200..599, got {status!r}")
        if body is not None and status is None:
            raise ValueError("body is only sent with an injected status; pass status=...")
        if read_first and not delay:
            raise ValueError("read_first only makes sense with a delay=...")
        if after_handler and status is None and not reset:
            raise ValueError("after_handler needs status=... or reset=True to replace the answer")
        for name, value in (
            ("retry_after", retry_after),
            ("delay", delay),
            ("truncate", truncate),
            ("content_length", content_length),
        ):
            _non_negative(name, value)
        fault = Fault(
            provider=provider,
            pattern=pattern,
            method=method,
            path_glob=glob,
            times=times,
            status=status,
            body=body,
            headers=dict(headers) if headers is not None else None,
            retry_after=retry_after,
            delay=delay,
            reset=reset,
            truncate=truncate,
            content_length=content_length,
            garbage=garbage,
            ignore_range=ignore_range,
            after_handler=after_handler,
            read_first=read_first,
        )
        self._faults.append(fault)
        return fault

    def remove(self, fault: Fault) -> None:
        """Unregister one fault (no error if it is already gone)."""
        self._faults = [f for f in self._faults if f is not fault]

    def clear(self) -> None:
        """Unregister every fault."""
        self._faults.clear()

    def take(self, provider: str, method: str, path: str) -> Fault | None:
        """Return the fault applying to this request and count the hit, or None.

        Called by the server once per request; exhausted faults are dropped from the registry
        here so that a long run with many one-shot faults keeps matching cheap.
        """
        if not self._faults:
            return None
        for fault in self._faults:
            if fault.active and fault.matches(provider, method, path):
                fault.hits += 1
                if fault.remaining == 0:
                    self.remove(fault)
                return fault
        return None

    def garbage(self, size: int) -> bytes:
        """Random bytes for a ``garbage`` fault (see `garbage_bytes`)."""
        return garbage_bytes(size, self._rng)

    def __iter__(self) -> Iterator[Fault]:
        """Iterate over the registered, still active faults in matching order."""
        return iter(list(self._faults))

    def __len__(self) -> int:
        """Number of registered faults that are still active."""
        return len(self._faults)


@attrs.define(eq=False)
class CallbackFault:
    """One registered callback fault: which callbacks it matches, what it does, how often.

    Created by `CallbackFaults.add`; `hits` counts the callbacks it affected, and it stops
    applying once `hits` reaches `times` (never, when `times` is None).
    """

    provider: str
    """Provider name (``"mureka"``), or ``"*"``."""
    event: str
    """``created``, ``completed``, ``failed``, or ``"*"`` for any."""
    times: int | None = 1
    """How many matching callbacks it affects; None: every one."""
    drop: bool = False
    """The callback is never sent."""
    duplicate: int = 0
    """Extra copies sent right after it."""
    delay: float | None = None
    """Seconds, on the emulator clock, the callback is held before it is sent."""
    reorder: bool = False
    """Held back until the job's next callback has been sent (sent last when none follows)."""
    hits: int = 0
    """How many callbacks this fault has affected."""

    @property
    def active(self) -> bool:
        """Whether the fault still applies to the next matching callback."""
        return self.times is None or self.hits < self.times

    def matches(self, provider: str, event: str) -> bool:
        """Whether this fault targets a callback of `provider` for `event`."""
        return self.provider in ("*", provider) and self.event in ("*", event)


@attrs.define
class CallbackFaults:
    """The registry of callback faults of one provider's state (``emu.mureka.callback_faults``).

    Consulted in the order faults were added; the first active one that matches a callback
    applies to it, and only that one.
    """

    _faults: list[CallbackFault] = attrs.field(factory=list, init=False)

    def add(
        self,
        event: str = "*",
        *,
        provider: str = "*",
        times: int | None = 1,
        drop: bool = False,
        duplicate: int = 0,
        delay: float | None = None,
        reorder: bool = False,
    ) -> CallbackFault:
        """Register a callback fault and return it (its `hits` counts the callbacks affected).

        ``event`` is ``"created"``, ``"completed"``, ``"failed"`` or ``"*"``; exactly one
        effect is given: ``drop=True``, ``duplicate=N``, ``delay=seconds`` or ``reorder=True``.
        """
        if event not in ("*", "created", "completed", "failed"):
            raise ValueError(f"event must be created, completed, failed or '*', got {event!r}")
        if times is not None and (isinstance(times, bool) or times < 1):
            raise ValueError(f"times must be a positive integer or None, got {times!r}")
        if isinstance(duplicate, bool) or not isinstance(duplicate, int) or duplicate < 0:
            raise ValueError(f"duplicate must be a non-negative integer, got {duplicate!r}")
        _non_negative("delay", delay)
        effects = [drop, duplicate > 0, delay is not None, reorder]
        if sum(effects) != 1:
            raise ValueError("give exactly one of drop, duplicate, delay or reorder")
        fault = CallbackFault(
            provider=provider,
            event=event,
            times=times,
            drop=drop,
            duplicate=duplicate,
            delay=delay,
            reorder=reorder,
        )
        self._faults.append(fault)
        return fault

    def take(self, provider: str, event: str) -> CallbackFault | None:
        """Return the fault applying to this callback and count the hit, or None."""
        for index, fault in enumerate(self._faults):
            if fault.active and fault.matches(provider, event):
                fault.hits += 1
                if fault.times is not None and fault.hits >= fault.times:
                    del self._faults[index]  # used up: matching stays cheap
                return fault
        return None

    def clear(self) -> None:
        """Unregister every callback fault."""
        self._faults.clear()

    def __iter__(self) -> Iterator[CallbackFault]:
        """Iterate over the still active faults in matching order."""
        return iter(list(self._faults))

    def __len__(self) -> int:
        """Number of registered faults that are still active."""
        return len(self._faults)


def garbage_bytes(size: int, rng: random.Random) -> bytes:
    """`size` random bytes that cannot be mistaken for audio.

    They never start with an MPEG frame sync (0xFF) nor with an ID3 tag, so a client that checks
    the magic bytes of what it downloaded detects the corruption.
    """
    data = bytearray(rng.randbytes(size))
    if data and (data[0] == 0xFF or data[:3] == b"ID3"):
        data[0] = 0x00
    return bytes(data)
