"""The file system side of downloads: temporary files, publication, and the source record.

Blocking functions only (the downloader runs them in worker threads, each with a deadline).

- Every transfer writes its own temporary file, ``<target name>.<12 hex digits>.part``,
  created with ``O_CREAT | O_EXCL | O_NOFOLLOW``: two writers (two Clients, two processes)
  never share one, and a planted symlink is refused instead of followed.
- A verified file is published by one atomic step: a hard link to the target name that fails
  when the name is taken (then the next free name ``<stem>-2<suffix>``, ...), or a rename when
  ``overwrite`` was asked for (or the file system has no hard links).
- Each published file carries a record of its source in an extended attribute
  (``user.imuzekit.source``): a SHA-256 of the source URL (never the URL: signed URLs hold
  secrets), the size and the server's ``ETag``. An existing file is kept as "already
  downloaded" only when that record names the same source and size, and the source's own
  declared size and digest (when it declares them) match; anything else is never returned for
  this source. Where extended attributes are not supported, only a declared digest can prove a
  file, so files are downloaded again under a free name.
- A writer holds an exclusive ``flock`` on its temporary file while it lives (the kernel
  drops it when the process dies), so the first download into a folder removes the temporary
  files of dead writers at once (a batch resumed after SIGKILL finds none), and never a live
  one's. Where ``flock`` does not exist (Windows), temporary files are removed by age: once
  older than :data:`STALE_PART_SECONDS`, long after a live transfer would have written again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import stat
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

from imuzekit import errors

_flock: Any
try:
    import fcntl as _flock
except ImportError:  # Windows: temporary files are then swept by age only
    _flock = None

__all__ = [
    "STALE_PART_SECONDS",
    "Commit",
    "hash_file",
    "kept",
    "open_part",
    "prepare_directory",
    "record_for",
]

STALE_PART_SECONDS = 24 * 3600
"""Age (since last write) after which a temporary ``.part`` file is taken for a dead writer's."""

_RECORD_ATTR = "user.imuzekit.source"
_PART = re.compile(r"\.[0-9a-f]{12}\.part$")
_MAX_SIBLINGS = 10_000
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def record_for(url: str, size: int, etag: str | None) -> bytes:
    """The source record stored with a published file (no secret: the URL is hashed)."""
    source = hashlib.sha256(url.encode()).hexdigest()
    return json.dumps({"source": source, "size": size, "etag": etag}).encode()


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        raw = os.getxattr(path, _RECORD_ATTR, follow_symlinks=False)
        record = json.loads(raw)
    except (AttributeError, OSError, ValueError):  # no xattrs here, none set, or garbled
        return None
    return record if isinstance(record, dict) else None


def _write_record(fd: int, record: bytes) -> None:
    # No extended attributes here: the file is simply never adopted later.
    with contextlib.suppress(AttributeError, OSError):
        os.setxattr(fd, _RECORD_ATTR, record)


def hash_file(path: Path) -> tuple[int, str]:
    """``(size, SHA-256 hex digest)`` of a file on disk."""
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
        return handle.tell(), digest.hexdigest()


def kept(
    path: Path, url: str, *, size: int | None, sha256: str | None, checksum: bool
) -> tuple[int, str | None] | None:
    """``(size, digest or None)`` when the file at ``path`` is provably ``url``'s download.

    Provably: a regular file (not a symlink) whose source record names ``url`` and its current
    size, or whose SHA-256 equals the ``sha256`` the source declares; and the declared ``size``
    and ``sha256``, when given, match. None otherwise (also when there is no file).
    """
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or (size is not None and info.st_size != size):
        return None
    record = _read_record(path)
    if record is None and not sha256:
        return None
    if record is not None:
        source = hashlib.sha256(url.encode()).hexdigest()
        if record.get("source") != source or record.get("size") != info.st_size:
            return None
    digest = None
    if sha256 or checksum:
        found, digest = hash_file(path)
        if found != info.st_size or (sha256 and digest != sha256.lower()):
            return None
    return info.st_size, digest


def prepare_directory(directory: Path, sweep: bool) -> None:
    """Create ``directory``; with ``sweep``, remove temporary files dead writers left in it."""
    directory.mkdir(parents=True, exist_ok=True)
    if not sweep:
        return
    horizon = time.time() - STALE_PART_SECONDS
    with os.scandir(directory) as entries:
        for entry in entries:
            if not _PART.search(entry.name):
                continue
            try:
                if entry.is_symlink() or entry.stat(follow_symlinks=False).st_mtime < horizon:
                    os.unlink(entry.path)  # a symlink is removed itself, never its target
                else:
                    _remove_if_dead(entry.path)
            except OSError:
                continue  # another sweeper, or a name we may not remove: not ours to insist


