"""Downloads that never leave a half-written file where a complete one is expected.

Each file streams in chunks to a temporary file of its own beside its target,
``<name>.<random>.part`` (its SHA-256 computed on the way when asked for with
``checksum=True``, or when the source names the digest to expect); a transfer that breaks
resumes with ``Range`` when the server accepts byte ranges and still serves the same file
(same ``ETag``, same total; otherwise it restarts from byte 0); the total is checked against
``Content-Length``; the first bytes are checked against the expected format (an MP3 frame sync
after any ID3 tag, ``%PDF``, ...); then the file is fsynced and published in one atomic step
that never replaces another file unless ``overwrite`` (see `imuzekit._disk`). On any
failure the temporary file is removed and nothing is left at the destination. Memory stays at
about one chunk per transfer. A body with a ``Content-Encoding`` (the downloader asks for
``identity``) is refused before a byte is written. Every wait on the disk has a deadline,
``Downloader.disk_timeout``; ``close()`` ends the transfers in flight with
`ClientClosedError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Generic, TypeVar
from urllib.parse import unquote, urlsplit

import attrs

from imuzekit import _disk, _fetch, errors
from imuzekit._handoff import DirectorySync, Handoff
from imuzekit._media import DownloadSpec, MediaKind
from imuzekit._transport import Transport

__all__ = ["DownloadResult", "Downloader", "ProgressCallback", "safe_filename"]

SourceT = TypeVar("SourceT")

ProgressCallback = Callable[[int, int | None], None]
"""Called as ``on_progress(bytes_done, bytes_total_or_None)`` after each chunk."""

_DISK_THREADS = 32  # blocking file system calls of one Downloader at once, and stuck ones

_SUFFIX_KINDS = {
    ".mp3": MediaKind.MP3,
    ".pdf": MediaKind.PDF,
    ".png": MediaKind.PNG,
    ".mid": MediaKind.MIDI,
    ".midi": MediaKind.MIDI,
    ".mxl": MediaKind.ZIP,
    ".mscz": MediaKind.ZIP,
}
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
class DownloadResult(Generic[SourceT]):
    """The outcome of one download of ``Client.download_many``.

    On success ``path`` and ``size`` describe the file and ``error`` is None; on failure
    ``error`` holds the exception, ``path`` is None and nothing was left on disk. ``sha256`` is
    the file's hex digest when the download was asked for one (``checksum=True``) or checked
    one the source declared; otherwise None (hashing costs about as much CPU as the transfer
    itself, so it is not done unasked).

    It is generic in its source: `download_many` over `Song`s yields `DownloadResult[Song]`,
    whose `source` is typed `Song`.
    """

    source: SourceT
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
    name = f"{text}{clean_suffix}"
    if _disk.is_temporary_name(name):  # the form of a temporary file, which sweeps remove
        name = f"{name.removesuffix('.part')}_part"
    return name


def _strip_format_characters(text: str) -> str:
    # A bidi override makes `evil\u202egnp.exe` display as `evilexe.png`; zero-width characters
    # make two different names look identical. Removing (not replacing) keeps the visible text.
    if text.isascii():
        return text
    return "".join(char for char in text if unicodedata.category(char) != "Cf")


def _spec_for(source: Any) -> DownloadSpec:
    if isinstance(source, DownloadSpec):
        return source
    # What isinstance(source, Downloadable) checks, without the runtime protocol check's cost
    # (tens of µs a call on the loop, once per file).
    describe = getattr(source, "download_spec", None)
    if callable(describe):
        spec: DownloadSpec = describe()
        return spec
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


class Downloader:
    """Streams files to disk for one Client (over the Client's connection pool; ``download_many``
    bounds how many transfers run at once, apart from any API calls in flight).

    ``disk_timeout`` (seconds) bounds every wait on the disk: each thread hand-off (creating
    the folder, a file's commit: fsync, publication and the directory fsync in one hand-off,
    hashing a kept file) and the wait for a commit slot. A disk that does not answer in time
    ends the download with `DownloadError`; once 32 calls are stuck on it, every download
    fails at once (no more threads). Into a folder held in memory (tmpfs, ramfs) files are
    published on the event loop: nothing there can hang, and a hand-off would cost more than
    the work. The network
    side is bounded by the transport's ``Timeouts`` per attempt and ``max_attempts``; so the
    wait for a transfer slot of ``download_many`` is bounded too, by the transfers ahead of it.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        chunk_size: int = 256 * 1024,
        max_attempts: int = 4,
        disk_timeout: float = 60.0,
    ) -> None:
        self._transport = transport
        self.chunk_size = chunk_size
        self.max_attempts = max_attempts
        self.disk_timeout = disk_timeout
        # Threads of its own: calls abandoned on a hung disk keep their thread until the disk
        # answers, and must neither use up the default pool the rest of the program shares
        # nor pile up: see _Handoff.
        self._handoff = Handoff(_DISK_THREADS)
        self._directories = DirectorySync()
        # Folders already rid of dead writers' temporary files, and whether each is held in
        # memory (tmpfs): there files are published on the loop, without a thread hand-off.
        self._prepared: dict[Path, bool] = {}
        # Downloads in flight (their tasks), and those that close() cancelled.
        self._tasks: dict[asyncio.Task[Any], None] = {}
        self._closing: set[asyncio.Task[Any]] = set()
        self._closed = False

    async def close(self) -> None:
        """End every download in flight with `ClientClosedError`.

        Waits (at most ``disk_timeout``) for them to remove their temporary files; the disk
        threads end once they are done. Later downloads raise ``ClientClosedError`` at once.
        """
        self._closed = True
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current and not task.done()]
        for task in tasks:
            self._closing.add(task)
            task.cancel()
        try:
            if tasks:
                await asyncio.wait(tasks, timeout=self.disk_timeout)
        finally:
            self._close_threads_after(tasks)

    def _close_threads_after(self, tasks: list[asyncio.Task[Any]]) -> None:
        """End the disk threads once ``tasks`` are done: downloads that outlived close()'s
        wait (a slow disk) still get their temporary files removed."""
        pending = {task for task in tasks if not task.done()}
        if not pending:
            self._handoff.close()
            return

        def finished(task: asyncio.Task[Any]) -> None:
            pending.discard(task)
            if not pending:
                self._handoff.close()

        for task in pending:
            task.add_done_callback(finished)

    def target_for(self, spec: DownloadSpec, dest: str | os.PathLike[str]) -> Path:
        """Where ``spec`` lands: inside ``dest`` when it is a directory, else ``dest`` itself.

        ``dest`` is a directory when it is one, when it ends with a path separator, or when it
        does not exist and has no suffix (``"songs"`` is a folder to create, ``"a.mp3"`` a file).
        """
        path = Path(dest)
        if (
            path.is_dir()
            or str(dest).endswith(("/", os.sep))
            or (not path.suffix and not os.path.lexists(path))
        ):
            return path / safe_filename(spec.name, spec.suffix)
        return path

    async def _disk(
        self, what: str | Callable[[], str], func: Callable[..., Any], *args: Any
    ) -> Any:
        """Run a blocking file system call in a thread, giving up after ``disk_timeout``.

        ``what`` names the call in the error (a function: asked when the deadline passes).
        """
        try:
            async with asyncio.timeout(self.disk_timeout):
                return await self._handoff.run(func, *args)
        except TimeoutError as exc:
            doing = what() if callable(what) else what
            raise errors.DownloadError(
                f"the disk did not answer within {self.disk_timeout:g} s ({doing})"
            ) from exc

    async def download(
        self,
        source: Any,
        dest: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> Path:
        """Download ``source`` (a model with a file, a DownloadSpec or a URL) to ``dest``.

        See `target_for()` for what ``dest`` means. An existing file there is returned as
        already downloaded only when it is provably this source's (its recorded source and
        size, and any size or digest the source declares); so is this source's copy under a
        next free name from an earlier run (``name-2.mp3``). Otherwise the new file takes the
        next free name, which is the path returned.

        Raises:
            errors.ValidationError: `source` is not a model with a file or an http(s) URL.
            errors.IntegrityError: the size, digest or format did not match the source's.
            errors.DownloadError: the transfer broke off for good, the file could not be
                written, or the disk did not answer within `disk_timeout`.
            errors.APIError: the file's server answered an error status (`NotFoundError`, ...).
            errors.TransportError: the connection failed or timed out (after the resumes).
            errors.ClientClosedError: the Downloader is closed, or was closed during it.
        """
        try:
            spec = _spec_for(source)
            target = self.target_for(spec, dest)
            if _disk.is_temporary_name(target.name):
                raise errors.ValidationError(
                    "dest",
                    f"{target.name[:80]!r} has the form of imuzekit's temporary files "
                    "(<name>.imuzekit-<12 hex digits>.part), which later downloads remove",
                )
            result = await self._download(
                spec,
                target,
                overwrite=overwrite,
                on_progress=on_progress,
                source=source,
            )
        except OSError as exc:
            raise errors.DownloadError(f"cannot write {os.fspath(dest)!r}: {exc}") from exc
        assert result.path is not None
        return result.path

    async def download_many(
        self,
        sources: Iterable[SourceT],
        dest_dir: str | os.PathLike[str],
        *,
        concurrency: int = 8,
        overwrite: bool = False,
        on_progress: ProgressCallback | None = None,
        checksum: bool = False,
    ) -> AsyncIterator[DownloadResult[SourceT]]:
        """Download every source into ``dest_dir``, yielding each result as it finishes.

        At most ``concurrency`` transfers run at once (a limit separate from API calls). It
        never raises for a download: every failure (a folder that cannot be created included)
        is a result with ``.error``, and never stops the others. Two sources whose names
        collide get distinct files (``name-2.mp3``), as does a source whose name is taken by
        a file that is not provably its own. ``checksum=True`` fills each result's ``sha256``.
        """
        if concurrency < 1:
            raise errors.ValidationError("concurrency", f"must be >= 1, got {concurrency}")
        directory = Path(dest_dir)
        if self._closed:  # nothing is touched: not even the folder
            for source in sources:
                yield DownloadResult(source=source, path=None, error=_closed_error())
            return
        try:
            in_memory = await self._prepare(directory)
        except (OSError, errors.DownloadError) as exc:
            failure = exc if isinstance(exc, errors.DownloadError) else None
            for source in sources:
                error = failure or errors.DownloadError(
                    f"cannot create {os.fspath(directory)!r}: {exc}"
                )
                if failure is None:
                    error.__cause__ = exc
                yield DownloadResult(source=source, path=None, error=error)
            return
        # asyncio's own primitives on this per-file path: anyio's limiters and cancel scopes
        # cost ~300 function calls and several extra loop iterations per file (measured:
        # docs/performance.md), and this downloader runs on asyncio only.
        limiter = asyncio.Semaphore(concurrency)
        committing = asyncio.Semaphore(concurrency)
        taken: set[str] = set()

        async def one(source: SourceT) -> DownloadResult[SourceT]:
            try:
                spec = _spec_for(source)
                name = safe_filename(spec.name, spec.suffix)
                unique = _unique(name, taken)
                return await self._download(
                    spec,
                    directory / unique,
                    natural=None if unique == name else directory / name,
                    overwrite=overwrite,
                    on_progress=on_progress,
                    source=source,
                    checksum=checksum,
                    slot=limiter,
                    commit_slot=committing,
                    in_memory=in_memory,
                )
            except errors.ImuzekitError as exc:
                return DownloadResult(source=source, path=None, error=exc)
            except Exception as exc:  # a full disk, a progress callback that raised, ...
                wrapped = errors.DownloadError(f"download failed: {exc}")
                wrapped.__cause__ = exc
                return DownloadResult(source=source, path=None, error=wrapped)

        # Plain tasks, not a task group: the caller may stop iterating at any time, and
        # yielding from inside a task group would leave its cancel scope in a foreign task.
        tasks: list[asyncio.Task[DownloadResult[SourceT]]] = []
        try:
            # Inside the try: a `sources` iterable that raises part-way must not leave the
            # downloads it already started running unseen.
            for source in sources:
                tasks.append(asyncio.ensure_future(one(source)))
            for next_done in asyncio.as_completed(tasks):
                yield await next_done
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _unpublish(self, path: Path, cause: BaseException) -> None:
        """Remove the file a failing download published; if the disk cannot, the error says so."""
        try:
            await self._disk("removing the published file", _disk.unpublish, path)
        except errors.DownloadError as exc:
            if isinstance(cause, errors.DownloadError):
                raise errors.DownloadError(
                    f"{cause}; the file published at {path.name!r} could not be removed ({exc})"
                ) from cause

    async def _prepare(self, directory: Path) -> bool:
        """Create ``directory``; the first time, remove dead writers' temporary files in it.

        Returns whether the folder is held in memory (`_disk.memory_backed`).
        """
        known = self._prepared.get(directory)
        if known is not None and directory.is_dir():  # noqa: ASYNC240 - a stat, not a hand-off
            return known
        # The first time, or made again after it was removed (and looked at again).
        sweep = known is None
        in_memory = bool(
            await self._disk("creating the folder", _disk.prepare_directory, directory, sweep)
        )
        self._prepared[directory] = in_memory
        return in_memory

    async def _download(
        self,
        spec: DownloadSpec,
        target: Path,
        *,
        overwrite: bool,
        on_progress: ProgressCallback | None,
        source: Any,
        checksum: bool = False,
        slot: asyncio.Semaphore | None = None,
        commit_slot: asyncio.Semaphore | None = None,
        natural: Path | None = None,
        in_memory: bool | None = None,
    ) -> DownloadResult[Any]:
        """Download one file, ended by `close()` with ``ClientClosedError``."""
        if self._closed:
            raise _closed_error()
        task = asyncio.current_task()
        baseline = 0
        if task is not None:
            baseline = task.cancelling()
            self._tasks[task] = None
        try:
            return await self._download_one(
                spec,
                target,
                overwrite,
                on_progress,
                source,
                checksum,
                slot,
                commit_slot,
                natural,
                in_memory,
            )
        except asyncio.CancelledError:
            # close()'s cancellation, unless the task was also cancelled from outside.
            if task is not None and task in self._closing and task.uncancel() <= baseline:
                raise errors.ClientClosedError(
                    "the Client was closed while this download was in flight"
                ) from None
            raise
        finally:
            if task is not None:
                self._tasks.pop(task, None)
                self._closing.discard(task)

    async def _download_one(
        self,
        spec: DownloadSpec,
        target: Path,
        overwrite: bool,
        on_progress: ProgressCallback | None,
        source: Any,
        checksum: bool,
        slot: asyncio.Semaphore | None,
        commit_slot: asyncio.Semaphore | None,
        natural: Path | None = None,
        in_memory: bool | None = None,
    ) -> DownloadResult[Any]:
        """Download to ``target``, the file's own path: `download()` resolves its ``dest``
        with `target_for()` first, `download_many` names files itself (a name without a
        suffix is a file there, never a folder to create).

        ``slot`` (download_many's limit) is held for the transfer only and ``commit_slot``
        while the file is fsynced and published: the disk's wait must not idle the network,
        and neither may run unbounded. ``natural`` is the name the source would have had
        alone (download_many gives colliding sources ``-2`` names in the order it sees them):
        a provable copy under it or its ``-N`` siblings is returned instead of a new download.
        ``in_memory`` is whether the folder, already prepared, is held in memory (None: prepare
        it here).
        """
        self._handoff.check()  # a disk that stopped answering: fail before the transfer
        # Most targets do not exist yet: that is known from one stat on the loop, cheaper
        # than the thread hand-off that checking an existing file needs.
        renamed = natural is not None  # download_many gave it a -N name: look under both
        natural = natural or target
        if not overwrite and (
            os.path.lexists(target) or (renamed and os.path.lexists(natural))  # noqa: ASYNC240
        ):
            found = await self._disk(
                "checking the existing files",
                lambda: _disk.kept_in_family(
                    target,
                    natural,
                    spec.url,
                    size=spec.size,
                    sha256=spec.sha256,
                    checksum=checksum,
                ),
            )
            if found is not None:
                path, size, digest = found
                _fetch.log_file(spec, path, None, size)
                return DownloadResult(source=source, path=path, size=size, sha256=digest)
        if in_memory is None:
            in_memory = await self._prepare(target.parent)
        attempt = _fetch.Attempt(hashed=checksum or bool(spec.sha256))
        handle: BinaryIO | None = None
        part: Path | None = None
        commit: _disk.Commit | None = None
        holds_commit_slot = False
        try:
            # The file is opened inside the slot: ten thousand sources waiting for one of
            # `concurrency` slots must not hold ten thousand open files.
            async with slot if slot is not None else contextlib.nullcontext():
                try:
                    part, handle = _disk.open_part(target)
                except FileNotFoundError:
                    # The folder went away since download_many prepared it: made again.
                    in_memory = await self._prepare(target.parent)
                    part, handle = _disk.open_part(target)
                await _fetch.transfer(
                    self._transport,
                    spec,
                    attempt,
                    on_progress,
                    handle,
                    chunk_size=self.chunk_size,
                    max_attempts=self.max_attempts,
                )
                # Taken before the transfer slot is given back: at most `concurrency` files
                # commit at once, and a slow disk holds the next transfers back instead of
                # letting open files pile up. Its holders are bounded by disk_timeout, and so
                # is this wait.
                if commit_slot is not None:
                    if commit_slot.locked():
                        try:
                            async with asyncio.timeout(self.disk_timeout):
                                await commit_slot.acquire()
                        except TimeoutError as exc:
                            raise errors.DownloadError(
                                f"{_fetch.label(spec)}: no commit slot within "
                                f"{self.disk_timeout:g} s (the disk is not keeping up)"
                            ) from exc
                    else:  # free: taken at once, no deadline to arm
                        await commit_slot.acquire()
                    holds_commit_slot = True
            commit = _disk.Commit(
                handle,
                part,
                target,
                url=spec.url,
                size=attempt.size,
                etag=attempt.etag,
                overwrite=overwrite,
                # On a disk the new name is durable once its directory is (a group commit).
                sync_directory=None if in_memory else self._directories.sync,
            )
            handle = None  # the commit owns it now
            final: Path
            if in_memory:
                # tmpfs: fsync returns at once and nothing can hang; a hand-off would cost
                # more than the work (docs/performance.md: 0.76-0.88 x raw aiohttp with it).
                final = commit.run()
            else:
                # One thread hand-off for the whole commit, the directory's fsync included:
                # each costs the loop more than 50 µs (docs/performance.md).
                working = commit
                final = await self._disk(
                    lambda: f"{_fetch.label(spec)}: {working.stage}", working.run
                )
            commit = None
        except BaseException as exc:
            published = commit.abandon() if commit is not None else None
            if published is not None:
                # Published, then the wait ended (the directory fsync, or the worker's answer
                # lost to the deadline): the caller is told it failed, so it does not stay.
                await self._unpublish(published, exc)
            if handle is not None:
                handle.close()
            if part is not None:
                with contextlib.suppress(errors.DownloadError):  # a hung disk: swept later
                    await self._disk("removing the temporary file", _remove, part)
            raise
        finally:
            if commit_slot is not None and holds_commit_slot:
                commit_slot.release()
        _fetch.log_file(spec, final, attempt, attempt.size)
        return DownloadResult(source=source, path=final, size=attempt.size, sha256=attempt.digest())


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or its first ``-N`` form not in ``taken`` (which it joins)."""
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    candidate = name
    counter = 2
    while candidate in taken:
        candidate = f"{stem}-{counter}.{ext}" if ext else f"{stem}-{counter}"
        counter += 1
    taken.add(candidate)
    return candidate


def _closed_error() -> errors.ClientClosedError:
    return errors.ClientClosedError(
        "this imuzekit Client is closed; create a new Client to download more"
    )


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
