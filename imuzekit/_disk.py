"""The file system side of downloads: temporary files, publication, and the source record.

Blocking functions only (the downloader runs them in worker threads, each with a deadline,
except on a file system held in memory: see `memory_backed`).

- Every transfer writes its own temporary file, ``<target name>.imuzekit-<12 hex
  digits>.part`` (the target name cut short where the whole would pass 255 bytes), created
  with ``O_CREAT | O_EXCL | O_NOFOLLOW``: two writers (two Clients, two processes) never share
  one, and a planted symlink is refused instead of followed. The ``imuzekit-`` mark keeps the
  sweep below away from other programs' files, and no download is ever published under a
  name of that form (`is_temporary_name`).
- A verified file is published by one atomic step: a hard link to the target name that fails
  when the name is taken (then the next free name ``<stem>-2<suffix>``, ...), or a rename when
  ``overwrite`` was asked for. Where the file system has no hard links the name is first
  reserved with an ``O_EXCL`` placeholder, which the rename then replaces: never a check of
  the name followed by a rename that another writer could overtake.
- Each published file carries a record of its source in an extended attribute
  (``user.imuzekit.source``): a SHA-256 of the source URL (never the URL: signed URLs hold
  secrets), the size and the server's ``ETag``. An existing file is kept as "already
  downloaded" only when that record names the same source and size, and the source's own
  declared size and digest (when it declares them) match; anything else is never returned for
  this source. Where extended attributes are not supported (macOS and Windows builds of
  Python have no ``os.setxattr``; FAT, NFSv3), the same record goes to a hidden sidecar file
  beside the published one, ``.<name>.imuzekit-source``, which also names the file's inode
  and modification time so that it never vouches for another file later put under that name.
  A record is read only up to `MAX_RECORD_BYTES` and decoded with the bounded decoder:
  anything else (too long, garbled, nested too deep) is no record.
- A writer holds an exclusive ``flock`` on its temporary file while it lives (the kernel
  drops it when the process dies), so the first download into a folder removes the temporary
  files of dead writers at once (a batch resumed after SIGKILL finds none), and never a live
  one's, however old its file looks (clocks differ between NFS clients). Only where ``flock``
  does not exist (Windows) are temporary files removed by age: once older than
  `STALE_PART_SECONDS`, long after a live transfer would have written again.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from imuzekit import errors
from imuzekit._convert import loads_json

_flock: Any
try:
    import fcntl as _flock
except ImportError:  # Windows: temporary files are then swept by age only
    _flock = None

__all__ = [
    "MAX_RECORD_BYTES",
    "STALE_PART_SECONDS",
    "Commit",
    "hash_file",
    "is_temporary_name",
    "kept",
    "kept_in_family",
    "memory_backed",
    "mount_type",
    "open_part",
    "prepare_directory",
    "record_for",
    "sidecar_for",
    "unpublish",
]

STALE_PART_SECONDS = 24 * 3600
"""Age (since last write) after which a temporary ``.part`` file is taken for a dead writer's."""

MAX_RECORD_BYTES = 1024
"""The longest source record read (ours are about 150 bytes): a longer one is no record."""

# The download layer's logger: DEBUG lines for what happens to files on disk (names only).
_log = logging.getLogger("imuzekit.downloads")

_RECORD_ATTR = "user.imuzekit.source"
_SIDECAR = ".{}.imuzekit-source"
_PART = re.compile(r"\.imuzekit-[0-9a-f]{12}\.part$")
_PART_EXTRA_BYTES = len(".imuzekit-") + 12 + len(".part")
_MAX_NAME_BYTES = 255  # the limit of common file systems on one path component
_MAX_SIBLINGS = 10_000
_FAMILY_SCAN = 32  # next free names searched for a source's copy from an earlier run
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
# What os.link raises where the file system has no hard links (FAT, some network shares,
# overlays across layers); Windows reports ERROR_INVALID_FUNCTION or ERROR_NOT_SUPPORTED.
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.ENOSYS}
_NO_LINKS_WINDOWS = {1, 50}


def is_temporary_name(name: str) -> bool:
    """Whether ``name`` has the form of a transfer's temporary file (which sweeps remove)."""
    return _PART.search(name) is not None


def record_for(url: str, size: int, etag: str | None) -> bytes:
    """The source record stored with a published file (no secret: the URL is hashed)."""
    source = hashlib.sha256(url.encode()).hexdigest()
    return json.dumps({"source": source, "size": size, "etag": etag}).encode()


def sidecar_for(path: Path) -> Path:
    """Where the source record of ``path`` lives when its file system has no extended attributes."""
    return path.with_name(_SIDECAR.format(path.name))


