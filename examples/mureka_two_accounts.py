"""Mureka through useapi.net across two accounts: generations spread over both, then the songs.

    python examples/mureka_two_accounts.py [--count 6] [--out DIR]

Each creation goes to the least busy account with a free slot (each runs at most 10 at once)
and waits when all are busy; a 429 on one account moves the creation to another. Each feed has
two songs. Runs on the embedded emulator (which serves two accounts) unless
``IMUZEKIT_MUREKA_TOKEN`` and ``IMUZEKIT_MUREKA_ACCOUNTS`` are set.
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib

from _connect import add_out_argument, connect, output_dir

from imuzekit import JobState
from imuzekit.providers.mureka import Song

PROMPTS = (
    "an upbeat ska tune about trains",
    "a slow piano ballad about the sea",
    "a bright synth-pop song about the first day of spring",
)


async def main(count: int, out: pathlib.Path) -> None:
    """Create `count` generations over every configured account and download their songs."""
    async with connect("mureka") as kit:
        accounts = kit.mureka.accounts
        print(f"accounts: {', '.join(accounts)}")
        jobs = await asyncio.gather(
            *(kit.mureka.music.create(PROMPTS[n % len(PROMPTS)]) for n in range(count))
        )
        songs: list[Song] = []
        async for job in kit.as_completed(jobs, timeout=900):
            if job.state is JobState.READY:
                songs.extend(job.result_or_raise().songs)
            else:
                print(f"job {job.id} failed: {job.error or job.last_error}")
        print(f"{len(jobs)} generations, {len(songs)} songs")
        for account in accounts:  # the feed list is paged: the iterator follows last_id/more
            feeds = [feed async for feed in kit.mureka.music.list(account=account)]
            print(f"account {account}: {len(feeds)} feeds")
        detail = await kit.mureka.music.get(songs[0].song_id)
        print(f"first song: {detail.song.title!r}, {len(detail.song.lyrics)} lyric sections")
        saved = [r async for r in kit.download_many(songs, out, concurrency=4) if r.ok]
        print(f"{len(saved)} of {len(songs)} Mureka songs downloaded to {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=6, help="how many generations (default 6)")
    add_out_argument(parser)
    args = parser.parse_args()
    with output_dir(args.out) as folder:
        asyncio.run(main(args.count, folder))
