"""`Webhooks`: the receiver of Mureka's (useapi.net's) job callbacks.

No aiohttp here: `Webhooks.handle` works on a path, headers and a body from any framework, and
`Webhooks.app` / `Webhooks.listen` import the aiohttp adapter (`_app`) only when called.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

import attrs

from imuzekit import errors
from imuzekit._convert import loads_json
from imuzekit.webhooks._refs import MAX_REF_LENGTH, RefSigner, secret_bytes

if TYPE_CHECKING:
    import socket

    from aiohttp import web

__all__ = ["Confirmer", "Listener", "Reply", "WebhookStats", "Webhooks"]

logger = logging.getLogger("imuzekit.webhooks")

Confirmer = Callable[[], Awaitable[bool]]
"""What a valid callback calls: one authenticated ``GET /jobs/{jobid}`` applied to the job;
it returns whether the job is now settled (READY or FAILED)."""

TERMINAL_CLAIMS: Final = frozenset({"completed", "failed"})
"""Callback statuses worth a confirmation: the job may have ended."""
MAX_JOB_ID = 512
_SETTLED_MEMORY = 10_000
_PENDING_MEMORY = 100_000


@attrs.frozen
class Reply:
    """What one creation sends: ``replyUrl`` (`url`) and ``replyRef`` (`ref`)."""

    url: str
    ref: str


@attrs.frozen
class WebhookStats:
    """Counters since the receiver was made.

    `received` = `accepted` + `ignored` + `refused`. A callback is `accepted` when it started a
    confirmation (a valid reference for a registered job, claiming the job ended); `ignored`
    when it is valid but changes nothing (a ``created`` callback, a duplicate, a callback for a
    job already settled or being confirmed); `refused` when it was answered 4xx.
    """

    received: int = 0
    accepted: int = 0
    ignored: int = 0
    refused: int = 0
    confirmations: int = 0
    """Confirmations that ran (each one status request)."""
    confirm_errors: int = 0
    """Confirmations that raised (the job is left to the poller's safety schedule)."""


@attrs.frozen
class Listener:
    """A standalone server started by `Webhooks.listen`: where it listens."""

    host: str
    port: int
    url: str
    """``http://<host>:<port><path>``: the receiver's address on this machine."""


@attrs.define(eq=False)
class _Job:
    job_id: str
    ref: str
    key: str
    account: str | None
    confirm: Confirmer
    confirms: int = 0
    task: asyncio.Task[None] | None = None


def _check_public_url(url: object) -> tuple[str, str]:
    if not isinstance(url, str):
        raise errors.ValidationError("public_url", f"must be a string, got {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise errors.ValidationError("public_url", "must be an absolute http(s) URL")
    if parts.query or parts.fragment:
        raise errors.ValidationError("public_url", "must not carry a query or a fragment")
    if len(url) > 2048:
        raise errors.ValidationError("public_url", "must be at most 2048 characters")
    path = parts.path.rstrip("/") or "/"
    return url, path


def _positive_int(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise errors.ValidationError(field, f"must be a positive integer, got {value!r}")
    return value


class Webhooks:
    """Push for Mureka jobs: ``replyUrl``/``replyRef`` for creations, and the receiver.

    ``public_url`` is where useapi.net can reach the receiver (``https://me.example/hooks``);
    ``secret`` signs the ``replyRef`` of each creation (random when None: references then only
    verify in this process). A callback is a hint, never a result: a valid one makes the job
    confirm with one authenticated ``GET /jobs/{jobid}``; nothing in its body reaches a job.

    ``max_body_bytes`` bounds a callback (refused with 413 before it is read when its
    ``Content-Length`` says more, and while streaming otherwise); ``max_confirms`` bounds the
    confirmations callbacks may cause per job; ``max_age`` (seconds) refuses references older
    than useapi.net keeps jobs (7 days, plus a day).

    Raises:
        errors.ValidationError: `public_url` is not an absolute http(s) URL without a query,
            `secret` is not a string or bytes (or too short), or `max_body_bytes` or
            `max_confirms` is not a positive integer.
    """

    def __init__(
        self,
        public_url: str,
        secret: str | bytes | None = None,
        *,
        max_body_bytes: int = 256 * 1024,
        max_confirms: int = 3,
        max_age: float = 8 * 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.public_url, self.path = _check_public_url(public_url)
        self.max_body_bytes = _positive_int("max_body_bytes", max_body_bytes)
        self.max_confirms = _positive_int("max_confirms", max_confirms)
        self.max_age = float(max_age)
        self._clock = clock
        self._signer = RefSigner(secret_bytes(secret))
        self._jobs: dict[str, _Job] = {}
        # Keys issued by `reply()` whose create has not been registered yet, and an early
        # terminal claim for one (the callback outran the create's answer).
        self._pending: OrderedDict[str, str | None] = OrderedDict()
        # Jobs settled recently, by id, with their key: their late callbacks are ignored (200).
        self._settled: OrderedDict[str, str] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._counts = dict.fromkeys(attrs.fields_dict(WebhookStats), 0)

    def __repr__(self) -> str:
        return f"<Webhooks {self.public_url} jobs={len(self._jobs)}>"

    # --- what the Client calls ---------------------------------------------------------------

    def reply(self) -> Reply:
        """A new ``replyUrl``/``replyRef`` pair for one creation (call it per create attempt)."""
        ref, key = self._signer.make(self._clock())
        self._pending[key] = None
        while len(self._pending) > _PENDING_MEMORY:
            self._pending.popitem(last=False)
        return Reply(url=self.public_url, ref=ref)

    def register(
        self, job_id: str, ref: str, confirm: Confirmer, *, account: str | None = None
    ) -> bool:
        """Watch for callbacks of ``job_id``, created with ``ref``; ``confirm`` checks the job.

        Returns whether push is on for the job: False when ``ref`` is not one of this
        receiver's (another secret; the job then relies on polling alone). A job resumed from a
        token registers the ``reply_ref`` the token recorded. A callback that arrived before
        this call and claimed the job ended starts a confirmation at once.

        Raises:
            errors.ValidationError: `job_id` is not a non-empty string of at most 512
                characters.
        """
        if not isinstance(job_id, str) or not 0 < len(job_id) <= MAX_JOB_ID:
            raise errors.ValidationError("job_id", "must be a non-empty string")
        verified = self._signer.verify(ref)
        if verified is None:
            return False
        entry = _Job(job_id=job_id, ref=ref, key=verified.key, account=account, confirm=confirm)
        self._jobs[job_id] = entry
        early = self._pending.pop(verified.key, None)
        if early == job_id:
            self._start_confirm(entry)
        return True

    def settle(self, job_id: str) -> None:
        """The job is READY or FAILED (however it was learned): later callbacks are ignored."""
        entry = self._jobs.pop(job_id, None)
        if entry is None:
            return
        self._settled[job_id] = entry.key
        while len(self._settled) > _SETTLED_MEMORY:
            self._settled.popitem(last=False)

    def ref_of(self, job_id: str) -> str | None:
        """The ``replyRef`` a watched job was created with (None once settled or unknown).

        A job token records it (``reply_ref``), so that a job resumed in another process with
        the same secret is watched there too; it lets its holder cause at most
        ``max_confirms`` status requests for that one job, nothing more.
        """
        entry = self._jobs.get(job_id)
        return entry.ref if entry is not None else None

    def watching(self, job_id: str) -> bool:
        """Whether callbacks of ``job_id`` are awaited (registered and not settled)."""
        return job_id in self._jobs

    def stats(self) -> WebhookStats:
        """The counters right now."""
        return WebhookStats(**self._counts)

    async def drain(self) -> None:
        """Wait until every confirmation started so far has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel running confirmations (the Client calls it when it closes)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- serving -----------------------------------------------------------------------------

    def app(self) -> web.Application:
        """An aiohttp application to mount at the path of ``public_url``:

        ```python
        app.add_subapp("/hooks/imuzekit", kit.webhooks.app())
        ```
        """
        from imuzekit.webhooks._app import build_app

        return build_app(self)

    @contextlib.asynccontextmanager
    async def listen(
        self, host: str = "127.0.0.1", port: int | None = None, *, sock: socket.socket | None = None
    ) -> AsyncIterator[Listener]:
        """Serve the receiver standalone at the path of ``public_url`` while the block runs.

        ``port`` defaults to ``public_url``'s; ``sock`` serves on a socket already bound.
        """
        from imuzekit.webhooks._app import serve

        async with serve(self, host, port, sock) as listener:
            yield listener

    async def handle(
        self,
        path: str,
        headers: Mapping[str, str],
        body: bytes | AsyncIterable[bytes],
    ) -> int:
        """Process one callback from any framework and return the HTTP status to answer.

        ``path`` is the request's path (404 unless it is ``public_url``'s); ``body`` the raw
        bytes, or an async iterable of chunks read only up to ``max_body_bytes`` (413 beyond;
        a ``Content-Length`` above it is refused before any byte is read).

        It raises nothing for a bad callback: the status says what was wrong (400, 401, 403,
        404, 413, 415). A failed confirmation is counted (`stats().confirm_errors`); polling
        still covers its job.
        """
        if (path.split("?", 1)[0].rstrip("/") or "/") != self.path:
            return self._refuse(404, "not the receiver's path")
        return await self.receive(headers, body)

    async def receive(self, headers: Mapping[str, str], body: bytes | AsyncIterable[bytes]) -> int:
        """`handle` without the path check (the app calls it where it is mounted)."""
        lowered = {str(k).lower(): str(v) for k, v in headers.items()}
        declared = lowered.get("content-length")
        if declared is not None:
            if not (declared.strip().isascii() and declared.strip().isdigit()):
                return self._refuse(400, "bad Content-Length")
            if int(declared) > self.max_body_bytes:
                return self._refuse(413, "declared body too large")
        content_type = lowered.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type and "json" not in content_type and content_type != "text/plain":
            return self._refuse(415, f"content type {content_type[:64]!r}")
        data = await self._read(body)
        if data is None:
            return self._refuse(413, "body too large")
        return self._process(data)

    async def _read(self, body: bytes | AsyncIterable[bytes]) -> bytes | None:
        if isinstance(body, bytes | bytearray | memoryview):
            data = bytes(body)
            return data if len(data) <= self.max_body_bytes else None
        chunks: list[bytes] = []
        size = 0
        async for chunk in body:
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(bytes(chunk))
        return b"".join(chunks)

    # --- the rules ---------------------------------------------------------------------------

    def _count(self, name: str) -> None:
        self._counts[name] += 1

    def _refuse(self, status: int, reason: str) -> int:
        self._count("received")
        self._count("refused")
        logger.debug("webhook callback refused (%d): %s", status, reason)
        return status

    def _ignore(self, reason: str) -> int:
        self._count("received")
        self._count("ignored")
        logger.debug("webhook callback ignored: %s", reason)
        return 200

    def _process(self, data: bytes) -> int:
        try:
            record = loads_json(data)
        except ValueError:
            return self._refuse(400, "not JSON")
        if not isinstance(record, dict):
            return self._refuse(400, "not a job record")
        job_id = record.get("jobid")
        if not isinstance(job_id, str) or not 0 < len(job_id) <= MAX_JOB_ID:
            return self._refuse(400, "no jobid")
        request = record.get("request")
        request = request if isinstance(request, dict) else {}
        ref = request.get("replyRef", record.get("replyRef"))
        if not isinstance(ref, str) or not ref or len(ref) > MAX_REF_LENGTH:
            return self._refuse(401, "missing or oversized replyRef")
        verified = self._signer.verify(ref)
        if verified is None:
            return self._refuse(401, "replyRef does not verify")
        if self._clock() - verified.issued > self.max_age:
            return self._refuse(401, "replyRef expired")
        claim = record.get("status")
        ends = claim in TERMINAL_CLAIMS
        entry = self._jobs.get(job_id)
        if entry is None:
            settled_key = self._settled.get(job_id)
            if settled_key is not None and _same(settled_key, verified.key):
                return self._ignore("job already settled")
            if verified.key in self._pending:
                # The callback outran the create's answer: remember the job; `register`
                # confirms it at once if the callback said it ended.
                if ends:
                    self._pending[verified.key] = job_id
                return self._ignore("job not registered yet")
            return self._refuse(404, "unknown job")
        if not _same(entry.key, verified.key):
            return self._refuse(403, "replyRef of another job")
        account = request.get("account")
        if entry.account is not None and account is not None and account != entry.account:
            return self._refuse(403, "account differs from the job's")
        if not ends:
            return self._ignore(f"status {str(claim)[:32]!r} needs no confirmation")
        if entry.task is not None:
            return self._ignore("a confirmation is already running")
        if entry.confirms >= self.max_confirms:
            return self._ignore("confirmations for this job used up (polling goes on)")
        self._count("received")
        self._count("accepted")
        self._start_confirm(entry)
        return 202

    def _start_confirm(self, entry: _Job) -> None:
        entry.confirms += 1
        task = asyncio.get_running_loop().create_task(self._confirm(entry))
        entry.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _confirm(self, entry: _Job) -> None:
        settled = False
        try:
            self._count("confirmations")
            settled = await entry.confirm()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the poller's safety schedule still covers the job
            self._count("confirm_errors")
            logger.info(
                "webhook confirmation of job %s failed: %s", entry.job_id, type(exc).__name__
            )
        finally:
            entry.task = None
        if settled:
            self.settle(entry.job_id)


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("ascii"), b.encode("ascii"))
