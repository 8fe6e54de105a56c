"""Downloads that never leave a half-written file where a complete one is expected.

Each file streams in chunks to ``<name>.part`` beside its target (its SHA-256 computed on the
way when asked for with ``checksum=True``, or when the source names the digest to expect); a
transfer that breaks resumes with ``Range`` when the server accepts byte ranges (otherwise it
restarts); the total is checked against ``Content-Length``; the first bytes are
checked against the expected format (an MP3 frame sync after any ID3 tag, ``%PDF``, ...); then
the file is fsynced and atomically renamed into place. On any failure the ``.part`` file is
removed and nothing is left at the destination. Memory stays at about one chunk per transfer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

import anyio
import attrs

from imuzekit import errors
from imuzekit._http import Request
from imuzekit._media import Downloadable, DownloadSpec, MediaKind, looks_like
from imuzekit._transport import Transport

__all__ = ["DownloadResult", "Downloader", "ProgressCallback", "safe_filename"]

ProgressCallback = Callable[[int, int | None], None]
"""Called as ``on_progress(bytes_done, bytes_total_or_None)`` after each chunk."""

_SUFFIX_KINDS = {
    ".mp3": MediaKind.MP3,
    ".pdf": MediaKind.PDF,
    ".png": MediaKind.PNG,
    ".mid": MediaKind.MIDI,
    ".midi": MediaKind.MIDI,
    ".mxl": MediaKind.ZIP,
    ".mscz": MediaKind.ZIP,
}
_HEAD_BYTES = 4096  # enough for a format signature, or an ID3 header and the frame after it
_MAX_NAME_BYTES = (
    150  # well under the 255-byte limit of common filesystems, leaving room for suffixes
)
# Control characters (C0, DEL, C1), lone surrogates (os.fsdecode's escapes of undecodable
# bytes, which UTF-8 cannot encode) and the characters Windows refuses become `_`.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f\ud800-\udfff<>:"/\\|?*]+')
# Windows' device names, case-insensitive, with or without an extension (`con.mp3`), and with
# spaces before the extension (Windows trims them): the superscript ports and the console
# buffers are reserved too.
_RESERVED = re.compile(
    r"(?i)^(con|prn|aux|nul|com[0-9\u00b9\u00b2\u00b3]|lpt[0-9\u00b9\u00b2\u00b3]|conin\$|conout\$)"
    r" *(\..*)?$"
)


@attrs.frozen
class DownloadResult:
    """The outcome of one download of ``Client.download_many``.

    On success ``path`` and ``size`` describe the file and ``error`` is None; on failure
    ``error`` holds the exception, ``path`` is None and nothing was left on disk. ``sha256`` is
    the file's hex digest when the download was asked for one (``checksum=True``) or checked
    one the source declared; otherwise None (hashing costs about as much CPU as the transfer
    itself, so it is not done unasked).
    """

    source: Any
    path: Path | None
    size: int = 0
    sha256: str | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """Whether the download succeeded."""
        return self.error is None


def safe_filename(name: str, suffix: str = "") -> str:
    """A file name made from ``name`` that is safe on every common filesystem.

    No path separators, ``..``, control or reserved characters, no Windows device names, NFC
    normalised (so look-alike Unicode spellings map to one name), bounded length. Invisible
    format characters (Unicode category `Cf`: bidi overrides such as U+202E, zero-width joiners,
    the byte-order mark, the soft hyphen) are removed, so the name on disk reads as it displays.
    """
    # Format characters go first: one between a letter and its accent would keep them apart.
    text = unicodedata.normalize("NFC", _strip_format_characters(name))
    text = _UNSAFE.sub("_", text)
    text = " ".join(text.split())
    text = text.strip(" .")
    encoded = text.encode("utf-8")[:_MAX_NAME_BYTES]
    text = encoded.decode("utf-8", errors="ignore").strip(" .")
    if not text:
        text = "download"
    if _RESERVED.match(text):
        text = f"_{text}"
    clean_suffix = _UNSAFE.sub("", _strip_format_characters(suffix))[:16]
    return f"{text}{clean_suffix}"


def _strip_format_characters(text: str) -> str:
    # A bidi override makes `evil\u202egnp.exe` display as `evilexe.png`; zero-width characters
    # make two different names look identical. Removing (not replacing) keeps the visible text.
    if text.isascii():
        return text
    return "".join(char for char in text if unicodedata.category(char) != "Cf")


def _spec_for(source: Any) -> DownloadSpec:
    if isinstance(source, DownloadSpec):
        return source
    if isinstance(source, Downloadable):
        return source.download_spec()
    if isinstance(source, str):
        parts = urlsplit(source)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise errors.ValidationError("source", f"not an http(s) URL: {source[:100]!r}")
        leaf = PurePosixPath(unquote(parts.path)).name or "download"
        stem, dot, ext = leaf.rpartition(".")
        suffix = f".{ext.lower()}" if dot and stem else ""
        return DownloadSpec(
            url=source,
            name=stem if dot and stem else leaf,
            suffix=suffix,
            kind=_SUFFIX_KINDS.get(suffix, MediaKind.OTHER),
        )
    raise errors.ValidationError(
        "source", f"cannot download a {type(source).__name__}: pass a model with audio or a URL"
    )


class _Attempt:
    """The state of one file's transfer across resumptions."""

    def __init__(self, part: Path, *, hashed: bool) -> None:
        self.part = part
        self.hasher = hashlib.sha256() if hashed else None
        self.size = 0
        self.total: int | None = None

    def restart(self) -> None:
        if self.hasher is not None:
            self.hasher = hashlib.sha256()
        self.size = 0

    def digest(self) -> str | None:
        return None if self.hasher is None else self.hasher.hexdigest()


