"""The Mureka creation builders send useapi.net's ``replyUrl``/``replyRef``, validated first, and
job tokens record the ``replyRef`` of a job created with callbacks (pure: no network)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from imuzekit import errors
from imuzekit.providers.mureka import _api

BASE = "https://api.useapi.net/v1/mureka"
REF = "ik1.abc.key.mac"


def body(**kwargs: Any) -> dict[str, Any]:
    request = _api.build_create(BASE, "create", account="1", prompt="a song", **kwargs)
    assert request.json is not None
    return dict(request.json)


def test_reply_fields_are_sent_with_useapi_names() -> None:
    sent = body(reply_url="https://me.example/hooks/imuzekit", reply_ref=REF)
    assert sent["replyUrl"] == "https://me.example/hooks/imuzekit"
    assert sent["replyRef"] == REF
    assert sent["async"] is True
    assert "reply_url" not in sent and "reply_ref" not in sent


def test_without_reply_fields_nothing_is_added() -> None:
    sent = body()
    assert "replyUrl" not in sent and "replyRef" not in sent


@pytest.mark.parametrize("route", ["create-advanced", "create-instrumental"])
def test_every_creation_route_takes_them(route: str) -> None:
    fields = {"lyrics": "la la"} if route == "create-advanced" else {"prompt": "calm"}
    request = _api.build_create(
        BASE, route, account=None, reply_url="http://127.0.0.1:9/h", reply_ref=REF, **fields
    )
    assert request.json is not None
    assert (request.json["replyUrl"], request.json["replyRef"]) == ("http://127.0.0.1:9/h", REF)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://me.example/h",
        "/relative/path",
        "https://",
        "https://me.example/h#frag",
        "https://me.example/a b",
        "https://mé.example/h",
        "https://me.example/" + "x" * 2100,
        "",
        42,
    ],
)
def test_bad_reply_urls_are_refused_before_sending(url: Any) -> None:
    with pytest.raises(errors.ValidationError) as caught:
        body(reply_url=url)
    assert caught.value.field == "reply_url"


@pytest.mark.parametrize("ref", ["x" * 257, "tab\there", "é", "", 7])
def test_bad_reply_refs_are_refused(ref: Any) -> None:
    with pytest.raises(errors.ValidationError) as caught:
        body(reply_url="https://me.example/h", reply_ref=ref)
    assert caught.value.field == "reply_ref"


def test_a_reply_ref_needs_a_reply_url() -> None:
    with pytest.raises(errors.ValidationError) as caught:
        body(reply_ref=REF)
    assert caught.value.field == "reply_ref"


def test_longest_ref_is_accepted() -> None:
    assert body(reply_url="https://me.example/h", reply_ref="r" * 256)["replyRef"] == "r" * 256


def test_token_records_the_reply_ref_of_a_watched_job() -> None:
    refs = {"job-1": REF}
    driver = _api.FeedDriver(BASE, reply_ref_of=refs.get)
    assert driver.token_data("job-1", None) == {"reply_ref": REF}
    assert driver.token_data("job-2", None) == {}
    assert _api.FeedDriver(BASE).token_data("job-1", None) == {}
    data = json.loads(json.dumps(driver.token_data("job-1", None)))
    assert _api.reply_ref_from_token(data) == REF
    assert _api.reply_ref_from_token({}) is None


@pytest.mark.parametrize("bad", [7, "", "x" * 300, "\x00"])
def test_a_malformed_token_ref_is_a_token_error(bad: Any) -> None:
    with pytest.raises(errors.ValidationError) as caught:
        _api.reply_ref_from_token({"reply_ref": bad})
    assert caught.value.field == "token"
