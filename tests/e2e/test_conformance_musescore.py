"""Seed 004 (MuseScore.com REST API) row by row, through the public API against the emulator.

Each test names the seed rows it covers; `docs/conformance.md` points at these node ids. The raw
JSON is read through the same client's transport (OAuth-signed the same way), so a test checks
both that the emulator sends the seed's field and that the SDK reads it into its model.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest

from imuzekit import Client, PollPolicy
from imuzekit._http import Request
from imuzekit.emulator import Emulator
from imuzekit.providers.musescore import Score
from tests._configs import musescore_config

SCORE_FIELDS = [
    "id",
    "vid",
    "dates.posted",
    "dates.lastupdate",
    "secret",
    "uri",
    "permalink",
    "user.uid",
    "user.username",
    "status",
    "sharing",
    "comment_count",
    "favoriting_count",
    "view_count",
    "playback_count",
    "download_count",
    "genre",
    "format",
    "license",
    "language",
    "title",
    "description",
    "metadata.title",
    "metadata.subtitle",
    "metadata.composer",
    "metadata.poet",
    "metadata.pages",
    "metadata.measures",
    "metadata.lyrics",
    "metadata.chordnames",
    "metadata.keysig",
    "metadata.duration",
    "metadata.dimensions",
    "metadata.parts",
]
OEMBED_FIELDS = [
    "type",
    "version",
    "provider_name",
    "width",
    "height",
    "provider_url",
    "html",
    "title",
    "author_name",
    "author_url",
    "original_url",
]


async def _raw(kit: Client, url: str, **params: str) -> Any:
    request = Request("GET", url, provider="musescore", params=params)
    return json.loads((await kit.transport.send(request)).body)


def _pick(value: Any, path: str) -> Any:
    for name in path.split("."):
        value = value.get(name) if isinstance(value, dict) else getattr(value, name)
    return value


def _same(model: Any, raw: Any) -> bool:
    """The seed sends numbers as strings or numbers and dates as unix seconds."""
    if hasattr(model, "timestamp"):
        return int(model.timestamp()) == int(raw)
    if isinstance(model, tuple):  # metadata.parts
        return [(p.name, p.program) for p in model] == [
            (p["part"]["name"], int(p["part"]["program"])) for p in raw
        ]
    if isinstance(model, int) and not isinstance(raw, int):
        return model == int(raw)
    if model is None and raw == "":
        return True  # an empty text is read as "not given"
    return bool(model == raw)


@pytest.mark.parametrize("field", SCORE_FIELDS)
async def test_score_object_field(emu: Emulator, field: str) -> None:
    # The Score object, every field of the seed's JSON example, through GET /score/{id}
    async with Client(musescore=musescore_config(emu)) as kit:
        first = (await kit.musescore.scores.search(limit=1).collect())[0]
        score = await kit.musescore.scores.get(first.id)
        raw = await _raw(kit, f"{emu.urls['musescore']}/score/{first.id}.json")
    parent, _, name = field.rpartition(".")
    assert name in (_pick(raw, parent) if parent else raw)  # present, possibly null
    assert _same(_pick(score, field), _pick(raw, field)), (_pick(score, field), _pick(raw, field))


@pytest.mark.parametrize("field", ["id", "name", "permalink", "uri"])
async def test_user_object_field(emu: Emulator, field: str) -> None:
    # The User object from GET /me and GET /user/{id}
    async with Client(musescore=musescore_config(emu)) as kit:
        me = await kit.musescore.me()
        user = await kit.musescore.users.get(me.id)
        raw = await _raw(kit, f"{emu.urls['musescore']}/me.json")
    assert _same(getattr(me, field), raw[field]) and getattr(user, field) == getattr(me, field)


@pytest.mark.parametrize("field", ["elid", "position"])
async def test_time_event_field(emu: Emulator, field: str) -> None:
    # GET /score/time/{id}: [{"elid", "position"}]
    async with Client(musescore=musescore_config(emu)) as kit:
        score = (await kit.musescore.scores.search(limit=1).collect())[0]
        events = await kit.musescore.scores.time(score.id)
        raw = await _raw(kit, f"{emu.urls['musescore']}/score/{score.id}/time.json")
    assert [getattr(e, field) for e in events] == [float(item[field]) for item in raw]


@pytest.mark.parametrize("field", ["id", "x", "y", "sx", "sy", "page"])
async def test_space_element_field(emu: Emulator, field: str) -> None:
    # GET /score/space/{id}: [{"id", "x", "y", "sx", "sy", "page"}]
    async with Client(musescore=musescore_config(emu)) as kit:
        score = (await kit.musescore.scores.search(limit=1).collect())[0]
        boxes = await kit.musescore.scores.space(score.id)
        raw = await _raw(kit, f"{emu.urls['musescore']}/score/{score.id}/space.json")
    assert boxes and [getattr(b, field) for b in boxes] == [float(item[field]) for item in raw]


async def test_unauthenticated_search_shows_only_public_scores(emu: Emulator) -> None:
    # "An unauthenticated request shows only public scores"
    async with Client(musescore=musescore_config(emu, token=None, token_secret=None)) as kit:
        scores = [s async for s in kit.musescore.scores.search()]
    public = [s.id for s in emu.musescore.scores.values() if s.sharing == "public"]
    assert scores and all(s.sharing == "public" for s in scores)
    assert {s.id for s in scores} <= set(public)


@pytest.mark.parametrize("parameter", ["score_data", "title", "description", "license", "tags"])
async def test_upload_parameter(emu: Emulator, parameter: str) -> None:
    # POST /score (multipart): score_data, title, description, license, tags (comma separated)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("piece.mscx", "<museScore><Score/></museScore>")
    data = buffer.getvalue()
    async with Client(
        musescore=musescore_config(emu), poll=PollPolicy(initial=0.05, max_interval=0.1)
    ) as kit:
        job = await kit.musescore.scores.upload(
            ("piece.mscz", data),
            "Sent Title",
            description="sent description",
            license="cc-by-sa",
            tags=["one", "two"],
        )
        emu.clock.advance(60)
        score = await job.wait(timeout=10)
    assert isinstance(score, Score)
    record = emu.musescore.scores[score.id]
    expected = {
        "score_data": (record.upload, data),
        "title": (record.title, "Sent Title"),
        "description": (record.description, "sent description"),
        "license": (record.license, "cc-by-sa"),
        "tags": (record.tags, ("one", "two")),
    }
    assert expected[parameter][0] == expected[parameter][1]


@pytest.mark.parametrize("field", OEMBED_FIELDS)
async def test_oembed_field(emu: Emulator, field: str) -> None:
    # oEmbed JSON: every field of the seed's example; width defaults to "100%", height to 394
    async with Client(musescore=musescore_config(emu)) as kit:
        score = (await kit.musescore.scores.search(limit=1).collect())[0]
        assert score.permalink is not None
        oembed = await kit.musescore.oembed(score.permalink)
        request = Request(
            "GET",
            emu.urls["musescore_oembed"],
            provider="musescore",
            params={"url": score.permalink, "format": "json"},
            auth=False,
        )
        raw = json.loads((await kit.transport.send(request)).body)
    assert getattr(oembed, field) == raw[field]
    assert (oembed.width, oembed.height) == ("100%", 394)


async def test_user_scores_list_the_owners_private_scores_only_to_the_owner(emu: Emulator) -> None:
    # GET /user/{id}/score: "If the user is authenticated, the call will also list the private
    # scores of this user."
    async with Client(musescore=musescore_config(emu)) as kit:
        me = await kit.musescore.me()
        mine = [s async for s in kit.musescore.users.scores(me.id)]
    async with Client(musescore=musescore_config(emu, token=None, token_secret=None)) as anonymous:
        public = [s async for s in anonymous.musescore.users.scores(me.id)]
    owned = [s for s in emu.musescore.scores.values() if s.user_id == me.id]
    assert {s.id for s in mine} == {s.id for s in owned}
    assert {s.id for s in public} == {s.id for s in owned if s.sharing == "public"}
    assert any(s.sharing == "private" for s in owned)


async def test_user_scores_are_searchable_like_score(emu: Emulator) -> None:
    # "This resource is searchable just like /score"
    async with Client(musescore=musescore_config(emu, token=None, token_secret=None)) as kit:
        owner = next(s.user_id for s in emu.musescore.scores.values() if s.sharing == "public")
        everything = [s async for s in kit.musescore.users.scores(owner)]
        by_views = [s async for s in kit.musescore.users.scores(owner, sort="view_count")]
    assert {s.id for s in by_views} == {s.id for s in everything}
    counts = [s.view_count or 0 for s in by_views]
    assert counts == sorted(counts, reverse=True)
    assert emu.count("musescore", "GET", "/user/*/score*") >= 2
