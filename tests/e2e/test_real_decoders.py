"""The emulator's files, read by real decoders: ffprobe and ffmpeg (mp3), pdfinfo (pdf), Pillow
(png), mido (midi), and MuseScore files of three generations uploaded through the SDK.

Seed 004 says the measure positions of ``time`` are "in sync with the MP3 and the MIDI file", and
that PNG pages are at 100 dpi. A test whose tool is missing skips and names it; with ``CI=true``
(CI installs them all) it fails instead.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import shutil
import subprocess
import tracemalloc
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from imuzekit import Client, JobState, MuseScoreConfig, PollPolicy
from imuzekit.emulator import Emulator
from imuzekit.emulator._files import mscz_archive
from imuzekit.emulator._mp3 import FRAME_DURATION
from imuzekit.emulator.musescore.files import render_file

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "mscz"


def _missing(what: str) -> None:
    message = f"{what} is not installed"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}, and CI promises it (.ci/run installs it)")
    pytest.skip(message)


def need_tool(name: str) -> str:
    """The path of the command `name`; skip (fail under CI) when it is not installed."""
    path = shutil.which(name)
    if path is None:
        _missing(name)
    assert path is not None
    return path


def need_module(name: str) -> ModuleType:
    """The Python module `name`; skip (fail under CI) when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        _missing(f"the Python package {name}")
        raise


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def ffprobe(path: Path) -> dict[str, Any]:
    """ffprobe's view of an audio file: its format and first stream."""
    result = run(
        need_tool("ffprobe"),
        "-v",
        "error",
        "-show_entries",
        "format=format_name,duration:stream=codec_name,sample_rate,channels",
        "-of",
        "json",
        str(path),
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    document = json.loads(result.stdout)
    return {**document["format"], **document["streams"][0]}


def ffmpeg_decodes(path: Path) -> None:
    """ffmpeg decodes every frame of `path` without a single complaint."""
    result = run(need_tool("ffmpeg"), "-v", "error", "-i", str(path), "-f", "null", "-")
    assert result.returncode == 0 and result.stderr == "", result.stderr


def check_mp3(path: Path, seconds: float, *, decode: bool = True) -> None:
    """ffprobe reads `path` as an mp3 lasting `seconds`, to within a frame."""
    info = ffprobe(path)
    assert (info["format_name"], info["codec_name"]) == ("mp3", "mp3")
    assert abs(float(info["duration"]) - seconds) <= FRAME_DURATION, (info, seconds)
    if decode:
        ffmpeg_decodes(path)


def musescore_config(emu: Emulator) -> MuseScoreConfig:
    extra = emu.credentials["musescore"].extra
    return MuseScoreConfig(
        consumer_key=extra["consumer_key"],
        consumer_secret=extra["consumer_secret"],
        token=extra["token"],
        token_secret=extra["token_secret"],
        base_url=emu.urls["musescore"],
        oauth_url=emu.urls["musescore_oauth"],
        authorize_url=emu.urls["musescore_authorize"],
        static_url=emu.urls["musescore_static"],
    )


def musescore(emu: Emulator) -> Client:
    return Client(musescore=musescore_config(emu), poll=PollPolicy(initial=0.05, max_interval=0.1))


def mscz_of(mscx: bytes, name: str = "score.mscx") -> bytes:
    """A ``.mscz`` as MuseScore writes it: the ``.mscx`` and a container pointing at it."""
    container = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<container><rootfiles>'
        f'<rootfile full-path="{name}"/></rootfiles></container>\n'
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("META-INF/container.xml", container)
        archive.writestr(name, mscx)
    return buffer.getvalue()


# --- mp3 ------------------------------------------------------------------------------------


async def test_ffprobe_reads_the_imuze_mp3_with_its_declared_length(
    kit: Client, tmp_path: Path
) -> None:
    need_tool("ffprobe")
    job = await kit.imuze.songs.create(title="Probe", arrangement_id=1, tags=[], desired_length=7)
    song = await job.wait(timeout=5)
    assert song.desired_length == 7
    check_mp3(await kit.download(song, tmp_path), 7)


async def test_ffprobe_reads_the_joplin_mp3_with_its_declared_duration(
    kit: Client, tmp_path: Path
) -> None:
    need_tool("ffprobe")
    job = await kit.joplin.musics.create("lofi", "sleep", 4_500, "calm:1")
    music = await job.wait(timeout=5)
    assert music.duration_ms is not None
    path = tmp_path / "joplin.mp3"
    path.write_bytes(b"".join([chunk async for chunk in kit.joplin.musics.mp3(job.id)]))
    check_mp3(path, music.duration_ms / 1000)


async def test_ffprobe_reads_the_mureka_mp3s_with_their_declared_duration(
    emu: Emulator, kit: Client, tmp_path: Path
) -> None:
    need_tool("ffprobe")
    account = emu.credentials["mureka"].extra["accounts"].split(",")[0]
    feed = await (await kit.mureka.music.create("a probe", account=account)).wait(timeout=10)
    for index, song in enumerate(feed.songs):
        assert song.duration_milliseconds is not None
        path = await kit.download(song, tmp_path / f"{index}.mp3")
        check_mp3(path, song.duration_milliseconds / 1000)


async def test_ffprobe_reads_the_musescore_mp3_lasting_the_score(
    emu: Emulator, tmp_path: Path
) -> None:
    need_tool("ffprobe")
    async with musescore(emu) as kit:
        for score in await kit.musescore.scores.search(limit=3).collect():
            assert score.metadata is not None and score.metadata.duration
            path = await kit.download(score.file("mp3"), tmp_path / f"{score.id}.mp3")
            check_mp3(path, score.metadata.duration)


async def test_the_mp3_of_a_long_score_lasts_it_all_and_costs_little(
    emu: Emulator, tmp_path: Path
) -> None:
    # 1800 measures of 4/4 at 120 bpm: an hour. The mp3 used to stop at two minutes.
    need_tool("ffprobe")
    data = mscz_archive("Long", [("Organ", 19)], measures=1800, keysig=0)
    async with musescore(emu) as kit:
        job = await kit.musescore.scores.upload(("long.mscz", data), "Long")
        emu.clock.advance(60)
        score = await job.wait(timeout=10)
        assert score.metadata is not None and score.metadata.duration == 3600
        path = await kit.download(score.file("mp3"), tmp_path / "long.mp3")
    check_mp3(path, 3600, decode=False)
    size = path.stat().st_size
    assert size <= 3600 * 1000 + 4096  # about 1 kB a second
    record = emu.musescore.scores[score.id]
    tracemalloc.start()
    try:
        rendered = render_file(record, "score.mp3")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rendered == path.read_bytes()
    assert peak <= 1.5 * size + 65536


# --- midi -----------------------------------------------------------------------------------


async def test_mido_reads_every_measure_at_the_time_positions(emu: Emulator) -> None:
    mido = need_module("mido")
    async with musescore(emu) as kit:
        scores = await kit.musescore.scores.search(limit=6).collect()
        for score in scores:
            assert score.metadata is not None
            events = await kit.musescore.scores.time(score.id)
            data = emu.musescore.file_bytes(score.id, "score.mid")
            midi = mido.MidiFile(file=io.BytesIO(data))
            now, markers, onsets = 0.0, [], set()
            for message in midi:
                now += message.time
                if message.type == "marker":
                    markers.append(now)
                elif message.type == "note_on" and message.velocity:
                    onsets.add(round(now, 3))
            positions = [event.position / 1000 for event in events]
            assert len(markers) == len(positions) == score.metadata.measures
            assert all(abs(a - b) < 0.001 for a, b in zip(markers, positions, strict=True))
            # Every measure sounds from its start, and the file lasts the score.
            assert all(round(m, 3) in onsets for m in markers)
            assert abs(midi.length - score.metadata.duration) < 0.001


# --- pdf and png ----------------------------------------------------------------------------


async def test_pdfinfo_reads_the_pdf_with_the_declared_pages(emu: Emulator, tmp_path: Path) -> None:
    tool = need_tool("pdfinfo")
    async with musescore(emu) as kit:
        scores = await kit.musescore.scores.search(limit=4).collect()
        for score in scores:
            assert score.metadata is not None
            path = await kit.download(score.file("pdf"), tmp_path / f"{score.id}.pdf")
            result = run(tool, str(path))
            assert result.returncode == 0 and result.stderr == "", result.stderr
            fields = dict(line.split(":", 1) for line in result.stdout.splitlines() if ":" in line)
            assert int(fields["Pages"]) == score.metadata.pages
            assert fields["Title"].strip() == score.metadata.title
            width_mm, height_mm = (float(v) for v in (score.metadata.dimensions or "").split("x"))
            size = fields["Page size"].split()
            assert abs(float(size[0]) - width_mm / 25.4 * 72) < 1
            assert abs(float(size[2]) - height_mm / 25.4 * 72) < 1


async def test_pillow_reads_the_pngs_at_100_dpi(emu: Emulator, tmp_path: Path) -> None:
    image_module = need_module("PIL.Image")
    async with musescore(emu) as kit:
        score = next(
            s
            for s in await kit.musescore.scores.search(limit=20).collect()
            if s.metadata is not None and (s.metadata.pages or 0) >= 2
        )
        paths = [await kit.download(score.page(1), tmp_path / "page.png")]
        paths.append(await kit.download(score.thumbnail(), tmp_path / "thumb.png"))
    for path in paths:
        with image_module.open(path) as image:
            image.load()
            assert image.format == "PNG" and image.mode == "LA"
            assert tuple(round(v, 2) for v in image.info["dpi"]) == (100, 100)


# --- mxl --------------------------------------------------------------------------------------


async def test_the_mxl_is_a_musicxml_container_that_parses(emu: Emulator, tmp_path: Path) -> None:
    async with musescore(emu) as kit:
        score = (await kit.musescore.scores.search(limit=1).collect())[0]
        path = await kit.download(score.file("mxl"), tmp_path / "score.mxl")
    assert score.metadata is not None
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        container = ET.fromstring(archive.read("META-INF/container.xml"))
        rootfile = container.find("rootfiles/rootfile")
        assert rootfile is not None
        root = ET.fromstring(archive.read(rootfile.attrib["full-path"]))
    assert root.tag == "score-partwise" and root.get("version")
    assert root.findtext("work/work-title") == score.metadata.title
    assert len(root.findall("part")) == len(score.metadata.parts)
    assert {len(part.findall("measure")) for part in root.findall("part")} == {
        score.metadata.measures
    }


# --- mscz uploads -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "title", "parts", "measures"),
    [
        ("v1_duet.mscx", "Morning Duet", ["Piano", "Flute"], 5),
        ("v2_strings.mscx", "Evening Song", ["Violin", "Violoncello"], 6),
        ("v3_band.mscx", "Night Train", ["Voice", "Drumset"], 7),
    ],
    ids=["musescore-1", "musescore-2", "musescore-3"],
)
async def test_uploads_of_each_generation_yield_title_parts_measures(
    emu: Emulator, sample: str, title: str, parts: list[str], measures: int
) -> None:
    data = mscz_of((SAMPLES / sample).read_bytes(), name=sample)
    async with musescore(emu) as kit:
        job = await kit.musescore.scores.upload(("upload.mscz", data), "Sent title")
        assert job.state in (JobState.QUEUED, JobState.PROCESSING)
        emu.clock.advance(60)
        score = await job.wait(timeout=10)
        assert score.metadata is not None
        assert score.metadata.title == title
        assert [part.name for part in score.metadata.parts] == parts
        assert score.metadata.measures == measures
        assert score.metadata.duration == measures * 2
        # The files agree with what the upload says.
        events = await kit.musescore.scores.time(score.id)
        assert len(events) == measures