class _DirectorySync:
    """Makes renames into one directory durable with as few directory fsyncs as possible.

    Each caller of :meth:`sync` returns once an fsync of the directory that *started after the
    call* has finished, so its rename is durable; callers that arrive while one fsync runs share
    the next one (a group commit). Sixteen transfers finishing together cost two fsyncs, not
    sixteen: each is a journal commit on ext4, and they were the largest cost of a download
    after the data itself.
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._started: dict[Path, int] = {}

    async def sync(self, directory: Path) -> None:
        ticket = self._started.get(directory, 0)
        async with self._lock:
            before = self._started.get(directory, 0)
            if before > ticket:
                return  # an fsync began after our rename and has finished (it ran under the lock)
            self._started[directory] = before + 1
            try:
                await anyio.to_thread.run_sync(_fsync_directory, directory)
            except BaseException:
                # Cancelled before the thread ran: the callers counting on this fsync must
                # run their own (no other fsync started meanwhile: we hold the lock).
                self._started[directory] = before
                raise


class Downloader:
    """Streams files to disk for one Client (over the Client's connection pool; ``download_many``
    bounds how many transfers run at once, apart from any API calls in flight)."""

    def __init__(
        self,
        transport: Transport,
        *,
        chunk_size: int = 256 * 1024,
        max_attempts: int = 4,
    ) -> None:
        self._transport = transport
        self.chunk_size = chunk_size
        self.max_attempts = max_attempts
        self._active: set[Path] = set()
        self._directories = _DirectorySync()

    def target_for(self, spec: DownloadSpec, dest: str | os.PathLike[str]) -> Path:
        """Where ``spec`` lands: inside ``dest`` when it is a directory, else ``dest`` itself."""
        path = Path(dest)
        if path.is_dir() or str(dest).endswith(("/", os.sep)):
            return path / safe_filename(spec.name, spec.suffix)
        return path

    async def download(
        self,
        source: Any,
        dest: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> Path:
        """Download ``source`` (a model with a file, a DownloadSpec or a URL) to ``dest``."""
        try:
            result = await self._download(
                _spec_for(source), dest, overwrite=overwrite, on_progress=on_progress, source=source
            )
        except OSError as exc:
            raise errors.DownloadError(f"cannot write {os.fspath(dest)!r}: {exc}") from exc
        assert result.path is not None
        return result.path

    async def download_many(
        self,
        sources: Iterable[Any],
        dest_dir: str | os.PathLike[str],
        *,
        concurrency: int = 8,
        overwrite: bool = False,
        on_progress: ProgressCallback | None = None,
        checksum: bool = False,
    ) -> AsyncIterator[DownloadResult]:
        """Download every source into ``dest_dir``, yielding each result as it finishes.

        At most ``concurrency`` transfers run at once (a limit separate from API calls). A
        failure is a result with ``.error``; it never stops the others. Two sources whose names
        collide get distinct files (``name-2.mp3``). ``checksum=True`` fills each result's
        ``sha256``.
        """
        if concurrency < 1:
            raise errors.ValidationError("concurrency", f"must be >= 1, got {concurrency}")
        directory = Path(dest_dir)
        await anyio.to_thread.run_sync(lambda: directory.mkdir(parents=True, exist_ok=True))
        limiter = anyio.CapacityLimiter(concurrency)
        committing = anyio.CapacityLimiter(concurrency)
        taken: set[str] = set()

        async def one(source: Any) -> DownloadResult:
            try:
                spec = _spec_for(source)
                target = _unique(directory, safe_filename(spec.name, spec.suffix), taken)
                return await self._download(
                    spec,
                    target,
                    overwrite=overwrite,
                    on_progress=on_progress,
                    source=source,
                    checksum=checksum,
                    slot=limiter,
                    commit_slot=committing,
                )
            except errors.ImuzekitError as exc:
                return DownloadResult(source=source, path=None, error=exc)
            except Exception as exc:  # a full disk, a progress callback that raised, ...
                wrapped = errors.DownloadError(f"download failed: {exc}")
                wrapped.__cause__ = exc
                return DownloadResult(source=source, path=None, error=wrapped)

        # Plain tasks, not a task group: the caller may stop iterating at any time, and
        # yielding from inside a task group would leave its cancel scope in a foreign task.
        tasks = [asyncio.ensure_future(one(source)) for source in sources]
        try:
            for next_done in asyncio.as_completed(tasks):
                yield await next_done
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _download(
        self,
        spec: DownloadSpec,
        dest: str | os.PathLike[str],
        *,
        overwrite: bool,
        on_progress: ProgressCallback | None,
        source: Any,
        checksum: bool = False,
        slot: anyio.CapacityLimiter | None = None,
        commit_slot: anyio.CapacityLimiter | None = None,
    ) -> DownloadResult:
        """Download one file; ``slot`` (download_many's limit) is held for the transfer only
        and ``commit_slot`` while the file is fsynced and renamed: the disk's wait must not idle
        the network, and neither may run unbounded."""
        target = self.target_for(spec, dest)
        if target.exists() and not overwrite:
            # Files only ever appear at their target by an atomic rename of a verified .part,
            # so an existing file is a complete earlier download.
            if checksum:
                size, digest = await anyio.to_thread.run_sync(_hash_file, target)
                return DownloadResult(source=source, path=target, size=size, sha256=digest)
            size = (await anyio.to_thread.run_sync(target.stat)).st_size
            return DownloadResult(source=source, path=target, size=size)
        if not target.parent.is_dir():
            await anyio.to_thread.run_sync(lambda: target.parent.mkdir(parents=True, exist_ok=True))
        # `<file>.part`, so a crashed run's leftover is simply overwritten next time; a second
        # transfer to the same target in this process gets a name of its own instead of
        # sharing (and corrupting) the first one's file.
        part = target.with_name(f"{target.name}.part")
        if part in self._active:
            part = target.with_name(f"{target.name}.{secrets.token_hex(4)}.part")
        self._active.add(part)
        attempt = _Attempt(part, hashed=checksum or bool(spec.sha256))
        handle: BinaryIO | None = None
        holds_commit_slot = False
        try:
            # The file is opened inside the slot: ten thousand sources waiting for one of
            # `concurrency` slots must not hold ten thousand open files.
            async with slot if slot is not None else contextlib.nullcontext():
                handle = open(part, "wb")  # noqa: ASYNC230, SIM115 - closed by _commit or below
                await self._transfer(spec, attempt, on_progress, handle)
                # Taken before the transfer slot is given back: at most `concurrency` files
                # commit at once, and a slow disk holds the next transfers back instead of
                # letting open files pile up.
                if commit_slot is not None:
                    await commit_slot.acquire()
                    holds_commit_slot = True
            # One thread hand-off for the whole commit: each costs ~100 µs of the loop.
            await anyio.to_thread.run_sync(_commit, handle, part, target)
            if commit_slot is not None and holds_commit_slot:
                holds_commit_slot = False
                commit_slot.release()
            # The rename is durable once the directory is: shared with the others finishing now.
            await self._directories.sync(target.parent)
        except BaseException:
            if handle is not None:
                handle.close()
            await anyio.to_thread.run_sync(_remove, part)
            raise
        finally:
            if commit_slot is not None and holds_commit_slot:
                commit_slot.release()
            self._active.discard(part)
        return DownloadResult(
            source=source, path=target, size=attempt.size, sha256=attempt.digest()
        )

    async def _transfer(
        self,
        spec: DownloadSpec,
        attempt: _Attempt,
        on_progress: ProgressCallback | None,
        handle: BinaryIO,
    ) -> None:
        """Fill ``handle`` with the body, resuming or restarting after broken transfers, and
        check the total (the caller commits the file)."""
        failures = 0
        resumable = False
        validator: str | None = None  # ETag of the first answer: a resume must get that file
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
                if validator:
                    request = request.with_header("If-Range", validator)
            else:
                attempt.restart()
                handle.seek(0)
                handle.truncate()
            try:
                async with self._transport.stream(request, ok_statuses=(416,)) as response:
                    content_range = response.headers.get("Content-Range")
                    if response.status == 416:
                        real = _range_total(content_range, unsatisfied=True)
                        if offset and real == offset and attempt.total in (None, real):
                            attempt.total = offset  # we already hold every byte
                        else:
                            raise errors.IntegrityError(
                                f"{_label(spec)}: the server declared {attempt.total} bytes "
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
                            f"{_label(spec)}: the server sent bytes from another offset"
                        )
                    else:
                        if response.status != 206 and offset:
                            # The server ignored our Range: start over from the first byte.
                            attempt.restart()
                            handle.seek(0)
                            handle.truncate()
                        if response.headers.get("Accept-Ranges", "").lower() == "bytes":
                            resumable = True
                        validator = validator or response.headers.get("ETag")
                        if response.status == 206:
                            attempt.total = _range_total(content_range)
                        else:
                            attempt.total = response.content_length
                            skip = 0
                        # A range that starts before our offset (servers that align ranges
                        # to blocks) repeats bytes we hold: drop them. If-Range with the
                        # ETag makes sure they are the same file's bytes.
                        await self._receive(spec, attempt, response, handle, on_progress, skip)
                self._verify(spec, attempt)
                return
            except errors.TransportError as exc:
                failures += 1
                if failures >= self.max_attempts:
                    if attempt.total is not None and attempt.size < attempt.total:
                        raise errors.IntegrityError(
                            f"{_label(spec)}: received {attempt.size} of {attempt.total} "
                            f"bytes after {failures} attempts ({exc})"
                        ) from exc
                    raise errors.DownloadError(
                        f"{_label(spec)}: transfer failed after {failures} attempts: {exc}"
                    ) from exc

    async def _receive(
        self,
        spec: DownloadSpec,
        attempt: _Attempt,
        response: Any,
        handle: BinaryIO,
        on_progress: ProgressCallback | None,
        skip: int = 0,
    ) -> None:
        """Write the body (after dropping ``skip`` bytes we hold already), checking the format
        once the first bytes of the file are in."""
        head = bytearray() if attempt.size == 0 else None
        hasher = attempt.hasher
        async for chunk in response.chunks(self.chunk_size):
            if skip:
                dropped = min(skip, len(chunk))
                chunk, skip = chunk[dropped:], skip - dropped
                if not chunk:
                    continue
            if head is not None:
                head += chunk[: _HEAD_BYTES - len(head)]
                if len(head) >= _HEAD_BYTES:
                    _check_head(spec, bytes(head))
                    head = None
            # On the loop: a write into the page cache costs less than a thread hand-off
            # (measured: batching writes into a worker thread made transfers slower).
            handle.write(chunk)
            if hasher is not None:
                hasher.update(chunk)
            attempt.size += len(chunk)
            if on_progress is not None:
                on_progress(attempt.size, attempt.total)
        if head is not None:
            _check_head(spec, bytes(head))  # a file shorter than the head

    @staticmethod
    def _verify(spec: DownloadSpec, attempt: _Attempt) -> None:
        if attempt.total is not None and attempt.size != attempt.total:
            raise errors.IntegrityError(
                f"{_label(spec)}: received {attempt.size} bytes, expected {attempt.total}"
            )
        if spec.size is not None and attempt.size != spec.size:
            raise errors.IntegrityError(
                f"{_label(spec)}: received {attempt.size} bytes, expected {spec.size}"
            )
        if spec.sha256 and attempt.digest() != spec.sha256.lower():
            raise errors.IntegrityError(f"{_label(spec)}: SHA-256 mismatch")


def _label(spec: DownloadSpec) -> str:
    return spec.name[:60]


def _check_head(spec: DownloadSpec, chunk: bytes) -> None:
    if not chunk:
        raise errors.IntegrityError(f"{_label(spec)}: the server sent an empty file")
    if not looks_like(spec.kind, chunk[:_HEAD_BYTES]):
        raise errors.IntegrityError(
            f"{_label(spec)}: the body is not a {spec.kind.value} file (starts with {chunk[:8]!r})"
        )


def _range_start(content_range: str | None) -> int:
    match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", content_range or "")
    return int(match.group(1)) if match else -1


def _range_total(content_range: str | None, *, unsatisfied: bool = False) -> int | None:
    pattern = r"bytes \*/(\d+)" if unsatisfied else r"bytes \d+-\d+/(\d+)"
    match = re.match(pattern, content_range or "")
    return int(match.group(1)) if match else None


def _unique(directory: Path, name: str, taken: set[str]) -> Path:
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    candidate = name
    counter = 2
    while candidate in taken:
        candidate = f"{stem}-{counter}.{ext}" if ext else f"{stem}-{counter}"
        counter += 1
    taken.add(candidate)
    return directory / candidate


def _hash_file(path: Path) -> tuple[int, str]:
    """``(size, SHA-256 hex digest)`` of a file on disk (blocking: run it in a thread)."""
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
        return handle.tell(), digest.hexdigest()


def _commit(handle: Any, part: Path, target: Path) -> None:
    """Make the verified ``part`` durable and move it into place: fsync, close, rename."""
    handle.flush()
    os.fsync(handle.fileno())
    # Closed before the rename: Windows cannot rename a file that is open.
    handle.close()
    os.replace(part, target)


def _fsync_directory(directory: Path) -> None:
    """Make the renames into ``directory`` durable (where the platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
