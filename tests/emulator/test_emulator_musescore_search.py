"""The emulated MuseScore.com: formats (JSON, XML, JSONP), the seeded catalogue and search
against a recomputation. Raw aiohttp on 127.0.0.1 only."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

import aiohttp
import pytest

from imuzekit.emulator import Emulator
from imuzekit.emulator.musescore import DEMO_USER_ID, MuseScoreError

from ._musescore_helpers import (
    ALL_LICENSES,
    all_pages,
    auth,
    expected_search,
    jsonp_payload,
    key,
    other_public_score,
    rest,
    send,
)

# --- formats --------------------------------------------------------------------------------


def xml_value(element: ET.Element) -> Any:
    """An XML element back to the JSON value it renders (arrays by ``is_array``)."""
    if element.get("is_array") == "true":
        items = [xml_value(child) for child in element]
        if element.tag == "parts":
            return [{"part": item} for item in items]
        return items
    if len(element):
        return {child.tag: xml_value(child) for child in element}
    return element.text


def normalize(value: Any) -> Any:
    """JSON values as XML text renders them: everything a string, null and "" alike."""
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@pytest.mark.parametrize(
    ("path", "root"),
    [
        ("/score/{id}", "score"),
        ("/score/{id}/time", "events"),
        ("/score/{id}/space", "elements"),
        ("/score/time/{id}", "events"),
        ("/score", "scores"),
        ("/user/5", "user"),
        ("/user/5/score", "scores"),
    ],
)
async def test_every_format_carries_the_same_data(
    emu: Emulator, anon: aiohttp.ClientSession, path: str, root: str
) -> None:
    path = path.format(id=other_public_score(emu.musescore))
    plain = await send(anon, "GET", rest(emu, path), key=key(emu))
    as_json = await send(anon, "GET", rest(emu, path + ".json"), key=key(emu))
    assert plain.content_type == as_json.content_type == "application/json"
    data = as_json.json()
    assert plain.json() == data
    jsonp = await send(
        anon, "GET", rest(emu, path + ".jsonp"), key=key(emu), params={"callback": "my.cb_1"}
    )
    assert jsonp.content_type == "application/javascript"
    assert jsonp_payload(jsonp, "my.cb_1") == data
    as_xml = await send(anon, "GET", rest(emu, path + ".xml"), key=key(emu))
    assert as_xml.content_type == "application/xml"
    assert as_xml.text.startswith('<?xml version="1.0" encoding="utf-8"?>\n')
    element = ET.fromstring(as_xml.body)
    assert element.tag == root
    assert xml_value(element) == normalize(data)


async def test_xml_follows_the_reference_style(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    ms = emu.musescore
    score = next(
        s for s in ms.scores.values() if len(s.metadata.parts) >= 2 and s.sharing == "public"
    )
    reply = await send(anon, "GET", rest(emu, f"/score/{score.id}.xml"), key=key(emu))
    root = ET.fromstring(reply.body)
    parts = root.find("metadata/parts")
    assert parts is not None and parts.get("is_array") == "true"
    assert [(p.findtext("name"), p.findtext("program")) for p in parts.findall("part")] == [
        (part.name, str(part.program)) for part in score.metadata.parts
    ]
    reply = await send(anon, "GET", rest(emu, f"/score/{score.id}/time.xml"), key=key(emu))
    events = ET.fromstring(reply.body)
    assert events.get("is_array") == "true"
    first = events.find("event")
    assert first is not None
    assert (first.findtext("elid"), first.findtext("position")) == ("0", "0")
    reply = await send(anon, "GET", rest(emu, f"/score/{score.id}/space.xml"), key=key(emu))
    element = ET.fromstring(reply.body).find("element")
    assert element is not None
    assert [child.tag for child in element] == ["id", "x", "y", "sx", "sy", "page"]
    reply = await send(anon, "GET", rest(emu, "/user/5.xml"), key=key(emu))
    assert reply.text.split("\n", 1)[1].startswith("<user><id>5</id><name>Nicolas</name>")


async def test_format_problems(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    reply = await send(anon, "GET", rest(emu, "/score.yaml"), key=key(emu))
    assert reply.status == 400 and "format" in reply.error()
    reply = await send(anon, "GET", rest(emu, "/score.jsonp"), key=key(emu))
    assert reply.status == 400 and "callback" in reply.error()
    for callback in ("alert(1)", "a b", "1abc", "x;y"):
        reply = await send(
            anon, "GET", rest(emu, "/score.jsonp"), key=key(emu), params={"callback": callback}
        )
        assert reply.status == 400
    # Errors come in the format asked for.
    reply = await send(anon, "GET", rest(emu, "/score/999999999.xml"), key=key(emu))
    assert reply.status == 404
    assert reply.text.endswith("<result><error>Not found</error><code>404</code></result>\n")
    reply = await send(
        anon, "GET", rest(emu, "/score/999999999.jsonp"), key=key(emu), params={"callback": "f"}
    )
    assert reply.status == 404
    assert jsonp_payload(reply, "f") == {"error": "Not found", "code": 404}
    reply = await send(anon, "GET", rest(emu, "/me.xml"), key=key(emu))
    assert reply.status == 401 and "<result><error>" in reply.text
    reply = await send(anon, "GET", rest(emu, "/score/abc.json"), key=key(emu))
    assert (reply.status, reply.error()) == (404, "Not found")


# --- catalogue and search -------------------------------------------------------------------


async def test_catalogue_is_seeded_and_deterministic(emu: Emulator) -> None:
    ms = emu.musescore
    scores = list(ms.scores.values())
    assert sum(s.sharing == "public" for s in scores) == 300
    assert sum(s.sharing == "private" for s in scores) == 24
    assert len(ms.users) == 20
    assert len({s.user_id for s in scores}) == 20
    assert sum(s.sharing == "private" and s.user_id == DEMO_USER_ID for s in scores) >= 3
    assert all(re.fullmatch(r"[0-9a-f]{10}", s.secret) for s in scores)
    # Every filter has matches and non-matches.
    counts = {len(s.metadata.parts) for s in scores}
    assert counts == {1, 2, 3, 4, 5, 6}
    programs = set().union(*(s.metadata.programs for s in scores))
    assert {0, 73, 40, 42, 24, 56, 71, 52, 128, -1} <= programs
    assert {s.language for s in scores} >= {"en", "fr", "de", "es", "it", None, ""}
    assert {s.license for s in scores} == ALL_LICENSES

    async with Emulator(seed=0) as same, Emulator(seed=1) as other:
        origin = "http://x"
        dumped = [ms.score_json(s, origin) for s in scores]
        assert [same.musescore.score_json(s, origin) for s in same.musescore.scores.values()] == (
            dumped
        )
        assert [
            other.musescore.score_json(s, origin) for s in other.musescore.scores.values()
        ] != dumped


SEARCHES: list[dict[str, str]] = [
    {},
    {"text": "bach"},
    {"text": "MOZART"},
    {"text": "piano"},
    {"text": '"Canon in D"'},
    {"text": "for"},
    {"text": "é"},
    {"text": "zzz-no-such-thing"},
    {"part": "0"},
    {"part": "0,73"},
    {"part": "40,42"},
    {"part": "128"},
    {"part": "-1"},
    {"part": "52", "sort": "view_count"},
    {"parts": "1"},
    {"parts": "4", "sort": "comment_count"},
    {"parts": "6"},
    {"parts": "0"},
    {"language": "fr"},
    {"language": "EN"},
    {"license": "to_share"},
    {"license": "to_use_commercially", "sort": "date_uploaded"},
    {"license": "to_modify_commercially"},
    {"license": "to_play", "sort": "relevance"},
    {"sort": "view_count"},
    {"sort": "date_uploaded"},
    {"sort": "comment_count"},
    {"text": "sonata", "part": "0", "sort": "view_count"},
    {"text": "a", "parts": "2", "license": "to_share", "language": "en"},
]


def to_expected_args(query: dict[str, str]) -> dict[str, Any]:
    """The helper's keyword arguments for a query."""
    args: dict[str, Any] = {}
    if "text" in query:
        args["text"] = query["text"]
    if "part" in query:
        args["part"] = [int(p) for p in query["part"].split(",")]
    if "parts" in query:
        args["parts"] = int(query["parts"])
    if "language" in query:
        args["language"] = query["language"].lower()
    for name in ("license", "sort"):
        if name in query:
            args[name] = query[name]
    return args


