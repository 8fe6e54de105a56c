"""Plain API calls: ``kit.imuze.songs.get(id)`` vs raw aiohttp vs httpx, requests per second.

``--requests`` (20,000) show calls per contender against the package's emulator (its own
process), one at a time (concurrency 1) and with 64 in flight:

* **imuzekit**: ``await kit.imuze.songs.get(song_id)``: auth header, retries, error mapping,
  JSON decoding and structuring into a frozen ``Song``;
* **raw aiohttp**: ``session.get(url)`` then ``await response.json()`` (a dict), status checked;
* **httpx**: ``await client.get(url)`` then ``response.json()``, status checked.

Every pool allows 100 connections (httpx keeps all 100 alive, like the others). The three
clients live in one client process (the emulator has its own) and take turns: each
contender's calls are split into ``--batches`` batches, run alternately in a rotating order,
after an untimed warm-up. A machine that is busy with something else for a moment then slows
every contender alike instead of one of them. Reported: requests per second, client CPU
microseconds per request, the emulator's CPU per request and how busy it was (near 100 % the
server, not the client, is the bottleneck), and the ratio to raw aiohttp with its spread over
the batches.

Run: ``python benchmarks/requests.py`` (``--requests 5000`` for a quick look; ``--profile
FILE`` then writes a pyinstrument profile of imuzekit at the highest concurrency, if
pyinstrument is installed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from _harness import OtherLoad, machine, print_table, run_isolated
from _server import EmulatorProcess

SONGS = 100  # distinct songs the calls cycle through
WARMUP = 500  # untimed calls before each measurement
CONNECTIONS = 100  # pool size of every contender (imuzekit's default)
TARGET = 0.95  # imuzekit's requests/s over raw aiohttp's, at every concurrency measured

Call = Callable[[int], Awaitable[None]]


async def _drive(call: Call, ids: list[int], n: int, concurrency: int) -> float:
    """Make ``n`` calls with ``concurrency`` in flight; return the elapsed seconds."""
    counter = itertools.count()
    cycle = len(ids)

    async def worker() -> None:
        while (i := next(counter)) < n:
            await call(ids[i % cycle])

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, n))))
    return time.perf_counter() - started


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc, 10 ms resolution)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def _imuzekit(url: str, token: str) -> AsyncIterator[Call]:
    """``kit.imuze.songs.get(song_id)``."""
    from imuzekit import Client, ImuzeConfig

    config = ImuzeConfig(token=token, base_url=url)
    async with Client(imuze=config, max_connections=CONNECTIONS) as kit:
        songs = kit.imuze.songs

        async def call(song_id: int) -> None:
            song = await songs.get(song_id)
            assert song.id == song_id

        yield call


@contextlib.asynccontextmanager
async def _raw_aiohttp(url: str, token: str) -> AsyncIterator[Call]:
    """``session.get`` + ``response.json()``."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    headers = {"Authorization": token}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def call(song_id: int) -> None:
            async with session.get(f"{url}/songs/{song_id}") as response:
                response.raise_for_status()
                data = await response.json()
            assert data["id"] == song_id

        yield call


@contextlib.asynccontextmanager
async def _httpx(url: str, token: str) -> AsyncIterator[Call]:
    """``client.get`` + ``response.json()``."""
    import httpx

    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(
        headers={"Authorization": token}, limits=limits, timeout=60.0
    ) as client:

        async def call(song_id: int) -> None:
            response = await client.get(f"{url}/songs/{song_id}")
            response.raise_for_status()
            data = response.json()
            assert data["id"] == song_id

        yield call


IMUZEKIT = "imuzekit (songs.get)"
RAW = "raw aiohttp (get + json)"
HTTPX = "httpx (get + json)"
CONTENDERS = {IMUZEKIT: _imuzekit, RAW: _raw_aiohttp, HTTPX: _httpx}


