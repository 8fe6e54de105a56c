"""A user's script, type-checked with `mypy --strict` against the installed wheel, then run.

It checks that the wheel ships its types (`py.typed`) and that the values a user's code receives
are typed, not `Any` (`assert_type` fails on `Any`). `.ci/run` copies it out of the checkout and
runs `mypy --strict typed_script.py` and `python typed_script.py DIR` there.
"""

from __future__ import annotations

import asyncio
import pathlib
import sys
from typing import assert_type

from imuzekit import Client, Job, JobState, PollPolicy, Structure
from imuzekit.emulator import Emulator
from imuzekit.providers.imuze import Arrangement, Song
from imuzekit.providers.joplin import Music


async def main(out: pathlib.Path) -> list[pathlib.Path]:
    """Create a song and a music on the emulator, wait for both and download them into `out`."""
    async with (
        Emulator(render_seconds=0.2) as emu,
        emu.client(poll=PollPolicy(initial=0.05)) as kit,
    ):
        assert_type(kit, Client)
        arrangements = [a async for a in kit.imuze.arrangements.list()]
        assert_type(arrangements, list[Arrangement])
        job = await kit.imuze.songs.create(
            title="Morning Song",
            arrangement_id=arrangements[0].id,
            tags=["piano"],
            desired_length=10,
        )
        assert_type(job, Job[Song])
        song = await job.wait(timeout=30)
        assert_type(song, Song)
        genres = await kit.joplin.genres()
        structure = Structure.parse("intro:0.2,verse:0.6,outro:0.2")
        music_job = await kit.joplin.musics.create(
            genres[0].name, genres[0].subgenres[0], 10_000, structure
        )
        assert_type(music_job, Job[Music])
        music = await music_job.wait(timeout=30)
        assert_type(music, Music)
        assert job.state is JobState.READY
        paths = [await kit.download(song, out), await kit.download(music, out)]
        assert_type(paths, list[pathlib.Path])
        return paths


if __name__ == "__main__":
    for path in asyncio.run(main(pathlib.Path(sys.argv[1]))):
        print(path.name, path.stat().st_size)
