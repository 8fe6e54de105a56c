"""The emulated MuseScore.com: the score object of the reference, private scores, time and
space, upload and delete. Raw aiohttp on 127.0.0.1 only."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from typing import Any

import aiohttp
import pytest

from imuzekit.emulator import Emulator
from imuzekit.emulator._files import mscz_archive
from imuzekit.emulator.musescore import DEMO_USER_ID

from ._musescore_helpers import (
    METADATA_KEYS,
    SCORE_KEYS,
    auth,
    key,
    other_public_score,
    private_score,
    rest,
    send,
)
from .conftest import RENDER_SECONDS

# --- scores ---------------------------------------------------------------------------------


async def test_score_object_has_the_reference_shape(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    ms = emu.musescore
    score_id = other_public_score(ms)
    record = ms.scores[score_id]
    reply = await send(anon, "GET", rest(emu, f"/score/{score_id}.json"), key=key(emu))
    body = reply.json()
    assert list(body) == SCORE_KEYS
    assert list(body["metadata"]) == METADATA_KEYS
    owner = ms.users[record.user_id]
    site = emu.urls["musescore_site"]
    assert body["id"] == str(score_id) and body["vid"] == str(record.vid)
    assert body["dates"] == {"posted": str(record.posted), "lastupdate": str(record.lastupdate)}
    assert body["uri"] == rest(emu, f"/score/{score_id}")
    assert body["permalink"] == f"{site}/{owner.name.lower()}/scores/{score_id}"
    assert body["user"] == {"uid": str(owner.id), "username": owner.name}
    assert (body["status"], body["sharing"]) == ("ready", "public")
    for name in ("comment_count", "view_count", "playback_count"):
        assert body[name] == str(getattr(record, name))
    for name in ("favoriting_count", "download_count"):
        assert body[name] == getattr(record, name)
        assert isinstance(body[name], int)
    assert (body["genre"], body["format"]) == ("", "")
    assert body["language"] == record.language
    meta = body["metadata"]
    for name in ("pages", "measures", "keysig", "duration"):
        assert meta[name] == str(getattr(record.metadata, name))
    assert meta["lyrics"] in ("0", "1") and meta["chordnames"] in ("0", "1")
    assert re.fullmatch(r"\d+x\d+", meta["dimensions"])
    assert meta["parts"] == [
        {"part": {"name": p.name, "program": str(p.program)}} for p in record.metadata.parts
    ]
    # The catalogue's languages: null, "" or a code.
    languages = {s["language"] for s in (await send(
        anon, "GET", rest(emu, "/score.json"), key=key(emu), params={"parts": "2"}
    )).json()}  # fmt: skip
    assert languages <= {None, "", "en", "fr", "de", "es", "it"}


async def test_private_scores_need_the_owner_or_the_secret(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    ms = emu.musescore
    theirs = ms.scores[private_score(ms, demo=False)]
    mine = ms.scores[private_score(ms, demo=True)]
    url = rest(emu, f"/score/{theirs.id}.json")
    reply = await send(anon, "GET", url, key=key(emu))
    assert (reply.status, reply.json()) == (404, {"error": "Not found", "code": 404})
    reply = await send(anon, "GET", url, signer=auth(emu))
    assert reply.status == 404
    reply = await send(anon, "GET", url, key=key(emu), params={"secret": "0" * 10})
    assert reply.status == 404
    reply = await send(anon, "GET", url, key=key(emu), params={"secret": theirs.secret})
    assert (reply.status, reply.json()["sharing"]) == (200, "private")
    for suffix in ("time", "space"):
        reply = await send(
            anon, "GET", rest(emu, f"/score/{theirs.id}/{suffix}.json"), key=key(emu)
        )
        assert reply.status == 404
        reply = await send(
            anon,
            "GET",
            rest(emu, f"/score/{theirs.id}/{suffix}.json"),
            key=key(emu),
            params={"secret": theirs.secret},
        )
        assert reply.status == 200
    reply = await send(anon, "GET", rest(emu, f"/score/{mine.id}.json"), signer=auth(emu))
    assert reply.status == 200
    reply = await send(anon, "GET", rest(emu, f"/score/{mine.id}.json"), key=key(emu))
    assert reply.status == 404


async def test_time_and_space(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    ms = emu.musescore
    checked = 0
    for score in list(ms.scores.values())[:60]:
        if score.sharing != "public":
            continue
        meta = score.metadata
        events = (
            await send(anon, "GET", rest(emu, f"/score/{score.id}/time.json"), key=key(emu))
        ).json()
        assert [e["elid"] for e in events] == list(range(meta.measures))
        positions = [e["position"] for e in events]
        assert positions[0] == 0 and isinstance(positions[0], int)
        assert all(isinstance(p, float) for p in positions[1:])
        assert all(a < b for a, b in itertools.pairwise(positions))
        assert positions[-1] < meta.duration * 1000
        boxes = (
            await send(anon, "GET", rest(emu, f"/score/{score.id}/space.json"), key=key(emu))
        ).json()
        assert [b["id"] for b in boxes] == list(range(meta.measures))
        assert list(boxes[0]) == ["id", "x", "y", "sx", "sy", "page"]
        assert sorted({b["page"] for b in boxes}) == list(range(meta.pages))
        width_mm, height_mm = (int(v) for v in meta.dimensions.split("x"))
        page_w, page_h = width_mm / 25.4 * 1200, height_mm / 25.4 * 1200  # 1/12 px at 100 dpi
        for box in boxes:
            assert all(isinstance(box[k], float) for k in ("x", "y", "sx", "sy"))
            assert box["x"] > 0 and box["x"] + box["sx"] <= page_w + 1
            assert box["y"] > 0 and box["y"] + box["sy"] <= page_h + 1
        # Measures read left to right, top to bottom, page after page.
        order = [(b["page"], b["y"], b["x"]) for b in boxes]
        assert order == sorted(order)
        checked += 1
    assert checked > 40


# --- upload and delete ----------------------------------------------------------------------


def mscz(title: str = "Uploaded Etude") -> bytes:
    """A small MuseScore file: flute and piano, 12 measures."""
    return mscz_archive(
        title, [("Flute", 73), ("Piano", 0)], measures=12, keysig=2, composer="Me Myself"
    )


def upload_form(
    data: bytes | None = None, filename: str = "etude.mscz", **fields: str
) -> aiohttp.FormData:
    """The multipart body of ``POST /score``."""
    form = aiohttp.FormData(default_to_multipart=True)
    if data is not None:
        form.add_field(
            "score_data", data, filename=filename, content_type="application/octet-stream"
        )
    for name, value in {"title": "My upload", **fields}.items():
        form.add_field(name, value)
    return form


async def test_upload_is_processed_then_ready(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    ms = emu.musescore
    data = mscz()
    form = upload_form(
        data, description="First try", license="cc-by", tags="etude, flute ,", private="0"
    )
    reply = await send(anon, "POST", rest(emu, "/score.json"), signer=auth(emu), multipart=form)
    assert reply.status == 200, reply.text
    body = reply.json()
    assert list(body) == SCORE_KEYS
    assert (body["status"], body["sharing"], body["license"]) == ("processing", "public", "cc-by")
    assert (body["title"], body["description"]) == ("My upload", "First try")
    assert body["user"] == {"uid": str(DEMO_USER_ID), "username": "demo"}
    meta = body["metadata"]
    assert (meta["title"], meta["composer"], meta["measures"], meta["keysig"]) == (
        "Uploaded Etude", "Me Myself", "12", "2",
    )  # fmt: skip
    assert meta["parts"] == [
        {"part": {"name": "Flute", "program": "73"}},
        {"part": {"name": "Piano", "program": "0"}},
    ]
    score_id = int(body["id"])
    assert score_id > max(i for i in ms.scores if i != score_id)
    assert ms.uploads == 1
    record = ms.scores[score_id]
    assert record.tags == ("etude", "flute") and record.status == "processing"
    url = rest(emu, f"/score/{score_id}.json")
    assert (await send(anon, "GET", url, signer=auth(emu))).json()["status"] == "processing"
    assert (await send(anon, "GET", url, key=key(emu))).status == 404
    newest = await send(
        anon, "GET", rest(emu, "/score.json"), signer=auth(emu), params={"sort": "date_uploaded"}
    )
    assert score_id not in [int(s["id"]) for s in newest.json()]
    static = f"{emu.urls['musescore_static']}/{score_id}/{record.secret}/score.mscz"
    async with anon.get(static) as response:
        assert response.status == 404

    emu.clock.advance(RENDER_SECONDS)
    assert record.status == "ready"
    reply = await send(anon, "GET", url, key=key(emu))
    assert (reply.status, reply.json()["status"]) == (200, "ready")
    newest = await send(
        anon, "GET", rest(emu, "/score.json"), key=key(emu), params={"sort": "date_uploaded"}
    )
    assert int(newest.json()[0]["id"]) == score_id
    async with anon.get(static) as response:
        assert await response.read() == data
    events = await send(anon, "GET", rest(emu, f"/score/{score_id}/time.json"), key=key(emu))
    assert len(events.json()) == 12


async def test_a_private_upload(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    form = upload_form(mscz(), private="1", title="Secret draft")
    body = (
        await send(anon, "POST", rest(emu, "/score.xml"), signer=auth(emu), multipart=form)
    ).body
    root = ET.fromstring(body)
    assert (root.findtext("sharing"), root.findtext("status")) == ("private", "processing")
    score_id, secret = root.findtext("id"), root.findtext("secret")
    emu.clock.advance(RENDER_SECONDS)
    url = rest(emu, f"/score/{score_id}.json")
    assert (await send(anon, "GET", url, key=key(emu))).status == 404
    reply = await send(anon, "GET", url, key=key(emu), params={"secret": secret or ""})
    assert reply.json()["title"] == "Secret draft"


@pytest.mark.parametrize(
    ("form", "why"),
    [
        (lambda: upload_form(mscz(), filename="etude.zip"), "score_data: must be a .mscz file"),
        (lambda: upload_form(b"not a zip", filename="x.mscz"), "score_data: not a valid"),
        (lambda: upload_form(None), "score_data: a .mscz file is required"),
        (lambda: upload_form(mscz(), title=""), "title: is required"),
        (lambda: upload_form(mscz(), title="   "), "title: is required"),
        (lambda: upload_form(mscz(), title="t" * 256), "title: must be at most 255"),
        (lambda: upload_form(mscz(), license="cc-by-4.0"), "license: must be one of"),
        (lambda: upload_form(mscz(), private="maybe"), "private: must be 1 or 0"),
    ],
)
async def test_upload_validation(
    emu: Emulator, anon: aiohttp.ClientSession, form: Any, why: str
) -> None:
    reply = await send(anon, "POST", rest(emu, "/score.json"), signer=auth(emu), multipart=form())
    assert reply.status == 400
    assert reply.error().startswith(why)
    assert emu.musescore.uploads == 0


async def test_upload_needs_a_user_and_multipart(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    url = rest(emu, "/score.json")
    reply = await send(anon, "POST", url, key=key(emu), multipart=upload_form(mscz()))
    assert reply.status == 401
    reply = await send(
        anon, "POST", url, signer=auth(emu, user=False), multipart=upload_form(mscz())
    )
    assert reply.status == 401
    reply = await send(anon, "POST", url, signer=auth(emu), form={"title": "x"})
    assert (reply.status, reply.error()) == (400, "a score upload must be multipart/form-data")
    title = "t" * 255
    reply = await send(
        anon, "POST", url, signer=auth(emu), multipart=upload_form(mscz(), title=title)
    )
    assert reply.status == 200
    # A .mscz without a readable score still uploads, with default metadata.
    with_nothing = mscz_archive("x", [], measures=0, keysig=0)
    reply = await send(
        anon, "POST", url, signer=auth(emu), multipart=upload_form(with_nothing, title="Bare")
    )
    assert reply.json()["metadata"]["parts"] == [{"part": {"name": "Piano", "program": "0"}}]


async def test_delete(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    ms = emu.musescore
    theirs = other_public_score(ms)
    mine = next(s for s in ms.scores.values() if s.user_id == DEMO_USER_ID)
    secret = mine.secret
    reply = await send(anon, "DELETE", rest(emu, f"/score/{theirs}.json"), signer=auth(emu))
    assert reply.status == 403
    assert reply.error() == "Only the owner can delete a score"
    reply = await send(anon, "DELETE", rest(emu, f"/score/{mine.id}.json"), key=key(emu))
    assert reply.status == 401
    reply = await send(
        anon, "DELETE", rest(emu, f"/score/{mine.id}.json"), signer=auth(emu, user=False)
    )
    assert reply.status == 401
    hidden = private_score(ms, demo=False)
    reply = await send(anon, "DELETE", rest(emu, f"/score/{hidden}.json"), signer=auth(emu))
    assert reply.status == 404
    reply = await send(anon, "DELETE", rest(emu, "/score/999999999.json"), signer=auth(emu))
    assert reply.status == 404
    assert ms.deletions == 0

    reply = await send(anon, "DELETE", rest(emu, f"/score/{mine.id}.json"), signer=auth(emu))
    assert (reply.status, reply.json()) == (200, {"ok": True, "id": str(mine.id)})
    assert mine.id not in ms.scores and ms.deletions == 1
    reply = await send(anon, "GET", rest(emu, f"/score/{mine.id}.json"), signer=auth(emu))
    assert reply.status == 404
    async with anon.get(f"{emu.urls['musescore_static']}/{mine.id}/{secret}/score.pdf") as r:
        assert r.status == 404
    reply = await send(anon, "DELETE", rest(emu, f"/score/{mine.id}.xml"), signer=auth(emu))
    assert reply.status == 404