@pytest.mark.parametrize(
    "query", SEARCHES, ids=lambda q: "&".join(f"{k}={v}" for k, v in q.items())
)
async def test_search_matches_a_recomputation(
    emu: Emulator, anon: aiohttp.ClientSession, query: dict[str, str]
) -> None:
    ms = emu.musescore
    expected = expected_search(ms, **to_expected_args(query))
    if query.get("text") == "zzz-no-such-thing" or query.get("parts") == "0":
        assert expected == []
    elif query:
        # A real filter: some scores match, some do not (or the order differs).
        assert expected
        assert len(expected) < 300 or "sort" in query
    ids, sizes = await all_pages(anon, rest(emu, "/score.json"), query, key=key(emu))
    assert ids == expected
    assert all(size == 20 for size in sizes[:-1]) and sizes[-1] < 20
    # The method behind the route gives the same answer.
    assert [s.id for s in ms.search(**query)] == expected[:20]


async def test_relevance_ranks_by_matching_fields(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    ms = emu.musescore
    ids = [int(s["id"]) for s in (await send(
        anon, "GET", rest(emu, "/score.json"), key=key(emu), params={"text": "bach"}
    )).json()]  # fmt: skip
    ranks = []
    for score_id in ids:
        score = ms.scores[score_id]
        fields = (score.title, score.description, score.metadata.composer or "")
        ranks.append(sum("bach" in field.lower() for field in fields))
    assert ranks == sorted(ranks, reverse=True)
    assert ranks[0] >= 2 and ranks[-1] >= 1


async def test_search_pages(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    expected = expected_search(emu.musescore)
    assert len(expected) == 300
    ids, sizes = await all_pages(anon, rest(emu, "/score.json"), {}, key=key(emu))
    assert ids == expected
    assert sizes == [20] * 15 + [0]
    # A filter with a short last page.
    query = {"part": "0"}
    expected = expected_search(emu.musescore, part=[0])
    ids, sizes = await all_pages(anon, rest(emu, "/score.json"), query, key=key(emu))
    assert ids == expected
    assert sizes[-1] == len(expected) % 20 != 0
    beyond = await send(
        anon, "GET", rest(emu, "/score.json"), key=key(emu), params={"page": "9999"}
    )
    assert beyond.json() == []


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("part", "129"),
        ("part", "-2"),
        ("part", "piano"),
        ("part", "0,,73"),
        ("part", "1.5"),
        ("parts", "-1"),
        ("parts", "two"),
        ("language", "english"),
        ("language", "e1"),
        ("license", "to_steal"),
        ("sort", "title"),
        ("page", "-1"),
        ("page", "1.0"),
        ("page", "x"),
    ],
)
async def test_search_rejects_invalid_values(
    emu: Emulator, anon: aiohttp.ClientSession, param: str, value: str
) -> None:
    reply = await send(anon, "GET", rest(emu, "/score.json"), key=key(emu), params={param: value})
    assert reply.status == 400
    assert reply.error().startswith(f"{param}:")
    with pytest.raises(MuseScoreError):
        emu.musescore.search(**{param: value})


