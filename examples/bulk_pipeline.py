"""A bulk pipeline: create N iMuze songs, collect them as they finish, download them all.

    python examples/bulk_pipeline.py [--count 20] [--concurrency 8] [--out DIR]
    python examples/bulk_pipeline.py --count 1000      # the 1,000-song run (about 10 s here)

Creations go out at most ``--concurrency`` at a time (a create is never retried once the server
may have received it, so a song is never paid for twice); ``as_completed`` yields each job once
it is ready or failed; ``download_many`` streams the files with bounded concurrency and reports
every failure as a result instead of stopping the others. Runs on the embedded emulator unless
``IMUZEKIT_IMUZE_*`` variables are set.
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import time

from _connect import add_out_argument, connect, output_dir

from imuzekit import Client, Job, JobState
from imuzekit.providers.imuze import Song

# iMuze titles are ASCII letters and spaces only: the song's number is spelled 0-9 as a-j.
DIGITS_AS_LETTERS = str.maketrans("0123456789", "abcdefghij")


async def create_all(kit: Client, count: int, concurrency: int) -> list[Job[Song]]:
    """Submit `count` songs, `concurrency` requests at a time."""
    arrangements = [a async for a in kit.imuze.arrangements.list()]
    gate = asyncio.Semaphore(concurrency)

    async def create(n: int) -> Job[Song]:
        async with gate:
            return await kit.imuze.songs.create(
                title=f"Bulk song {n:04d}".translate(DIGITS_AS_LETTERS),  # "Bulk song aaab"
                arrangement_id=arrangements[n % len(arrangements)].id,
                tags=["bulk", "imuzekit"],
                desired_length=10 + n % 20,
            )

    return await asyncio.gather(*(create(n) for n in range(count)))


async def main(count: int, concurrency: int, out: pathlib.Path) -> int:
    """Run the pipeline; return the number of songs or files that failed."""
    started = time.monotonic()
    async with connect("imuze") as kit:
        jobs = await create_all(kit, count, concurrency)
        print(f"submitted {len(jobs)} songs in {time.monotonic() - started:.1f} s")

        ready: list[Song] = []
        failed = 0
        async for job in kit.as_completed(jobs, timeout=600):
            if job.state is JobState.READY:
                ready.append(job.result_or_raise())  # the Song, typed
            else:
                failed += 1
                print(f"song {job.id} did not finish: {job.error or job.last_error}")
        print(f"{len(ready)} ready, {failed} failed after {time.monotonic() - started:.1f} s")

        size = 0
        async for result in kit.download_many(ready, out, concurrency=concurrency):
            if result.error is not None:
                failed += 1
                print(f"download failed: {result.error}")
            else:
                size += result.size
    elapsed = time.monotonic() - started
    print(
        f"pipeline done: {len(ready)} songs, {size / 1e6:.1f} MB in {out} "
        f"({elapsed:.1f} s, {len(ready) / elapsed:.0f} songs/s)"
    )
    return failed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20, help="how many songs (default 20)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests/downloads at once")
    add_out_argument(parser)
    args = parser.parse_args()
    with output_dir(args.out) as folder:
        raise SystemExit(1 if asyncio.run(main(args.count, args.concurrency, folder)) else 0)
