"""Which file a batch line writes: only ever one its own journal recorded, or a fresh name.

A file already on disk is adopted only when this journal recorded it for the same line, file
and remote id with the same size and SHA-256 (checked again on disk). Anything else (an earlier
batch's file in a reused ``--out``, a file changed since) is left alone, and the download goes
to a name the journal claims while it is free (see `Journal.claim`).
"""

from __future__ import annotations

import contextlib
import os
import pathlib

import anyio

from imuzekit.cli.batch._journal import AsyncJournal, FileRecord
from imuzekit.downloads import _hash_file  # the downloader's own: one way to hash a file

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
    """A path for the line's file ``index`` that does not exist, claimed in the journal:
    ``natural`` or a fresh variant of it."""
    claimed = await journal.call(journal.journal.target, key, index)
    known = await journal.call(journal.journal.file, key, index)
    if claimed is not None and (known is None or known.path != claimed):
        path = pathlib.Path(claimed)
        # Claimed while free on disk and not recorded: an earlier run of this batch finished
        # writing it and died before recording it. Ours: write it again.
        with contextlib.suppress(FileNotFoundError):
            await anyio.to_thread.run_sync(os.unlink, path)
        return path
    return await journal.call(journal.journal.claim, key, index, natural)
