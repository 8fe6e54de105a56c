"""Batches: one SQLite runner vs 1, 2 and 4 workers sharing a PostgreSQL journal.

The emulator (its own process) renders every song in ``--render`` seconds (drawn uniformly on
the emulator's clock) and runs at most 10 Mureka generations per account at once (``--accounts``
accounts). The manifest has ``--lines`` lines: three iMuze songs for every Mureka advanced song
(two files each). Each contender runs the whole manifest from an empty journal, every worker in
a freshly spawned process with ``--concurrency`` lines in progress:

* **SQLite, 1 worker**: the embedded journal (``BatchRunner``), as ``imuzekit batch run`` does;
* **PostgreSQL, N workers**: N ``WorkerRunner`` processes on one journal (each in a schema of
  its own per contender), claiming leases, sharing slots and pauses.

Reported per contender: lines per minute (manifest lines over the wall time from the first
worker's start to the last one's end), remote creations per line (the emulator's counters:
must be 1.000), journal round trips per line (every journal call the workers made: claims,
heartbeats, moves, file records), and the 95th percentile of the time from a line's ``ready``
to its ``downloaded`` (from the journal's events). One run, printed as a table; not a timed
test. Run::

    python benchmarks/batch.py --postgres postgresql://user:pw@127.0.0.1:5432/db

(``IMUZEKIT_TEST_POSTGRES_URL`` is used when ``--postgres`` is not given.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import pathlib
import secrets
import sqlite3
import sys
import tempfile
import time
from typing import Any

from _harness import machine, percentile, print_table
from _server import EmulatorProcess


def _title(n: int, stem: str) -> str:
    return f"{stem} {str(n).translate(str.maketrans('0123456789', 'abcdefghij'))}"


def _manifest(path: pathlib.Path, n: int) -> int:
    """Write ``n`` lines; the number of Mureka lines."""
    mureka = 0
    with path.open("w") as out:
        for i in range(1, n + 1):
            if i % 4:
                line: dict[str, Any] = {
                    "provider": "imuze",
                    "key": f"line-{i:05d}",
                    "title": _title(i, "Bench Song"),
                    "arrangement_id": 1 + i % 3,
                    "desired_length": 2,
                }
            else:
                mureka += 1
                line = {
                    "provider": "mureka",
                    "kind": "create_advanced",
                    "key": f"line-{i:05d}",
                    "lyrics": f"verse {i}",
                    "title": _title(i, "Bench Tune"),
                }
            out.write(json.dumps(line) + "\n")
    return mureka


def _env(server: EmulatorProcess, accounts: list[str]) -> dict[str, str]:
    imuze, mureka = server.credentials["imuze"], server.credentials["mureka"]
    return {
        "IMUZEKIT_IMUZE_BASE_URL": server.urls["imuze"],
        "IMUZEKIT_IMUZE_EMAIL": str(imuze["email"]),
        "IMUZEKIT_IMUZE_PASSWORD": str(imuze["password"]),
        "IMUZEKIT_MUREKA_BASE_URL": server.urls["mureka"],
        "IMUZEKIT_MUREKA_TOKEN": str(mureka["token"]),
        "IMUZEKIT_MUREKA_ACCOUNTS": ",".join(accounts),
        "IMUZEKIT_POLL_INITIAL": "0.5",
        "IMUZEKIT_POLL_MAX_INTERVAL": "1.0",
    }


async def _work(
    env: dict[str, str], journal: str, schema: str, manifest: str, out: str, concurrency: int
) -> dict[str, Any]:
    from imuzekit import Client
    from imuzekit.batch._journal import AsyncJournal
    from imuzekit.batch._manifest import load_manifest
    from imuzekit.batch._runner import BatchOptions, BatchRunner

    lines = load_manifest(pathlib.Path(manifest))
    options = BatchOptions(out=pathlib.Path(out), concurrency=concurrency)
    async with Client.from_env(env) as kit:
        if journal.startswith("postgresql"):
            from imuzekit.batch._pg import PgJournal
            from imuzekit.batch._workers import WorkerRunner

            async with await PgJournal.open(journal, schema=schema) as pg:
                runner = WorkerRunner(kit, pg, lines, options)
                await runner.run()
                return {"round_trips": runner.round_trips}
        store = await AsyncJournal.open(pathlib.Path(journal))
        calls = 0
        original = store.call

        async def counted(func: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            return await original(func, *args, **kwargs)

        store.call = counted  # type: ignore[method-assign]
        try:
            await BatchRunner(kit, store, lines, options).run()
        finally:
            await store.aclose()
        return {"round_trips": calls}


def _child(queue: Any, *args: Any) -> None:
    queue.put(asyncio.run(_work(*args)))


def _events(journal: str, schema: str) -> list[tuple[str, str, float]]:
    """The ready and downloaded events (a PostgreSQL contender's schema is dropped after)."""
    query = "SELECT key, to_state, at FROM events WHERE to_state IN ('ready', 'downloaded')"
    if journal.startswith("postgresql"):
        import psycopg

        with psycopg.connect(journal, options=f"-c search_path={schema}") as conn:
            rows = [(str(k), str(s), float(a)) for k, s, a in conn.execute(query).fetchall()]
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
            return rows
    db = sqlite3.connect(journal)
    try:
        return [(str(k), str(s), float(a)) for k, s, a in db.execute(query).fetchall()]
    finally:
        db.close()


def _contender(
    name: str,
    workers: int,
    journal: str,
    server: EmulatorProcess,
    env: dict[str, str],
    manifest: pathlib.Path,
    root: pathlib.Path,
    lines: int,
    concurrency: int,
) -> list[str]:
    schema = "bench_" + secrets.token_hex(4)
    before = server.call("songs_created") + server.call("mureka_creations")
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    started = time.monotonic()
    processes = [
        ctx.Process(
            target=_child,
            args=(
                queue,
                env,
                journal,
                schema,
                str(manifest),
                str(root / f"{name}-{i}"),
                concurrency,
            ),
        )
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    results = [queue.get() for _ in processes]
    for process in processes:
        process.join()
    elapsed = time.monotonic() - started
    created = server.call("songs_created") + server.call("mureka_creations") - before
    at: dict[tuple[str, str], float] = {(k, s): a for k, s, a in _events(journal, schema)}
    waits = [at[(k, "downloaded")] - a for (k, s), a in at.items() if s == "ready"]
    trips = sum(r["round_trips"] for r in results)
    print(f"  {name}: {elapsed:.0f} s", file=sys.stderr)
    return [
        name,
        f"{lines / elapsed * 60:,.0f}",
        f"{created / lines:.3f}",
        f"{trips / lines:.1f}",
        f"{percentile(waits, 95):.2f}",
        f"{elapsed:.0f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("IMUZEKIT_TEST_POSTGRES_URL"))
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--render", type=float, nargs=2, default=(2.0, 6.0))
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    if not args.postgres:
        parser.error("give --postgres URL (or set IMUZEKIT_TEST_POSTGRES_URL)")
    print(machine())
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmulatorProcess(render_seconds=tuple(args.render), log_limit=100) as server,
    ):
        root = pathlib.Path(tmp)
        accounts = server.call("mureka_accounts", n=args.accounts)
        env = _env(server, accounts)
        manifest = root / "manifest.jsonl"
        mureka = _manifest(manifest, args.lines)
        print(
            f"{args.lines} lines ({args.lines - mureka} iMuze, {mureka} Mureka on "
            f"{args.accounts} accounts, 10 generations each), render {args.render[0]:g}-"
            f"{args.render[1]:g} s, concurrency {args.concurrency} per worker"
        )
        rows = [
            _contender(
                "SQLite, 1 worker", 1, str(root / "journal.sqlite"), server, env, manifest,
                root, args.lines, args.concurrency,
            ),
        ]  # fmt: skip
        for workers in (1, 2, 4):
            rows.append(
                _contender(
                    f"PostgreSQL, {workers} worker{'s' if workers > 1 else ''}", workers,
                    args.postgres, server, env, manifest, root, args.lines, args.concurrency,
                )
            )  # fmt: skip
    print_table(
        [
            "journal",
            "lines/min",
            "creations/line",
            "journal round trips/line",
            "p95 ready->downloaded (s)",
            "wall (s)",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
