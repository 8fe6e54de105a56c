"""MuseScore.com parsers: the seed's XML and JSONP examples, XML search pages, odd scores, the
upload answer, resolve's host rule and the format checks (seed 004)."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest

from imuzekit import errors
from imuzekit.providers.musescore import _api
from tests.conftest import response_for, sample

BASE = "http://api.musescore.test/services/rest"
XML = {"Content-Type": "application/xml"}


def test_seed_me_xml_parses() -> None:
    user = _api.parse_user(response_for(sample("musescore", "me.xml"), headers=XML))
    assert (user.id, user.name) == (5, "toto")


def test_seed_oembed_xml_and_jsonp_parse_like_the_json() -> None:
    as_json = _api.parse_oembed(response_for(sample("musescore", "oembed")))
    as_jsonp = _api.parse_oembed(
        response_for(sample("musescore", "oembed.jsonp"), headers={"Content-Type": "text/js"})
    )
    assert as_jsonp == as_json
    as_xml = _api.parse_oembed(response_for(sample("musescore", "oembed.xml"), headers=XML))
    assert attrs.evolve(as_xml, html=None) == attrs.evolve(as_json, html=None)
    assert as_xml.html is not None and as_xml.html.startswith('<iframe width="100%"')
    assert "node/439/embed" in as_xml.html and "Héléna</a> by <a" in as_xml.html
    assert as_xml.width == "100%" and as_xml.height == 394


def _score(score_id: int, **extra: Any) -> dict[str, Any]:
    return {"id": str(score_id), "title": f"t{score_id}", "metadata": {"pages": "1"}, **extra}


def test_xml_search_pages_read_like_json() -> None:
    body = (
        b'<?xml version="1.0"?><scores is_array="true"><score><id>7</id><title>A</title>'
        b'<metadata><duration>12.5</duration><parts is_array="true"><part><name>Flute</name>'
        b"<program>73</program></part></parts></metadata><language/></score>"
        b"<score><id>8</id></score></scores>"
    )
    page = _api.parse_search(response_for(body, headers=XML))
    assert [s.id for s in page.items] == [7, 8]
    meta = page.items[0].metadata
    assert meta is not None and meta.duration == 12.5 and meta.parts[0].program == 73
    # Without is_array: a repeated tag is a list, a lone one a list of one.
    repeated = b"<scores><score><id>1</id></score><score><id>2</id></score></scores>"
    assert [s.id for s in _api.parse_search(response_for(repeated, headers=XML)).items] == [1, 2]
    single = b"<scores><score><id>3</id></score></scores>"
    assert [s.id for s in _api.parse_search(response_for(single, headers=XML)).items] == [3]
    empty = b'<scores is_array="true"/>'
    assert _api.parse_search(response_for(empty, headers=XML)).items == ()
    jsonp = b"/**/cb([" + json.dumps(_score(4)).encode() + b"]);"
    assert [s.id for s in _api.parse_search(response_for(jsonp)).items] == [4]


def test_fractional_numbers_parse() -> None:
    data = _score(1, metadata={"duration": "474.5", "pages": "9.4", "measures": 101.5})
    score = _api.parse_score(response_for({**data, "view_count": "14.0"}))
    assert score.metadata is not None
    assert (score.metadata.duration, score.metadata.pages, score.metadata.measures) == (
        474.5,
        9,
        102,
    )
    assert score.view_count == 14
    whole = _api.parse_score(response_for(_score(2, metadata={"duration": "474"})))
    assert whole.metadata is not None and type(whole.metadata.duration) is int


def test_one_odd_score_never_fails_a_page_of_20() -> None:
    items: list[Any] = [_score(i) for i in range(1, 21)]
    items[3] = _score(4, metadata={"pages": "many", "parts": [{"part": {"program": "x"}}]})
    items[5] = _score(6, user="nobody", dates={"posted": "soon"})
    items[7] = {"title": "no id"}
    items[9] = "not a score"
    page = _api.parse_search(response_for(items))
    assert [s.id for s in page.items] == [i for i in range(1, 21) if i not in (8, 10)]
    odd = next(s for s in page.items if s.id == 4)
    assert odd.metadata is not None and odd.metadata.pages is None
    assert odd.metadata.parts[0].program is None and odd.title == "t4"
    other = next(s for s in page.items if s.id == 6)
    assert (other.user is None or other.user.uid is None) and other.title == "t6"
    assert other.dates is not None and other.dates.posted is None
    with pytest.raises(errors.ParseError):
        _api.parse_search(response_for({"error": "nope"}))


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ({"id": "41"}, None),
        ({"score_id": 41}, None),
        ({"uri": f"{BASE}/score/41"}, None),
        ({"uri": f"{BASE}/score/41.json"}, None),
        ({"permalink": "http://musescore.com/nicolas/scores/41"}, None),
        ({"score": {"id": "41"}}, None),
        (b"<score><id>41</id></score>", XML),
        (b'<?xml version="1.0"?><result><score_id>41</score_id></result>', XML),
    ],
)
def test_upload_answers_that_name_the_score(body: Any, headers: Any) -> None:
    score = _api.parse_upload(response_for(body, headers=headers), static_url="http://s")
    assert score.id == 41 and score.status is None and score.static_url == "http://s"


def test_upload_answer_that_is_a_whole_score_is_kept() -> None:
    score = _api.parse_upload(response_for(_score(41, status="processing")))
    assert (score.id, score.title, score.status) == (41, "t41", "processing")
    for nameless in ({}, {"ok": True}, {"uri": "http://x/users/5"}, ["41"]):
        with pytest.raises(errors.ParseError, match="does not name"):
            _api.parse_upload(response_for(nameless))


def test_resolve_accepts_only_a_scheme_change_on_the_same_host() -> None:
    def redirect(location: str) -> Any:
        return response_for(b"", status=302, headers={"Location": location})

    https = BASE.replace("http://", "https://")
    assert _api.parse_resolve_location(redirect(f"{https}/score/583.json"), BASE) == (
        "score",
        583,
    )
    assert _api.parse_resolve_location(redirect(f"{BASE}/user/nicolas.xml"), https) == (
        "user",
        "nicolas",
    )
    local = "http://127.0.0.1:8080/musescore/services/rest"
    assert _api.parse_resolve_location(
        redirect("https://127.0.0.1:8080/musescore/services/rest/score/1.json"), local
    ) == ("score", 1)
    for elsewhere in (
        "https://api.musescore.evil/services/rest/score/1.json",
        "https://api.musescore.test:8443/services/rest/score/1.json",
        "https://user:pw@api.musescore.test/services/rest/score/1.json",
        "ftp://api.musescore.test/services/rest/score/1.json",
        "https://api.musescore.test/elsewhere/score/1.json",
        "https://127.0.0.1:9090/musescore/services/rest/score/1.json",
    ):
        base = local if "127.0.0.1" in elsewhere else BASE
        with pytest.raises(errors.ParseError, match="outside"):
            _api.parse_resolve_location(redirect(elsewhere), base)


def test_formats_user_ids_and_pages_in_requests() -> None:
    assert _api.build_get_user(BASE, "nicolas").url == f"{BASE}/user/nicolas.json"
    assert _api.build_get_user(BASE, "5", fmt="xml").url == f"{BASE}/user/5.xml"
    request = _api.build_me(BASE, fmt="jsonp", callback="my.cb")
    assert request.url == f"{BASE}/me.jsonp" and dict(request.params) == {"callback": "my.cb"}
    assert dict(_api.build_me(BASE, fmt="jsonp").params) == {"callback": "callback"}
    search = _api.build_search(BASE, {"text": "a"}, user_id="nicolas", page=3, fmt="xml")
    assert search.url == f"{BASE}/user/nicolas/score.xml"
    assert dict(search.params) == {"text": "a", "page": "3"}
    oembed = _api.build_oembed("http://m/oembed", "http://mus.cr/1", fmt="jsonp", callback="f")
    assert dict(oembed.params) == {"url": "http://mus.cr/1", "format": "jsonp", "callback": "f"}
    for call, field in (
        (lambda: _api.build_get_user(BASE, ""), "user_id"),
        (lambda: _api.build_get_user(BASE, 0), "user_id"),
        (lambda: _api.build_search(BASE, {}, page=-1), "page"),
        (lambda: _api.build_me(BASE, fmt="html"), "format"),
        (lambda: _api.build_me(BASE, callback="f"), "callback"),
        (lambda: _api.build_me(BASE, fmt="jsonp", callback="alert(1)"), "callback"),
    ):
        with pytest.raises(errors.ValidationError) as caught:
            call()
        assert caught.value.field == field
