"""One file's transfer: the requests, resumption with ``Range``, and the checks on the bytes.

The downloader (`imuzekit.downloads`) owns the file and its publication; this module
fills an open file with a source's bytes: resuming a broken transfer with ``Range`` only while
the server serves the same version (same ``ETag``, same total; otherwise from byte 0),
refusing a ``Content-Encoding`` that was not asked for before a byte is written, and checking
the total, the declared size and digest, and the format of the first bytes.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit, urlunsplit

from imuzekit import errors
from imuzekit._http import Request, redact_url
from imuzekit._media import DownloadSpec, looks_like
from imuzekit._transport import Transport

__all__ = ["Attempt", "label", "log_file", "transfer"]

# The download layer's logger: INFO per resume or restart, DEBUG per file (never a credential).
_log = logging.getLogger("imuzekit.downloads")

_HEAD_BYTES = 4096  # enough for a format signature, or an ID3 header and the frame after it


class Attempt:
    """The state of one file's transfer across resumptions."""

    def __init__(self, *, hashed: bool) -> None:
        self.hasher = hashlib.sha256() if hashed else None
        self.size = 0
        self.total: int | None = None
        self.etag: str | None = None  # the validator of the answer whose bytes we hold
        self.started = time.perf_counter()
        self.requests = 0
        # The file's first bytes, until its format is checked: across resumes, since a
        # transfer can break before the first answer brought enough of them.
        self.head: bytearray | None = bytearray()

    def restart(self) -> None:
        if self.hasher is not None:
            self.hasher = hashlib.sha256()
        self.size = 0
        self.total = None
        self.etag = None
        self.head = bytearray()

    def digest(self) -> str | None:
        return None if self.hasher is None else self.hasher.hexdigest()


async def transfer(
    transport: Transport,
    spec: DownloadSpec,
    attempt: Attempt,
    on_progress: Callable[[int, int | None], None] | None,
    handle: BinaryIO,
    *,
    chunk_size: int,
    max_attempts: int,
) -> None:
    """Fill ``handle`` with the body, resuming or restarting after broken transfers, and
    check the total (the caller commits the file)."""
    failures = 0
    resumable = False
    while True:
        request = Request(
            "GET",
            spec.url,
            provider=spec.provider,
            auth=spec.auth,
            headers={"Accept-Encoding": "identity"},
        )
        offset = attempt.size if resumable else 0
        if offset:
            request = request.with_header("Range", f"bytes={offset}-")
            if attempt.etag:
                request = request.with_header("If-Range", attempt.etag)
        else:
            attempt.restart()
            # Before the first request the file is fresh and empty: no truncate (a journalled
            # no-op) and no lseek to find that out.
            if attempt.requests:
                handle.seek(0)
                handle.truncate()
        attempt.requests += 1
        try:
            async with transport.stream(request, ok_statuses=(416,)) as response:
                _refuse_encoding(spec, response.headers)
                content_range = response.headers.get("Content-Range")
                etag = response.headers.get("ETag")
                if response.status == 416:
                    real = _range_total(content_range, unsatisfied=True)
                    if offset and real == offset and attempt.total in (None, real):
                        attempt.total = offset  # we already hold every byte
                    else:
                        raise errors.IntegrityError(
                            f"{label(spec)}: the server declared {attempt.total} bytes "
                            f"but has only {attempt.size}"
                        )
                elif (
                    response.status == 206
                    and not 0 <= (skip := offset - _range_start(content_range)) <= offset
                ):
                    # A range starting after what we hold (or unreadable): never take
                    # it for the whole file; start over without Range.
                    resumable = False
                    raise errors.TransportError(
                        f"{label(spec)}: the server sent bytes from another offset"
                    )
                elif response.status == 206 and _changed(attempt, etag, content_range):
                    # A server that ignored If-Range (or sent no validator) and serves
                    # another version now: its bytes must not be stitched to ours.
                    resumable = False
                    raise errors.TransportError(
                        f"{label(spec)}: the file changed between requests (ETag or "
                        "size); starting over from byte 0"
                    )
                else:
                    if response.status != 206 and offset:
                        # The server ignored our Range: start over from the first byte.
                        _log_restart(spec, attempt, "the server ignored Range")
                        attempt.restart()
                        handle.seek(0)
                        handle.truncate()
                    if response.headers.get("Accept-Ranges", "").lower() == "bytes":
                        resumable = True
                    if response.status == 206:
                        attempt.total = _range_total(content_range)
                    else:
                        # A whole file: its validator is the one a resume must match.
                        attempt.etag = etag
                        attempt.total = response.content_length
                        skip = 0
                    # A range that starts before our offset (servers that align ranges
                    # to blocks) repeats bytes we hold: drop them. If-Range with the
                    # ETag makes sure they are the same file's bytes.
                    await _receive(spec, attempt, response, handle, on_progress, skip, chunk_size)
            if attempt.head is not None:  # a file shorter than the head, checked whole
                _check_head(spec, bytes(attempt.head))
                attempt.head = None
            _verify(spec, attempt)
            return
        except errors.TransportError as exc:
            failures += 1
            if failures >= max_attempts:
                if attempt.total is not None and attempt.size < attempt.total:
                    raise errors.IntegrityError(
                        f"{label(spec)}: received {attempt.size} of {attempt.total} "
                        f"bytes after {failures} attempts ({exc})"
                    ) from exc
                raise errors.DownloadError(
                    f"{label(spec)}: transfer failed after {failures} attempts: {exc}"
                ) from exc
            if resumable and attempt.size:
                _log.info(
                    "%s: transfer broke at byte %d (%s); resuming with Range (attempt %d of %d)",
                    label(spec),
                    attempt.size,
                    type(exc).__name__,
                    failures + 1,
                    max_attempts,
                    extra=_fields(spec, attempt, action="resume", attempt_number=failures + 1),
                )
            else:
                _log_restart(spec, attempt, type(exc).__name__, failures + 1, max_attempts)