def _decode(raw: bytes) -> dict[str, Any] | None:
    if len(raw) > MAX_RECORD_BYTES:
        return None
    try:
        record = loads_json(raw)
    except ValueError:  # garbled, or nested too deep (the bounded decoder never recurses out)
        return None
    return record if isinstance(record, dict) else None


def _read_record(path: Path, info: os.stat_result) -> dict[str, Any] | None:
    """The source record of the file at ``path`` (``info`` is its ``lstat``), or None."""
    getxattr = getattr(os, "getxattr", None)
    if getxattr is not None:
        try:
            # os.getxattr returns the value whole (up to the kernel's 64 KiB): one longer
            # than a record can be is refused before it reaches the decoder.
            raw = getxattr(path, _RECORD_ATTR, follow_symlinks=False)
        except OSError:  # none set, or no xattrs on this file system: try the sidecar
            raw = None
        if raw is not None:
            return _decode(raw)
    try:
        fd = os.open(sidecar_for(path), os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        raw = os.read(fd, MAX_RECORD_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    record = _decode(raw)
    # A sidecar belongs to a name, not to a file: it vouches only for the file it was written
    # beside (one put under that name later, after ours was deleted, is another inode or,
    # where the inode number was reused at once, was written at another time).
    if record is None or record.get("file") != [info.st_ino, info.st_mtime_ns]:
        return None
    return record


def _write_record(fd: int, record: bytes) -> bool:
    """Record the source in an extended attribute of the open file; False where impossible."""
    setxattr = getattr(os, "setxattr", None)
    if setxattr is None:
        return False
    try:
        setxattr(fd, _RECORD_ATTR, record)
    except OSError:
        return False
    return True


def _write_sidecar(path: Path, record: bytes) -> None:
    """Record the source of the just published ``path`` (a name this writer created) beside it.

    An old sidecar there is a deleted file's: replaced. Created with ``O_EXCL``, never
    written through a planted link; failing to write it only means the file is never adopted.
    """
    sidecar = sidecar_for(path)
    with contextlib.suppress(OSError):
        info = os.lstat(path)
        body = json.loads(record)
        body["file"] = [info.st_ino, info.st_mtime_ns]
        sidecar.unlink(missing_ok=True)
        fd = os.open(sidecar, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
        try:
            os.write(fd, json.dumps(body).encode())
        finally:
            os.close(fd)


def unpublish(path: Path) -> None:
    """Remove a file this download published (it created the name) and its sidecar record."""
    path.unlink(missing_ok=True)
    sidecar_for(path).unlink(missing_ok=True)


def hash_file(path: Path) -> tuple[int, str]:
    """``(size, SHA-256 hex digest)`` of a regular file on disk (a symlink is refused)."""
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
        return handle.tell(), digest.hexdigest()


def kept(
    path: Path,
    url: str,
    *,
    size: int | None,
    sha256: str | None,
    checksum: bool,
    etag: str | None = None,
) -> tuple[int, str | None] | None:
    """``(size, digest or None)`` when the file at ``path`` is provably ``url``'s download.

    Provably: a regular file (not a symlink) whose source record names ``url`` and its current
    size (and ``etag``, when given and recorded), or whose SHA-256 equals the ``sha256`` the
    source declares; and the declared ``size`` and ``sha256``, when given, match. None
    otherwise (also when there is no file).
    """
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or (size is not None and info.st_size != size):
        return None
    record = _read_record(path, info)
    if record is None and not sha256:
        return None
    if record is not None:
        source = hashlib.sha256(url.encode()).hexdigest()
        if record.get("source") != source or record.get("size") != info.st_size:
            return None
        recorded = record.get("etag")
        if etag is not None and recorded is not None and recorded != etag:
            return None  # the same URL, another version of its file
    digest = None
    if sha256 or checksum:
        try:
            found, digest = hash_file(path)
        except OSError:  # replaced by a symlink since the lstat, or unreadable
            return None
        if found != info.st_size or (sha256 and digest != sha256.lower()):
            return None
    return info.st_size, digest


def kept_in_family(
    target: Path,
    natural: Path,
    url: str,
    *,
    size: int | None,
    sha256: str | None,
    checksum: bool,
) -> tuple[Path, int, str | None] | None:
    """The first of ``target``, ``natural`` and ``natural``'s next free names (``<stem>-2``,
    ``<stem>-3``, ... while they exist, at most `_FAMILY_SCAN` of them) that is provably
    ``url``'s download (see `kept`).

    A source whose name was taken the first time was published as ``<stem>-2``: a later run,
    in whatever order, finds that copy instead of downloading it again beside it.
    """
    candidates = [target, natural]
    # Bounded: thousands of sources with one name must not make every file read every
    # sibling's record (a rerun in another order then finds the first 32 only).
    for number in range(2, 2 + _FAMILY_SCAN):
        sibling = _sibling(natural, number)
        if not os.path.lexists(sibling):
            break
        candidates.append(sibling)
    for candidate in dict.fromkeys(candidates):  # target may be natural or a sibling
        found = kept(candidate, url, size=size, sha256=sha256, checksum=checksum)
        if found is not None:
            return candidate, found[0], found[1]
    return None


def prepare_directory(directory: Path, sweep: bool) -> bool:
    """Create ``directory``; with ``sweep``, remove temporary files dead writers left in it.

    Returns whether the folder is held in memory (`memory_backed`).
    """
    directory.mkdir(parents=True, exist_ok=True)
    if sweep:
        _sweep(directory)
    return memory_backed(directory)


def _sweep(directory: Path) -> None:
    horizon = time.time() - STALE_PART_SECONDS
    with os.scandir(directory) as entries:
        for entry in entries:
            if not _PART.search(entry.name):
                continue
            try:
                if entry.is_symlink():
                    os.unlink(entry.path)  # a symlink is removed itself, never its target
                elif _flock is not None:
                    # The lock alone decides: an old-looking file may be a live writer's
                    # (NFS clients' clocks differ; a stalled transfer writes nothing for long).
                    if not _remove_if_dead(entry.path):
                        continue
                elif entry.stat(follow_symlinks=False).st_mtime < horizon:
                    os.unlink(entry.path)
                else:
                    continue
            except OSError:
                continue  # another sweeper, or a name we may not remove: not ours to insist
            _log.debug("swept %s, a dead writer's temporary file", entry.name)


_MEMORY_FILE_SYSTEMS = frozenset({"tmpfs", "ramfs"})


def memory_backed(directory: Path) -> bool:
    """Whether ``directory`` is on a file system held in memory (tmpfs, ramfs).

    There fsync returns at once and no device can stop answering, so the downloader publishes
    files on the event loop instead of handing each one to a thread (the hand-off costs more
    than the work). Told from Linux's ``/proc/self/mountinfo`` and the directory's device;
    False wherever that cannot be told (other systems, a device it does not list, btrfs
    subvolumes), which keeps the threads: the safe side.
    """
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
            mountinfo = handle.read()
        device = os.stat(directory).st_dev
    except OSError:
        return False
    kind = mount_type(mountinfo, os.major(device), os.minor(device))
    return kind in _MEMORY_FILE_SYSTEMS


def mount_type(mountinfo: str, major: int, minor: int) -> str | None:
    """The file system type of device ``major:minor`` in a ``/proc/<pid>/mountinfo`` text.

    A line reads ``<id> <parent> <major:minor> <root> <mount point> <options> [<optional
    fields>...] - <type> <source> <super options>``; the optional fields vary in number, so
    the type is the field after the lone ``-``.
    """
    wanted = f"{major}:{minor}"
    found = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 8 or fields[2] != wanted:
            continue
        with contextlib.suppress(ValueError, IndexError):  # no separator, or nothing after it
            found = fields[fields.index("-", 6) + 1]  # bind mounts repeat it: one type
    return found


def _remove_if_dead(path: str) -> bool:
    """Remove a temporary file whose writer no longer holds its lock (it died); True if so."""
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    try:
        try:
            _flock.flock(fd, _flock.LOCK_EX | _flock.LOCK_NB)
        except BlockingIOError:
            return False  # a live writer's
        # Removed while we hold the lock: a writer that created this name an instant ago
        # finds its file unlinked once it gets the lock, and takes another name.
        os.unlink(path)
        return True
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

    # A target name near the 255-byte limit is cut short in its temporary name (at a
    # character boundary): the temporary name is never published.
    room = _MAX_NAME_BYTES - _PART_EXTRA_BYTES
    base = target.name.encode()[:room].decode(errors="ignore")
    for _ in range(3):
        part = target.with_name(f"{base}.imuzekit-{secrets.token_hex(6)}.part")
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


def _links_unsupported(exc: OSError) -> bool:
    return exc.errno in _NO_LINKS or getattr(exc, "winerror", None) in _NO_LINKS_WINDOWS


def _reserve(candidate: Path) -> bool:
    """Take ``candidate`` with an empty placeholder while it is free (atomic); False if taken."""
    try:
        fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
    except FileExistsError:
        return False
    os.close(fd)
    return True


class Commit:
    """One verified temporary file handed to a worker thread to be made durable and published
    (and its new name made durable, with ``sync_directory``).

    The loop may give up waiting (a disk that stopped answering, a closed Client): then
    `abandon()` makes sure the file is closed and the worker, if it is still running,
    publishes nothing and removes the temporary file; a name it linked meanwhile is removed
    again (the link created it: nobody else's file).
    """

    def __init__(
        self,
        handle: BinaryIO,
        part: Path,
        target: Path,
        *,
        url: str,
        size: int,
        etag: str | None,
        overwrite: bool,
        sync_directory: Callable[[str], None] | None = None,
    ) -> None:
        self.handle = handle
        self.part = part
        self.target = target
        self.url = url
        self.size = size
        self.etag = etag
        self.overwrite = overwrite
        # Makes the new name durable (the directory's fsync), in the same thread: on a disk a
        # second hand-off per file would cost the event loop more than the call itself.
        self.sync_directory = sync_directory
        # What the worker is doing, for the message of a deadline that passes meanwhile.
        self.stage = "waiting for a thread"
        self._lock = threading.Lock()  # held only to flip the flags below
        self._started = False
        self._abandoned = False
        self._published: Path | None = None

    def abandon(self) -> Path | None:
        """The loop gave up: close the file unless the worker owns it already.

        Returns the path this commit published if the worker had already finished (its answer
        was lost to the deadline): the caller decides what to say about it.
        """
        with self._lock:
            self._abandoned = True
            if not self._started:
                self.handle.close()
            return self._published

    def _still_wanted(self) -> bool:
        with self._lock:
            if self._abandoned:
                self.handle.close()
                self.part.unlink(missing_ok=True)
                return False
            self._started = True
            return True

    def run(self) -> Path:
        """Flush, record the source, fsync, publish, close, then make the new name durable with
        ``sync_directory`` when given (blocking). Returns the final path."""
        if not self._still_wanted():
            raise errors.DownloadError("the download was given up")
        try:
            self.stage = "fsync"
            self.handle.flush()
            # Made here, in the worker: the event loop has no time to spare per file.
            record = record_for(self.url, self.size, self.etag)
            recorded = _write_record(self.handle.fileno(), record)
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
            self.stage = "publication"
            final, created = self._publish()
            if not created or final != self.target:
                _log.debug(
                    "%s %s: %s",
                    "adopted" if not created else "published as",
                    final.name,
                    "another writer's file of the same source"
                    if not created
                    else f"{self.target.name} holds another file",
                )
            if created and not recorded:
                _write_sidecar(final, record)
            with self._lock:
                abandoned = self._abandoned
                if not abandoned:
                    self._published = final if created else None
            if abandoned:
                # Given up while we published: the caller is told the download failed, so
                # the name we just created must not stay (an adopted file is another writer's).
                if created:
                    unpublish(final)
                raise errors.DownloadError("the download was given up")
            self.handle.close()
            if self.sync_directory is not None:
                # Given up during it, the caller removes what `abandon()` says was published.
                self.stage = "directory fsync"
                # A relative name's folder is the working directory ("" is no path).
                self.sync_directory(os.path.dirname(final) or os.curdir)
            return final
        finally:
            self.handle.close()

    def _same_source(self, candidate: Path) -> bool:
        # The same URL's file of the same size and version (ETag), published by another writer.
        found = kept(
            candidate, self.url, size=self.size, sha256=None, checksum=False, etag=self.etag
        )
        return found is not None

    def _publish(self) -> tuple[Path, bool]:
        """Publish the temporary file; returns the path and whether this commit created it."""
        if self.overwrite:
            os.replace(self.part, self.target)
            return self.target, True
        for number in range(1, _MAX_SIBLINGS):
            candidate = self.target if number == 1 else _sibling(self.target, number)
            try:
                os.link(self.part, candidate)
            except FileExistsError:
                if self._same_source(candidate):
                    # Another writer published this very source first: theirs is as good.
                    self.part.unlink(missing_ok=True)
                    return candidate, False
                continue  # another source's file, or one nobody can vouch for: never clobbered
            except OSError as exc:
                if not _links_unsupported(exc):
                    raise  # a real failure (a full directory, no permission): not a fallback
                # No hard links here: reserve the name atomically, then rename over the
                # placeholder we own (a check of the name then a rename could be overtaken).
                if not _reserve(candidate):
                    if self._same_source(candidate):
                        self.part.unlink(missing_ok=True)
                        return candidate, False
                    continue
                try:
                    os.replace(self.part, candidate)
                except BaseException:
                    candidate.unlink(missing_ok=True)  # our placeholder: the name is free again
                    raise
                return candidate, True
            self.part.unlink()
            return candidate, True
        raise errors.DownloadError(f"no free name beside {self.target.name!r}")