def _remove_if_dead(path: str) -> None:
    """Remove a temporary file whose writer no longer holds its lock (it died)."""
    if _flock is None:
        return
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    try:
        try:
            _flock.flock(fd, _flock.LOCK_EX | _flock.LOCK_NB)
        except BlockingIOError:
            return  # a live writer's
        # Removed while we hold the lock: a writer that created this name an instant ago
        # finds its file unlinked once it gets the lock, and takes another name.
        os.unlink(path)
    finally:
        os.close(fd)


def _claim(fd: int) -> bool:
    """Lock a just-created temporary file for its writer's life; False if a sweeper took it."""
    if _flock is None:
        return True
    try:
        _flock.flock(fd, _flock.LOCK_EX | _flock.LOCK_NB)
    except BlockingIOError:
        return False
    return os.fstat(fd).st_nlink > 0


def open_part(target: Path) -> tuple[Path, BinaryIO]:
    """Create this transfer's own temporary file beside ``target`` (never an existing one)."""

    def exclusive(path: str, flags: int) -> int:
        # `open` supplies O_CREAT (mode "wb"); O_EXCL refuses any existing name, planted
        # symlinks included, and O_NOFOLLOW says so twice.
        return os.open(path, flags | os.O_EXCL | _NOFOLLOW, 0o666)

    for _ in range(3):
        part = target.with_name(f"{target.name}.{secrets.token_hex(6)}.part")
        try:
            handle = open(part, "wb", opener=exclusive)  # noqa: SIM115 - closed by Commit
        except FileExistsError:
            continue  # 48 random bits collided (or were planted): draw again
        if _claim(handle.fileno()):
            return part, handle
        handle.close()  # a sweeper took it between its creation and our lock (and removes it)
    raise errors.DownloadError(f"cannot create a temporary file beside {target.name!r}")


def _fsync_file(fd: int) -> None:
    os.fsync(fd)


def _sibling(target: Path, number: int) -> Path:
    return target.with_name(f"{target.stem}-{number}{target.suffix}")


class Commit:
    """One verified temporary file handed to a worker thread to be made durable and published.

    The loop may give up waiting (a disk that stopped answering, a closed Client): then
    :meth:`abandon` makes sure the file is closed and the worker, if it is still running,
    publishes nothing and removes the temporary file.
    """

    def __init__(
        self,
        handle: BinaryIO,
        part: Path,
        target: Path,
        *,
        url: str,
        record: bytes,
        overwrite: bool,
    ) -> None:
        self.handle = handle
        self.part = part
        self.target = target
        self.url = url
        self.record = record
        self.overwrite = overwrite
        self._lock = threading.Lock()  # held only to flip the two flags below
        self._started = False
        self._abandoned = False

    def abandon(self) -> None:
        """The loop gave up: close the file unless the worker owns it already."""
        with self._lock:
            self._abandoned = True
            if not self._started:
                self.handle.close()

    def _still_wanted(self) -> bool:
        with self._lock:
            if self._abandoned:
                self.handle.close()
                self.part.unlink(missing_ok=True)
                return False
            self._started = True
            return True

    def run(self) -> Path:
        """Flush, record the source, fsync, close, publish (blocking). Returns the final path."""
        if not self._still_wanted():
            raise errors.DownloadError("the download was given up")
        try:
            self.handle.flush()
            _write_record(self.handle.fileno(), self.record)
            _fsync_file(self.handle.fileno())
            if _flock is None:
                self.handle.close()  # Windows cannot rename a file that is open
            with self._lock:
                abandoned = self._abandoned
            if abandoned:
                self.part.unlink(missing_ok=True)
                raise errors.DownloadError("the download was given up")
            # Published while still open, so still locked: a sweeper never takes it for a
            # dead writer's between the fsync and the link.
            return self._publish()
        finally:
            self.handle.close()

    def _publish(self) -> Path:
        if self.overwrite:
            os.replace(self.part, self.target)
            return self.target
        for number in range(1, _MAX_SIBLINGS):
            candidate = self.target if number == 1 else _sibling(self.target, number)
            try:
                os.link(self.part, candidate)
            except FileExistsError:
                if kept(candidate, self.url, size=None, sha256=None, checksum=False) is not None:
                    # Another writer published this very source first: theirs is as good.
                    self.part.unlink(missing_ok=True)
                    return candidate
                continue  # another source's file, or one nobody can vouch for: never clobbered
            except OSError:
                # No hard links on this file system: a rename, if the name is still free.
                if os.path.lexists(candidate):
                    continue
                os.replace(self.part, candidate)
                return candidate
            self.part.unlink()
            return candidate
        raise errors.DownloadError(f"no free name beside {self.target.name!r}")
