"""Create one iMuze song, wait until it is rendered, download the mp3.

    python examples/quickstart.py [--out DIR]

Runs on the embedded emulator unless ``IMUZEKIT_IMUZE_*`` variables are set (then it creates a
real song on your account).
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib

from _connect import add_out_argument, connect, output_dir


async def main(out: pathlib.Path) -> None:
    """Create, wait, download."""
    async with connect("imuze") as kit:
        arrangements = [a async for a in kit.imuze.arrangements.list()]
        arrangement = arrangements[0]
        job = await kit.imuze.songs.create(
            title="Morning Light", arrangement_id=arrangement.id, tags=["piano"], desired_length=30
        )
        print(f"created song {job.id} ({job.state.value})")
        song = await job.wait(timeout=300)  # polls with backoff until "ready"
        path = await kit.download(song, out)  # verified, written atomically
        print(f"downloaded {song.title!r}: {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_out_argument(parser)
    args = parser.parse_args()
    with output_dir(args.out) as folder:
        asyncio.run(main(folder))