def log_file(spec: DownloadSpec, path: Path, attempt: Attempt | None, size: int) -> None:
    """The DEBUG line of one file: downloaded (`attempt` given) or kept as it was (None)."""
    if not _log.isEnabledFor(logging.DEBUG):
        return
    if attempt is None:
        _log.debug(
            "%s: kept %s (%d bytes, already downloaded)",
            label(spec),
            path.name,
            size,
            extra={**_fields(spec, None, action="kept"), "bytes": size, "elapsed": 0.0},
        )
        return
    elapsed = time.perf_counter() - attempt.started
    _log.debug(
        "%s: %d bytes in %.3fs (%d request(s)) -> %s",
        label(spec),
        size,
        elapsed,
        attempt.requests,
        path.name,
        extra={**_fields(spec, attempt, action="downloaded"), "elapsed": elapsed},
    )


def _log_restart(
    spec: DownloadSpec, attempt: Attempt, why: str, number: int = 0, of: int = 0
) -> None:
    """The INFO line of a transfer that starts over from byte 0 (after `number - 1` failures)."""
    _log.info(
        "%s: %s; restarting from byte 0%s",
        label(spec),
        why,
        f" (attempt {number} of {of})" if number else "",
        extra=_fields(spec, attempt, action="restart", attempt_number=number),
    )


def _fields(
    spec: DownloadSpec, attempt: Attempt | None, *, action: str, attempt_number: int = 0
) -> dict[str, Any]:
    """The structured `extra` fields of a download's log line (the URL without credentials)."""
    fields: dict[str, Any] = {"provider": spec.provider, "url": _safe_url(spec.url)}
    fields["action"] = action
    if attempt is not None:
        fields["bytes"] = attempt.size
        fields["requests"] = attempt.requests
    if attempt_number:
        fields["attempt"] = attempt_number
    return fields


def _safe_url(url: str) -> str:
    """`url` for a log line: credential-like query values and any user:password removed."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        parts = parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2])
    return redact_url(urlunsplit(parts))


async def _receive(
    spec: DownloadSpec,
    attempt: Attempt,
    response: Any,
    handle: BinaryIO,
    on_progress: Callable[[int, int | None], None] | None,
    skip: int,
    chunk_size: int,
) -> None:
    """Write the body (after dropping ``skip`` bytes we hold already), checking the format
    once the first bytes of the file are in."""
    head = attempt.head
    hasher = attempt.hasher
    async for chunk in response.chunks(chunk_size):
        if skip:
            dropped = min(skip, len(chunk))
            chunk, skip = chunk[dropped:], skip - dropped
            if not chunk:
                continue
        if head is not None:
            head += chunk[: _HEAD_BYTES - len(head)]
            if len(head) >= _HEAD_BYTES:
                _check_head(spec, bytes(head))
                head = attempt.head = None
        # On the loop: a write into the page cache costs less than a thread hand-off
        # (measured: batching writes into a worker thread made transfers slower).
        handle.write(chunk)
        if hasher is not None:
            hasher.update(chunk)
        attempt.size += len(chunk)
        if on_progress is not None:
            on_progress(attempt.size, attempt.total)


def _verify(spec: DownloadSpec, attempt: Attempt) -> None:
    if attempt.total is not None and attempt.size != attempt.total:
        raise errors.IntegrityError(
            f"{label(spec)}: received {attempt.size} bytes, expected {attempt.total}"
        )
    if spec.size is not None and attempt.size != spec.size:
        raise errors.IntegrityError(
            f"{label(spec)}: received {attempt.size} bytes, expected {spec.size}"
        )
    if spec.sha256 and attempt.digest() != spec.sha256.lower():
        raise errors.IntegrityError(f"{label(spec)}: SHA-256 mismatch")


def label(spec: DownloadSpec) -> str:
    """A short name of the file for messages."""
    return spec.name[:60]


def _refuse_encoding(spec: DownloadSpec, headers: Any) -> None:
    """Refuse a body encoded although we asked for ``identity``, before reading a byte of it.

    Decoding it would let a small gzip body expand to gigabytes on disk before any size check,
    and the declared length would describe the encoded bytes, not the file.
    """
    encoding = headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise errors.DownloadError(
            f"{label(spec)}: the server sent Content-Encoding {encoding[:30]!r} although the "
            "download asked for identity; refused"
        )


def _changed(attempt: Attempt, etag: str | None, content_range: str | None) -> bool:
    """Whether a 206 answer belongs to another version than the bytes we hold."""
    if attempt.etag is not None and etag is not None and etag != attempt.etag:
        return True
    total = _range_total(content_range)
    return attempt.total is not None and total is not None and total != attempt.total


def _check_head(spec: DownloadSpec, chunk: bytes) -> None:
    if not chunk:
        raise errors.IntegrityError(f"{label(spec)}: the server sent an empty file")
    if not looks_like(spec.kind, chunk[:_HEAD_BYTES]):
        raise errors.IntegrityError(
            f"{label(spec)}: the body is not a {spec.kind.value} file (starts with {chunk[:8]!r})"
        )


def _range_start(content_range: str | None) -> int:
    match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", content_range or "")
    return int(match.group(1)) if match else -1


def _range_total(content_range: str | None, *, unsatisfied: bool = False) -> int | None:
    pattern = r"bytes \*/(\d+)" if unsatisfied else r"bytes \d+-\d+/(\d+)"
    match = re.match(pattern, content_range or "")
    return int(match.group(1)) if match else None
