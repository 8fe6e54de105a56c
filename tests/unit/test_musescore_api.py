"""MuseScore.com: the seed's bodies verbatim, search validation, signing checked by oauthlib."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from oauthlib.oauth1 import RequestValidator, SignatureOnlyEndpoint

from imuzekit import errors
from imuzekit._http import FilePart, Request
from imuzekit._media import MediaKind
from imuzekit.providers.musescore import OEmbed, Part, Score, _api
from imuzekit.providers.musescore._oauth import OAuth1Credentials, OAuth1Hook, sign
from tests.conftest import require_seed, response_for, sample

BASE = "http://api.musescore.test/services/rest"
STATIC = "http://static.musescore.test"


def test_seed_score_object_parses_verbatim() -> None:
    score = _api.parse_score(response_for(sample("musescore", "score")), static_url=STATIC)
    assert score.id == 1111 and score.vid == 152152
    assert score.dates is not None
    assert score.dates.posted == dt.datetime.fromtimestamp(1370593443, tz=dt.UTC)
    assert score.user is not None and (score.user.uid, score.user.username) == (400, "Mozart")
    assert (score.comment_count, score.favoriting_count, score.view_count) == (0, 0, 14)
    assert score.download_count == 4 and score.playback_count == 6
    assert score.genre is None and score.format is None and score.language is None
    assert score.license == "all-rights-reserved"
    assert score.uri == "http://api.musescore.com/services/rest/score/1111"
    metadata = score.metadata
    assert metadata is not None
    assert (metadata.pages, metadata.measures, metadata.duration) == (9, 102, 474)
    assert metadata.subtitle is None and metadata.keysig == 0
    assert metadata.parts == (Part(name="Flute", program=73), Part(name="Piano", program=0))


@pytest.mark.parametrize(
    ("wire", "tags"),
    [
        ("a,b", ("a", "b")),
        (" piano , etude ,, ", ("piano", "etude")),
        ("", ()),
        (["a", " b ", 3, None, True], ("a", "b", "3")),
        (None, ()),
        ({"odd": "shape"}, ()),
    ],
)
def test_score_tags_are_read_from_the_comma_separated_string(wire: Any, tags: Any) -> None:
    # MuseScore's desktop app reads "tags" (one comma-separated string) and "custom_url".
    body = {"id": "7", "tags": wire, "custom_url": "my-etude"}
    score = _api.parse_score(response_for(body))
    assert (score.tags, score.custom_url) == (tags, "my-etude")


def test_score_without_tags_or_custom_url_has_none() -> None:
    score = _api.parse_score(response_for({"id": "7", "custom_url": ""}))
    assert (score.tags, score.custom_url) == ((), None)
    seed = _api.parse_score(response_for(sample("musescore", "score")))
    assert (seed.tags, seed.custom_url) == ((), None)


def test_seed_user_object_parses_verbatim() -> None:
    user = _api.parse_user(response_for(sample("musescore", "user")))
    assert (user.id, user.name) == (5, "Nicolas")
    assert user.permalink == "http://musescore.com/nicolas"


def test_seed_oembed_parses_verbatim() -> None:
    oembed = _api.parse_oembed(response_for(sample("musescore", "oembed")))
    assert oembed.width == "100%" and oembed.height == 394
    assert oembed.title == "Héléna" and oembed.author_name == "Nicolas"
    assert oembed.html is not None and "node/439/embed" in oembed.html
    sized = _api.parse_oembed(response_for({"type": "rich", "width": 640, "height": "300"}))
    assert (sized.width, sized.height) == (640, 300)
    assert isinstance(oembed, OEmbed)


def test_seed_time_and_space_xml_parse() -> None:
    time_response = response_for(
        sample("musescore", "time.xml"), headers={"Content-Type": "text/xml"}
    )
    events = _api.parse_time(time_response)
    assert [(e.elid, e.position) for e in events] == [(0, 0.0), (1, 250.0), (2, 1159.090909090909)]
    space_response = response_for(
        sample("musescore", "space.xml"), headers={"Content-Type": "text/xml"}
    )
    boxes = _api.parse_space(space_response)
    assert boxes[0].x == pytest.approx(1183.1868963254592) and boxes[0].page == 0
    assert boxes[0].sy == pytest.approx(1321.9491732283464)
    assert boxes[1].id == 1 and boxes[1].x is None  # the reference abbreviates it


def test_samples_are_the_seed_examples_verbatim() -> None:
    seed = require_seed("004_ba0ec72fffa093ba.txt")
    text = seed.read_text()
    names = ("score.json", "user.json", "oembed.json", "oembed.jsonp", "oembed.xml")
    for name in (*names, "time.xml", "space.xml", "me.xml"):
        assert sample("musescore", name).strip() in text, name


def test_json_time_and_space_and_blank_numbers() -> None:
    events = _api.parse_time(
        response_for([{"elid": "0", "position": "0"}, {"elid": 1, "position": 512.5}])
    )
    assert [(e.elid, e.position) for e in events] == [(0, 0.0), (1, 512.5)]
    score = _api.parse_score(response_for({"id": "7", "view_count": "", "metadata": {"pages": ""}}))
    assert score.view_count is None and score.metadata is not None and score.metadata.pages is None


def test_hostile_xml_is_a_parse_error() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
        b"<events><event><elid>&b;</elid></event></events>"
    )
    with pytest.raises(errors.ParseError):
        _api.parse_time(response_for(bomb, headers={"Content-Type": "text/xml"}))


def test_score_file_links() -> None:
    score = Score(id=583, secret="b364acd291", static_url=STATIC)
    assert score.file("pdf").url == f"{STATIC}/583/b364acd291/score.pdf"
    assert score.file("mid").kind is MediaKind.MIDI and score.file("mscz").kind is MediaKind.ZIP
    assert score.page(0).url == f"{STATIC}/583/b364acd291/score_0.png"
    assert score.thumbnail().url == f"{STATIC}/583/b364acd291/thumb.png"
    spec = score.file("mxl").download_spec()
    assert (spec.name, spec.suffix, spec.auth) == ("score-583-score", ".mxl", False)
    with pytest.raises(errors.ValidationError):
        score.file("doc")
    with pytest.raises(errors.ValidationError):
        score.page(-1)
    with pytest.raises(errors.ValidationError):
        Score(id=1).file("pdf")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"part": 129}, "part"),
        ({"part": -2}, "part"),
        ({"part": [0, 200]}, "part[1]"),
        ({"part": "piano"}, "part"),
        ({"part": []}, "part"),
        ({"parts": 0}, "parts"),
        ({"language": "eng"}, "language"),
        ({"language": 12}, "language"),
        ({"license": "cc-by"}, "license"),
        ({"sort": "newest"}, "sort"),
        ({"text": ""}, "text"),
    ],
)
def test_search_filters_are_validated(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(errors.ValidationError) as info:
        _api.search_params(**kwargs)
    assert info.value.field == field


def test_search_params_and_paging() -> None:
    params = _api.search_params(
        text="bach", part=[0, 73], parts=2, language="FR", license="to_share", sort="view_count"
    )
    assert params == {
        "text": "bach",
        "part": "0,73",
        "parts": "2",
        "language": "fr",
        "license": "to_share",
        "sort": "view_count",
    }
    first = _api.build_search(BASE, params)
    assert first.url == f"{BASE}/score.json" and dict(first.params)["page"] == "0"
    full = _api.Page(items=[Score(id=i) for i in range(20)])
    following = _api.next_search_request(first, full)
    assert following is not None and dict(following.params)["page"] == "1"
    assert _api.next_search_request(first, _api.Page(items=[Score(id=1)])) is None
    user = _api.build_search(BASE, {}, user_id=5)
    assert user.url == f"{BASE}/user/5/score.json"


def test_format_suffix_on_the_last_segment() -> None:
    assert _api.build_get_score(BASE, 583).url == f"{BASE}/score/583.json"
    assert _api.build_time(BASE, 583).url == f"{BASE}/score/583/time.json"
    assert _api.build_space(BASE, 583, fmt="xml").url == f"{BASE}/score/583/space.xml"
    assert _api.build_me(BASE).url == f"{BASE}/me.json"
    with pytest.raises(errors.ValidationError):
        _api.build_time(BASE, 583, fmt="yaml")


def test_upload_validation() -> None:
    ok: dict[str, Any] = {"filename": "a.mscz", "content": b"PK\x03\x04rest", "title": "T"}
    request = _api.build_upload(BASE, **ok, private=True, license="cc-by", tags=["a", "b"])
    assert dict(request.form) == {"title": "T", "private": "1", "license": "cc-by", "tags": "a,b"}
    assert request.files[0].name == "score_data" and not request.is_idempotent
    for bad, field in (
        ({**ok, "filename": "a.pdf"}, "file"),
        ({**ok, "content": b"%PDF"}, "file"),
        ({**ok, "title": ""}, "title"),
        ({**ok, "license": "gpl"}, "license"),
        ({**ok, "tags": "a,b"}, "tags"),
        ({**ok, "tags": ["a,b"]}, "tags[0]"),
    ):
        with pytest.raises(errors.ValidationError) as info:
            _api.build_upload(BASE, **bad)
        assert info.value.field == field


def test_token_answers_form_and_json() -> None:
    form = _api.parse_token(
        response_for(b"oauth_token=rt&oauth_token_secret=rts&oauth_callback_confirmed=true")
    )
    assert (form.oauth_token, form.oauth_token_secret, form.oauth_callback_confirmed) == (
        "rt",
        "rts",
        True,
    )
    assert "rts" not in repr(form)
    js = _api.parse_token(response_for({"oauth_token": "at", "oauth_token_secret": "ats"}))
    assert js.oauth_token == "at"
    with pytest.raises(errors.ParseError):
        _api.parse_token(response_for(b"error=nope"))


def test_resolve_location_stays_inside_the_api() -> None:
    def redirect(location: str) -> Any:
        return response_for(b"", status=302, headers={"Location": location})

    assert _api.parse_resolve_location(
        redirect(f"{BASE}/score/583.json?oauth_consumer_key=k"), BASE
    ) == ("score", 583)
    assert _api.parse_resolve_location(redirect(f"{BASE}/user/5.json"), BASE) == ("user", 5)
    with pytest.raises(errors.ParseError):
        _api.parse_resolve_location(redirect("http://evil.test/services/rest/score/1.json"), BASE)
    with pytest.raises(errors.ParseError):
        _api.parse_resolve_location(redirect(f"{BASE}/group/3.json"), BASE)
    with pytest.raises(errors.ValidationError):
        _api.build_resolve(BASE, "javascript:alert(1)")


# -- signing, checked by an independent implementation (oauthlib) ---------------------------


class _Validator(RequestValidator):  # type: ignore[misc]
    """Accepts the test consumer and token and checks nothing else but the signature."""

    enforce_ssl = False
    safe_characters = set(RequestValidator().safe_characters) | {"-", "_"}

    @property
    def client_key_length(self) -> tuple[int, int]:
        return (2, 50)

    @property
    def access_token_length(self) -> tuple[int, int]:
        return (2, 50)

    @property
    def nonce_length(self) -> tuple[int, int]:
        return (8, 60)

    def check_client_key(self, key: str) -> bool:
        return True

    def check_access_token(self, token: str) -> bool:
        return True

    def check_nonce(self, nonce: str) -> bool:
        return True

    def validate_client_key(self, client_key: str, request: Any) -> bool:
        return client_key == "consumer-key"

    def validate_access_token(self, client_key: str, token: str, request: Any) -> bool:
        return token == "access-token"

    def validate_timestamp_and_nonce(self, *args: Any, **kwargs: Any) -> bool:
        return True

    def get_client_secret(self, client_key: str, request: Any) -> str:
        return "consumer-sécret"

    def get_access_token_secret(self, client_key: str, token: str, request: Any) -> str:
        return "token-secret"

    @property
    def dummy_client(self) -> str:
        return "dummy"

    @property
    def dummy_access_token(self) -> str:
        return "dummy"


CREDS = OAuth1Credentials(
    consumer_key="consumer-key",
    consumer_secret="consumer-sécret",
    token="access-token",
    token_secret="token-secret",
)


def _verify(
    request: Request, body: str | None = None, headers: dict[str, str] | None = None
) -> bool:
    endpoint = SignatureOnlyEndpoint(_Validator())
    valid, _ = endpoint.validate_request(
        request.url,
        http_method=request.method,
        body=body,
        headers={**dict(request.headers), **(headers or {})},
    )
    return bool(valid)


def test_signed_query_with_spaces_and_unicode_verifies_independently() -> None:
    request = Request(
        "GET",
        f"{BASE}/score.json",
        provider="musescore",
        params={"text": "Für Elise op. 1", "page": "0"},
    )
    signed = sign(request, CREDS)
    assert signed.url_encoded and not signed.params
    assert "F%C3%BCr%20Elise%20op.%201" in signed.url
    assert _verify(signed)
    tampered = signed.with_header(
        "Authorization", signed.header("Authorization").replace('oauth_nonce="', 'oauth_nonce="x')
    )  # type: ignore[union-attr]
    assert not _verify(tampered)


def test_signed_form_body_verifies_independently() -> None:
    request = Request(
        "POST", f"{BASE}/thing.json", provider="musescore", form={"a": "b c", "é": "ü"}
    )
    signed = sign(request, CREDS)
    from urllib.parse import urlencode

    body = urlencode(signed.form)
    assert _verify(signed, body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})


def test_signed_multipart_upload_signs_the_url_only() -> None:
    request = _api.build_upload(
        BASE, filename="s.mscz", content=b"PK\x03\x04" + bytes(50), title="Étude"
    )
    signed = sign(request, CREDS)
    assert signed.files == request.files and signed.form == request.form  # body unchanged
    assert _verify(signed, body=None, headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert isinstance(signed.files[0], FilePart)


async def test_hook_adds_only_the_consumer_key_without_a_secret() -> None:
    hook = OAuth1Hook(OAuth1Credentials(consumer_key="public-key"))
    request = await hook.apply(Request("GET", f"{BASE}/score.json"), sender=None)  # type: ignore[arg-type]
    assert dict(request.params) == {"oauth_consumer_key": "public-key"}
    assert request.header("Authorization") is None
    assert "secret" not in repr(OAuth1Hook(CREDS)).lower() or "sécret" not in repr(
        OAuth1Hook(CREDS)
    )
    assert "token-secret" not in repr(CREDS) and "consumer-sécret" not in repr(CREDS)


async def test_each_attempt_gets_a_fresh_nonce() -> None:
    hook = OAuth1Hook(CREDS)
    first = await hook.apply(Request("GET", f"{BASE}/me.json"), sender=None)  # type: ignore[arg-type]
    second = await hook.apply(Request("GET", f"{BASE}/me.json"), sender=None)  # type: ignore[arg-type]
    assert first.header("Authorization") != second.header("Authorization")
