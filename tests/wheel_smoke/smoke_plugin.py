"""A user's test file, run from the installed wheel: the plugin's fixtures and its marker.

Named so that the checkout's own pytest run does not collect it; `.ci/run` copies it out of the
checkout as `test_smoke_plugin.py`.
"""

from __future__ import annotations

import pathlib

import pytest

from imuzekit import Client, JobState, errors
from imuzekit.emulator import Emulator


async def test_a_song_end_to_end(imuzekit_client: Client, tmp_path: pathlib.Path) -> None:
    arrangements = [a async for a in imuzekit_client.imuze.arrangements.list()]
    job = await imuzekit_client.imuze.songs.create(
        title="Morning Song", arrangement_id=arrangements[0].id, tags=["piano"], desired_length=10
    )
    song = await job.wait(timeout=10)
    assert job.state is JobState.READY
    path = await imuzekit_client.download(song, tmp_path)
    assert (path.parent, path.suffix) == (tmp_path, ".mp3")
    data = path.read_bytes()
    assert data[:3] == b"ID3" or data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")


@pytest.mark.imuzekit_faults(("imuze", "GET /arrangements*", {"status": 503, "times": 2}))
async def test_faults_are_installed(imuzekit_client: Client, imuzekit_emulator: Emulator) -> None:
    assert [a async for a in imuzekit_client.imuze.arrangements.list()]
    # Two 503 answers, retried by the client, then the real one.
    assert imuzekit_emulator.count("imuze", "GET", "/arrangements*") == 3


@pytest.mark.imuzekit_faults(("imuze", "GET /arrangements*", {"status": 404, "times": None}))
async def test_a_permanent_fault(imuzekit_client: Client) -> None:
    with pytest.raises(errors.NotFoundError):
        [a async for a in imuzekit_client.imuze.arrangements.list()]
