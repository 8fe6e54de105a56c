"""Crash-safe batches of generations, as a library.

A batch is a journal (SQLite by default: a file, no server; PostgreSQL for many workers on many
machines) whose state machine makes every paid creation happen exactly once, whatever dies:

```python
import imuzekit
from imuzekit import batch

async with imuzekit.Client.from_env() as kit, batch.open("batch.db", client=kit) as b:
    await b.add([{"provider": "imuze", "key": "intro", "title": "Morning Song",
                  "arrangement_id": 1, "desired_length": 60}])
    async for event in b.run("songs/", concurrency=16):
        print(event)
    print(await b.status())
```

`open` takes a path or a ``postgresql://`` URL; `Batch.add` validates manifest lines (the
JSON-lines format of `imuzekit batch run`) and records the bad ones ``failed``;
`Batch.run` yields `LineChanged`, `FileWritten`, `LineError` and `Notice` events;
`Batch.status` counts the lines per state. See docs/batch.md.
"""

from __future__ import annotations

from imuzekit.batch._api import (
    AddResult,
    Batch,
    BatchStatus,
    Line,
    RejectedLine,
)
from imuzekit.batch._api import open_batch as open
from imuzekit.batch._events import (
    BatchEvent,
    Board,
    FileWritten,
    LineChanged,
    LineError,
    Notice,
)
from imuzekit.batch._journal import STATES, TRANSITIONS, FileRecord, LineRecord, TransitionError
from imuzekit.batch._lock import JournalError
from imuzekit.batch._manifest import ManifestError

__all__ = [
    "STATES",
    "TRANSITIONS",
    "AddResult",
    "Batch",
    "BatchEvent",
    "BatchStatus",
    "Board",
    "FileRecord",
    "FileWritten",
    "JournalError",
    "Line",
    "LineChanged",
    "LineError",
    "LineRecord",
    "ManifestError",
    "Notice",
    "RejectedLine",
    "TransitionError",
    "open",
]
