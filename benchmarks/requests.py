"""Plain API calls: ``kit.imuze.songs.get(id)`` vs raw aiohttp vs httpx, requests per second.

``--requests`` (20,000) show calls against the package's emulator (its own process), first one
at a time (concurrency 1), then with 64 in flight, each contender in its own fresh process:

* **imuzekit**: ``await kit.imuze.songs.get(song_id)``: auth header, retries, error mapping,
  JSON decoding and structuring into a frozen ``Song``;
* **raw aiohttp**: ``session.get(url)`` then ``await response.json()`` (a dict), status checked;
* **httpx**: ``await client.get(url)`` then ``response.json()``, status checked.

Every pool allows 100 connections (httpx keeps all 100 alive, like the others). Each run
starts with an untimed warm-up. Reported: requests per second, client CPU microseconds per
request, the emulator's CPU seconds over the run (when it approaches the wall time the server,
not the client, is the bottleneck), and imuzekit's ratio to raw aiohttp.

Run: ``python benchmarks/requests.py`` (``--requests 5000`` for a quick look; ``--profile``
writes a pyinstrument profile of imuzekit's run at concurrency 64, if pyinstrument is
installed).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _harness import machine, print_table, run_isolated
from _server import EmulatorProcess

SONGS = 100  # distinct songs the calls cycle through
WARMUP = 500  # untimed calls before each measurement
CONNECTIONS = 100  # pool size of every contender (imuzekit's default)

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


async def _measure(
    call: Call, ids: list[int], n: int, concurrencies: list[int], profile: str | None
) -> dict[str, Any]:
    import resource

    results: dict[str, Any] = {}
    for concurrency in concurrencies:
        await _drive(call, ids, WARMUP, concurrency)
        profiler = None
        if profile and concurrency == max(concurrencies):
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005)
            profiler.start()
        before = resource.getrusage(resource.RUSAGE_SELF)
        elapsed = await _drive(call, ids, n, concurrency)
        after = resource.getrusage(resource.RUSAGE_SELF)
        if profiler is not None and profile:
            profiler.stop()
            with open(profile, "w") as handle:
                handle.write(profiler.output_text(unicode=False, show_all=False))
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        results[str(concurrency)] = {"elapsed": elapsed, "cpu": cpu}
    return results


async def imuzekit_contender(
    url: str, token: str, ids: list[int], n: int, concurrencies: list[int], profile: str | None
) -> dict[str, Any]:
    """``kit.imuze.songs.get(song_id)``."""
    from imuzekit import Client, ImuzeConfig

    async with Client(
        imuze=ImuzeConfig(token=token, base_url=url), max_connections=CONNECTIONS
    ) as kit:
        songs = kit.imuze.songs

        async def call(song_id: int) -> None:
            song = await songs.get(song_id)
            assert song.id == song_id

        return await _measure(call, ids, n, concurrencies, profile)


async def raw_aiohttp_contender(
    url: str, token: str, ids: list[int], n: int, concurrencies: list[int], profile: str | None
) -> dict[str, Any]:
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

        return await _measure(call, ids, n, concurrencies, profile)


async def httpx_contender(
    url: str, token: str, ids: list[int], n: int, concurrencies: list[int], profile: str | None
) -> dict[str, Any]:
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

        return await _measure(call, ids, n, concurrencies, profile)


IMUZEKIT = "imuzekit (songs.get)"
RAW = "raw aiohttp (get + json)"
HTTPX = "httpx (get + json)"
CONTENDERS: dict[str, tuple[Any, list[str]]] = {
    IMUZEKIT: (imuzekit_contender, ["imuzekit", "imuzekit.client"]),
    RAW: (raw_aiohttp_contender, ["aiohttp"]),
    HTTPX: (httpx_contender, ["httpx"]),
}


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the contenders, print the table and the acceptance check."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000, help="calls per run (20000)")
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=[1, 64],
        help="calls in flight, one run each (1 64)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="runs of imuzekit and raw aiohttp, alternating, each in a fresh process; the "
        "median is reported (3). httpx, 5-20x slower, runs once",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin the emulator and the client to one CPU each (see docs/performance.md)",
    )
    parser.add_argument("--only", choices=["imuzekit", "raw", "httpx"], help="one contender")
    parser.add_argument(
        "--profile", metavar="FILE", help="write a pyinstrument profile of imuzekit's run"
    )
    args = parser.parse_args(argv)
    if args.requests < 1 or args.rounds < 1 or min(args.concurrency) < 1:
        parser.error("need --requests, --rounds and --concurrency >= 1")

    names = list(CONTENDERS)
    if args.only:
        names = [name for name in names if name.lower().startswith(args.only)]
    print(f"machine: {machine()}")
    print(
        f"requests: {args.requests:,} GET /songs/{{id}} per run, concurrency "
        f"{', '.join(map(str, args.concurrency))}, {args.rounds} round(s), "
        f"emulator and client in separate processes"
    )
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    with EmulatorProcess(render_seconds=0.0, seed=1, pin=args.pin) as server:
        ids = server.seed_songs(SONGS, desired_length=30)
        for round_no in range(args.rounds):
            # Alternate the order: a drift of the machine then hits both contenders alike.
            ordered = names if round_no % 2 == 0 else names[::-1]
            for name in ordered:
                if name == HTTPX and runs[name]:
                    continue
                target, imports = CONTENDERS[name]
                server_before = server.cpu_seconds()
                result = run_isolated(
                    target,
                    timeout=1800.0,
                    imports=imports,
                    pin=args.pin,
                    url=server.url,
                    token=server.token,
                    ids=ids,
                    n=args.requests,
                    concurrencies=args.concurrency,
                    profile=args.profile if name == IMUZEKIT else None,
                )
                result["server_cpu"] = server.cpu_seconds() - server_before
                runs[name].append(result)

    rows = []
    rps: dict[tuple[str, str], float] = {}
    for name in names:
        for concurrency in map(str, args.concurrency):
            measured = [run[concurrency] for run in runs[name]]
            speed = statistics.median(args.requests / m["elapsed"] for m in measured)
            cpu_us = statistics.median(m["cpu"] / args.requests * 1e6 for m in measured)
            rps[name, concurrency] = speed
            rows.append([name, concurrency, f"{speed:,.0f}", f"{cpu_us:,.0f}"])
    for row in rows:
        raw_speed = rps.get((RAW, row[1]))
        speed = rps[row[0], row[1]]
        row.append(f"{speed / raw_speed:.2f}" if raw_speed else "-")
        per_round = [args.requests / run[row[1]]["elapsed"] for run in runs[row[0]]]
        row.append(" / ".join(f"{x:,.0f}" for x in per_round))
    server_cpu = {
        name: statistics.median(run["server_cpu"] for run in runs[name]) for name in names
    }
    print()
    print_table(
        [
            "contender",
            "concurrency",
            "requests/s (median)",
            "client CPU µs/request",
            "x raw aiohttp",
            "requests/s per run",
        ],
        rows,
    )
    print()
    total_calls = (args.requests + WARMUP) * len(args.concurrency)
    for name in names:
        print(
            f"emulator CPU per run of {name}: {server_cpu[name]:.1f} s "
            f"({server_cpu[name] / total_calls * 1e6:,.0f} µs per call, warm-ups included)"
        )
    if args.profile and IMUZEKIT in names:
        print(f"profile of imuzekit at concurrency {max(args.concurrency)}: {args.profile}")
    print()
    ok = True
    if "64" in map(str, args.concurrency) and (IMUZEKIT, "64") in rps and (RAW, "64") in rps:
        ratio = rps[IMUZEKIT, "64"] / rps[RAW, "64"]
        passed = ratio >= 0.85
        ok = passed
        print(
            f"{'met' if passed else 'MISSED'}: imuzekit at concurrency 64 is {ratio:.2f} x "
            f"raw aiohttp's requests/s (target >= 0.85)"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
