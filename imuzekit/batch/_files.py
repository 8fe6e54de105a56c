"""Which file a batch line writes: only ever one its own journal recorded, or a fresh name.

A file already on disk is adopted only when this journal recorded it for the same line, file
and remote id with the same size and SHA-256 (checked again on disk). Anything else (an earlier
batch's file in a reused ``--out``, a file changed since, a file put under a name this journal
claimed but had not recorded) is left alone, never removed: the download goes to a name the
journal claims while it is free (see `Journal.claim`), or beside it when that name was taken
since, and the path the download returns is the one recorded.
"""

from __future__ import annotations

import os
import pathlib

import anyio

from imuzekit._disk import hash_file as _hash_file  # the downloader's own: one way to hash
from imuzekit.batch._journal import AsyncJournal, FileRecord

__all__ = ["claim_target", "own_file"]


async def own_file(
    journal: AsyncJournal, key: str, index: int, remote_id: str
) -> FileRecord | None:
    """This journal's record of the line's file ``index`` when the file on disk is still
    exactly it (same path, size and SHA-256) and of the same remote file, else None."""
    known = await journal.call(journal.journal.file, key, index)
    if known is None or known.remote_id != remote_id:
        return None
    path = pathlib.Path(known.path)
    found = await anyio.to_thread.run_sync(lambda: path.is_file() and _hash_file(path))
    return known if found == (known.size, known.sha256) else None


async def claim_target(
    journal: AsyncJournal, key: str, index: int, natural: pathlib.Path
) -> pathlib.Path:
    """The path to download the line's file ``index`` to, claimed in the journal.

    The name this line claimed before (an earlier run died before recording the file), when
    it is absolute; else ``natural`` or a fresh variant of it (`Journal.claim`). A file found
    under the claimed name is never removed nor taken as this batch's: another batch sharing
    ``--out``, or the user, may have put it there after the claim. The download decides: the
    SDK keeps it only when its own source record proves it is this very file, and otherwise
    publishes beside it (``<stem>-2.mp3``) and returns that path, the one to record.
    ``natural`` is absolute (the claim outlives the working directory).
    """
    claimed = await journal.call(journal.journal.target, key, index)
    known = await journal.call(journal.journal.file, key, index)
    if claimed is not None and os.path.isabs(claimed) and (known is None or known.path != claimed):
        return pathlib.Path(claimed)
    # A relative claim (an older journal) names another file from another working directory.
    return await journal.call(journal.journal.claim, key, index, natural)