async def test_signed_search_adds_the_signers_private_scores(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    ms = emu.musescore
    public_ids, _ = await all_pages(anon, rest(emu, "/score.json"), {}, key=key(emu))
    signed_ids, _ = await all_pages(anon, rest(emu, "/score.json"), {}, signer=auth(emu))
    added = set(signed_ids) - set(public_ids)
    assert added == {
        s.id for s in ms.scores.values() if s.sharing == "private" and s.user_id == DEMO_USER_ID
    }
    assert signed_ids == expected_search(ms, viewer_id=DEMO_USER_ID)
    two_legged, _ = await all_pages(
        anon, rest(emu, "/score.json"), {}, signer=auth(emu, user=False)
    )
    assert two_legged == public_ids


async def test_user_scores(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    ms = emu.musescore
    url = rest(emu, f"/user/{DEMO_USER_ID}/score.json")
    ids, _ = await all_pages(anon, url, {}, key=key(emu))
    assert ids == expected_search(ms, user_id=DEMO_USER_ID)
    assert ids and all(ms.scores[i].user_id == DEMO_USER_ID for i in ids)
    mine, _ = await all_pages(anon, url, {}, signer=auth(emu))
    assert mine == expected_search(ms, user_id=DEMO_USER_ID, viewer_id=DEMO_USER_ID)
    assert len(mine) > len(ids)
    # Someone else's list never shows their private scores to the demo user.
    url = rest(emu, "/user/5/score.json")
    theirs, _ = await all_pages(anon, url, {"sort": "view_count"}, signer=auth(emu))
    assert theirs == expected_search(ms, user_id=5, sort="view_count")
    by_name = await send(anon, "GET", rest(emu, "/user/nicolas/score.json"), key=key(emu))
    assert [int(s["id"]) for s in by_name.json()] == expected_search(ms, user_id=5)[:20]
    reply = await send(anon, "GET", rest(emu, "/user/999/score.json"), key=key(emu))
    assert (reply.status, reply.error()) == (404, "Not found")