async def measure_all(
    url: str,
    token: str,
    ids: list[int],
    names: list[str],
    n: int,
    concurrencies: list[int],
    batches: int,
    server_pid: int,
    profile: str | None,
) -> dict[str, Any]:
    """Run every contender's batches in turn; return per-batch figures by contender."""
    sizes = [n // batches + (1 if b < n % batches else 0) for b in range(batches)]
    results: dict[str, Any] = {name: {str(c): [] for c in concurrencies} for name in names}
    async with contextlib.AsyncExitStack() as stack:
        calls = {
            name: await stack.enter_async_context(CONTENDERS[name](url, token)) for name in names
        }
        for concurrency in concurrencies:
            for name in names:
                await _drive(calls[name], ids, WARMUP, concurrency)
            for batch, size in enumerate(sizes):
                shift = batch % len(names)
                for name in names[shift:] + names[:shift]:
                    cpu = time.process_time()
                    server = _process_cpu(server_pid)
                    elapsed = await _drive(calls[name], ids, size, concurrency)
                    results[name][str(concurrency)].append(
                        {
                            "calls": size,
                            "elapsed": elapsed,
                            "cpu": time.process_time() - cpu,
                            "server_cpu": _process_cpu(server_pid) - server,
                        }
                    )
        if profile and IMUZEKIT in calls:
            # After the measurement: a profiler slows down what it watches.
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005)
            profiler.start()
            await _drive(calls[IMUZEKIT], ids, sizes[0], max(concurrencies))
            profiler.stop()
            with open(profile, "w") as handle:
                handle.write(profiler.output_text(unicode=False, show_all=False))
    return results


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the contenders, print the table and the acceptance check."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--requests", type=int, default=20_000, help="calls per contender and concurrency (20000)"
    )
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 64], help="calls in flight (1 64)"
    )
    parser.add_argument(
        "--batches", type=int, default=10, help="turns each contender's calls are split into (10)"
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin the emulator and the client to one CPU each (see docs/performance.md)",
    )
    parser.add_argument(
        "--only", choices=["imuzekit", "raw", "httpx"], nargs="+", help="these contenders only"
    )
    parser.add_argument(
        "--profile", metavar="FILE", help="write a pyinstrument profile of imuzekit's calls"
    )
    args = parser.parse_args(argv)
    if args.requests < 1 or min(args.concurrency) < 1 or not 1 <= args.batches <= args.requests:
        parser.error("need --requests, --concurrency >= 1 and 1 <= --batches <= --requests")

    names = list(CONTENDERS)
    if args.only:
        names = [name for name in names if name.split()[0].lower() in args.only]
    print(f"machine: {machine()}")
    print(
        f"requests: {args.requests:,} GET /songs/{{id}} per contender at concurrency "
        f"{' and '.join(map(str, args.concurrency))}, in {args.batches} alternating batches; "
        f"emulator and clients in separate processes{' (pinned)' if args.pin else ''}"
    )
    with OtherLoad() as load, EmulatorProcess(render_seconds=0.0, seed=1, pin=args.pin) as server:
        ids = server.seed_songs(SONGS, desired_length=30)
        results = run_isolated(
            measure_all,
            timeout=3600.0,
            imports=["imuzekit", "imuzekit.client", "aiohttp", "httpx"],
            pin=args.pin,
            url=server.url,
            token=server.token,
            ids=ids,
            names=names,
            n=args.requests,
            concurrencies=args.concurrency,
            batches=args.batches,
            server_pid=server.pid,
            profile=args.profile,
        )

    def total(name: str, concurrency: str, key: str) -> float:
        return float(sum(b[key] for b in results[name][concurrency]))

    rps = {
        (name, concurrency): total(name, concurrency, "calls") / total(name, concurrency, "elapsed")
        for name in names
        for concurrency in map(str, args.concurrency)
    }
    rows = []
    for concurrency in map(str, args.concurrency):
        for name in names:
            calls = total(name, concurrency, "calls")
            elapsed = total(name, concurrency, "elapsed")
            server_cpu = total(name, concurrency, "server_cpu")
            row = [
                name,
                concurrency,
                f"{calls / elapsed:,.0f}",
                f"{total(name, concurrency, 'cpu') / calls * 1e6:,.0f}",
                f"{server_cpu / calls * 1e6:,.0f}",
                f"{server_cpu / elapsed:.0%}",
            ]
            if RAW in names:
                pairs = zip(results[name][concurrency], results[RAW][concurrency], strict=True)
                ratios = sorted(
                    (b["calls"] / b["elapsed"]) / (r["calls"] / r["elapsed"]) for b, r in pairs
                )
                row.append(f"{rps[name, concurrency] / rps[RAW, concurrency]:.2f}")
                row.append(f"{ratios[0]:.2f} / {statistics.median(ratios):.2f} / {ratios[-1]:.2f}")
            rows.append(row)
    print()
    headers = [
        "contender",
        "concurrency",
        "requests/s",
        "client CPU µs/request",
        "emulator CPU µs/request",
        "emulator busy",
    ]
    if RAW in names:
        headers += ["x raw aiohttp", "per batch min / median / max"]
    print_table(headers, rows)
    print()
    print(load.describe())
    if args.profile and IMUZEKIT in names:
        print(f"profile of imuzekit at concurrency {max(args.concurrency)}: {args.profile}")
    print()
    ok = True
    for concurrency in map(str, args.concurrency):
        if (IMUZEKIT, concurrency) not in rps or (RAW, concurrency) not in rps:
            continue
        ratio = rps[IMUZEKIT, concurrency] / rps[RAW, concurrency]
        met = ratio >= TARGET
        ok &= met
        print(
            f"{'met' if met else 'MISSED'}: imuzekit at concurrency {concurrency} is {ratio:.2f} x "
            f"raw aiohttp's requests/s (target >= {TARGET})"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
