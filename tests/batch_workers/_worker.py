"""One batch worker process for the multi-worker tests and the benchmark.

``python -m tests.batch_workers._worker JOURNAL_URL SCHEMA MANIFEST OUT [LEASE] [CONCURRENCY]``:
the library's `WorkerRunner` on the PostgreSQL journal, with a Client from the environment
(``IMUZEKIT_*``: the emulator's URLs and credentials, a fast poll). Each request may take 2 s
at most, so a line killed mid-create is resent (if it was never made) 4 s after its worker died.
"""

from __future__ import annotations

import asyncio
import pathlib
import sys

import attrs

from imuzekit import Client
from imuzekit.batch._manifest import load_manifest
from imuzekit.batch._pg import PgJournal
from imuzekit.batch._runner import BatchOptions
from imuzekit.batch._workers import WorkerOptions, WorkerRunner


async def main(argv: list[str]) -> int:
    url, schema, manifest, out = argv[:4]
    lease = float(argv[4]) if len(argv) > 4 else 2.0
    concurrency = int(argv[5]) if len(argv) > 5 else 8
    lines = load_manifest(pathlib.Path(manifest))
    async with Client.from_env() as kit, await PgJournal.open(url, schema=schema) as pg:
        kit.transport.timeouts = attrs.evolve(kit.transport.timeouts, connect=2.0, total=2.0)
        runner = WorkerRunner(
            kit,
            pg,
            lines,
            BatchOptions(out=pathlib.Path(out).resolve(), concurrency=concurrency),
            WorkerOptions(lease_seconds=lease, idle_poll=0.2, slot_poll=0.1),
        )
        records = await runner.run()
    return 0 if all(r.state == "downloaded" for r in records) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
