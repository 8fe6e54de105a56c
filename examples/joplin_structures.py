"""The iMuze music engine ("joplin"): one music per structure, written three ways, then the mp3s.

    python examples/joplin_structures.py [--out DIR]

A structure says how the music evolves: consecutive energies (``calm``, ``medium``,
``dynamic``), movement types (``intro``, ``verse``, ``refrain``, ...), or `Movement` objects
built by hand; fractions add up to 1. Runs on the embedded emulator unless
``IMUZEKIT_JOPLIN_*`` variables are set.
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib

from _connect import add_out_argument, connect, output_dir

from imuzekit import Energy, Job, Movement, Structure
from imuzekit.providers.joplin import Music

STRUCTURES: dict[str, str | Structure | list[Movement]] = {
    "energies (string)": "calm:0.2,medium:0.4,dynamic:0.4",
    "movements (parsed)": Structure.parse("intro:0.1,verse:0.4,refrain:0.4,outro:0.1"),
    "by hand": [
        Movement(start=0, duration=0.5, energy=Energy.CALM),
        Movement(start=0.5, duration=0.5, movement="refrain"),
    ],
}


async def main(out: pathlib.Path) -> None:
    """Create one music per structure, wait for all, download them."""
    async with connect("joplin") as kit:
        genres = [g for g in await kit.joplin.genres() if g.subgenres]
        print("genres:", ", ".join(f"{g.name} ({len(g.subgenres)})" for g in genres))
        jobs: dict[str, Job[Music]] = {}
        for index, (label, structure) in enumerate(STRUCTURES.items()):
            genre = genres[index % len(genres)]
            jobs[label] = await kit.joplin.musics.create(
                genre.name, genre.subgenres[0], 20_000 + 5_000 * index, structure, crop=True
            )
        for label, job in jobs.items():
            music = await job.wait(timeout=300)
            shape = " ".join(f"{m.energy or m.movement}:{m.duration:.2f}" for m in music.structure)
            path = await kit.download(music, out)
            print(
                f"{label:<20} {music.genre}/{music.subgenre} {music.bpm} bpm "
                f"{(music.duration_ms or 0) / 1000:.0f} s [{shape}] -> {path.name}"
            )
        print(f"{len(jobs)} musics downloaded to {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_out_argument(parser)
    args = parser.parse_args()
    with output_dir(args.out) as folder:
        asyncio.run(main(folder))
