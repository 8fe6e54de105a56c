"""Mureka (useapi.net): parsers on the seeds' bodies (verbatim), builders, driver, slots."""

from __future__ import annotations

import asyncio
import json
import re
import textwrap
from typing import Any

import pytest

from imuzekit import errors
from imuzekit._paging import Page
from imuzekit._transport import Transport
from imuzekit.jobs import JobState
from imuzekit.providers.mureka import Feed, Song, _api
from imuzekit.providers.mureka._slots import AccountSlots
from tests.conftest import require_seed, response_for, sample

BASE = "https://api.useapi.net/v1/mureka"


def test_seed_music_list_parses_verbatim() -> None:
    page = _api.parse_feed_page(response_for(sample("mureka", "list_200"), provider="mureka"))
    assert page.total == 9623 and page.more is True and page.cursor == 123456789
    assert [f.feed_id for f in page.items] == [111222333, 444555666]
    first = page.items[0]
    assert first.complete and first.is_accelerated is True
    song = first.songs[0]
    assert song.song_id == "user:777-mureka:123456789-song:111122222"
    assert song.genres == ("rock", "metal") and song.moods[0] == "majestic"
    assert song.duration_milliseconds == 123456 and song.version == "1"
    assert song.mp3_url == "https://<download link>.mp3"


def test_seed_song_detail_parses_verbatim() -> None:
    detail = _api.parse_song_detail(response_for(sample("mureka", "song_200")))
    assert detail.feed_id == 998877665544332211
    assert (
        detail.user is not None
        and detail.user.user_id == 987654321
        and detail.user.id == "987654321"
    )
    rows = detail.song.lyrics[0].rows
    assert [(r.start, r.end, r.text) for r in rows] == [
        (1, 100, "lyrics here"),
        (200, 300, "lyrics continues"),
    ]
    assert detail.song.video is not None and detail.song.video.video_url is None


@pytest.mark.parametrize(
    ("name", "cls", "message"),
    [
        ("list_400", errors.BadRequestError, "<Error message>"),
        ("list_401", errors.AuthenticationError, "Unauthorized"),
        ("song_400", errors.BadRequestError, "<Error message>"),
        ("song_401", errors.AuthenticationError, "Unauthorized"),
        ("song_404", errors.NotFoundError, "The song has been deleted"),
    ],
)
def test_seed_error_bodies_map_to_typed_errors(
    name: str, cls: type[errors.APIError], message: str
) -> None:
    status = int(name.rsplit("_", 1)[1])
    response = response_for(sample("mureka", name), status=status, provider="mureka")
    error = Transport().error_for(response)
    assert type(error) is cls
    assert error.message == message and error.provider == "mureka"


def test_samples_are_the_seed_bodies() -> None:
    names = {
        "002_c137e2abe7489977.txt": "list",
        "003_771e5dea5eac4d3c.txt": "song",
    }
    for seed, prefix in names.items():
        text = require_seed(seed).read_text()
        found = re.findall(r"• (\d{3}) [^\n]*\n\n((?:    [^\n]*\n|\n)+?)    \n", text)
        assert found
        for status, body in found:
            assert json.loads(textwrap.dedent(body)) == json.loads(
                sample("mureka", f"{prefix}_{status}")
            )


def test_song_ids_may_be_numbers_and_are_url_encoded() -> None:
    song = _api.parse_song_detail(response_for({"song": {"song_id": 123456}})).song
    assert song.song_id == "123456"
    request = _api.build_get_song(BASE, "user:777-mureka:1-song:2")
    assert request.url == f"{BASE}/music/user%3A777-mureka%3A1-song%3A2"
    with pytest.raises(errors.ValidationError):
        _api.build_get_song(BASE, "")


def test_music_list_requests_follow_last_id() -> None:
    first = _api.build_list_music(BASE, account="a1", expand=True)
    assert first.url == f"{BASE}/music/"
    assert dict(first.params) == {"account": "a1", "expand": "true"}
    feed = Feed(feed_id=1)
    following = _api.next_music_request(first, Page(items=[feed], cursor=42, more=True))
    assert following is not None and dict(following.params)["last_id"] == "42"
    assert _api.next_music_request(first, Page(items=[feed], cursor=42, more=False)) is None
    assert _api.next_music_request(first, Page(items=[], cursor=42, more=True)) is None


def test_create_sends_async_and_account_with_its_own_gate() -> None:
    request = _api.build_create(BASE, "create", account="a1", prompt="ska", model="V8")
    assert request.json == {"prompt": "ska", "model": "V8", "account": "a1", "async": True}
    assert request.rate_key == "mureka:a1"
    assert request.url == f"{BASE}/music/create"
    bare = _api.build_create(BASE, "create-instrumental", account=None)
    assert bare.json == {"async": True}


@pytest.mark.parametrize(
    ("route", "fields", "field"),
    [
        ("create", {"prompt": "x" * 3001}, "prompt"),
        ("create-instrumental", {"prompt": "x" * 1001}, "prompt"),
        ("create-instrumental", {"title": "x" * 51}, "title"),
        ("create-advanced", {"lyrics": "x" * 5001}, "lyrics"),
        ("create-advanced", {"lyrics": "la", "title": "x" * 51}, "title"),
        ("create-advanced", {"lyrics": "la", "desc": "x" * 1001}, "desc"),
        ("create-advanced", {"title": "no lyrics"}, "lyrics"),
        ("create", {"prompt": 5}, "prompt"),
    ],
)
def test_create_limits_are_checked_before_sending(
    route: str, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(errors.ValidationError) as info:
        _api.build_create(BASE, route, account=None, **fields)
    assert info.value.field == field


def test_create_limits_allow_exactly_the_maximum() -> None:
    _api.build_create(BASE, "create", account=None, prompt="x" * 3000)
    _api.build_create(BASE, "create-instrumental", account=None, prompt="x" * 1000, title="t" * 50)
    _api.build_create(
        BASE, "create-advanced", account=None, lyrics="x" * 5000, title="t" * 50, desc="d" * 1000
    )


def _record(status: str, **extra: Any) -> dict[str, Any]:
    return {"jobid": "j1", "verb": "music/create", "status": status, **extra}


FEED = {"feed_id": 7, "state": 3, "songs": [{"song_id": "s1", "mp3_url": "https://x/1.mp3"}]}


def test_driver_states() -> None:
    driver = _api.FeedDriver(BASE)
    created = driver.parse_status("j1", response_for(_record("created")), None)
    assert created.state is JobState.QUEUED
    done = driver.parse_status("j1", response_for(_record("completed", response=FEED)), None)
    assert done.state is JobState.READY and done.result is not None and done.result.feed_id == 7
    failed = driver.parse_status(
        "j1",
        response_for(_record("failed", error="Moderation failed", errorDetails="lyrics refused")),
        None,
    )
    assert failed.state is JobState.FAILED
    assert failed.error == "Moderation failed: lyrics refused"
    odd = driver.parse_status(
        "j1", response_for(_record("weird", response={**FEED, "state": 9})), None
    )
    assert odd.state is JobState.PROCESSING and odd.raw_status == "weird"
    with pytest.raises(errors.ParseError):
        driver.parse_status("j1", response_for(_record("completed")), None)


def test_driver_failure_states_from_config() -> None:
    driver = _api.FeedDriver(BASE, failure_states=frozenset({4}))
    status = driver.parse_status(
        "j1", response_for(_record("created", response={**FEED, "state": 4})), None
    )
    assert status.state is JobState.FAILED and "4" in (status.error or "")


def test_driver_batch_marks_running_jobs_only() -> None:
    driver = _api.FeedDriver(BASE)
    body = {
        "total": 1,
        "accounts": {"a1": {"total": 1, "jobs": [{"jobid": "j1", "verb": "music/create"}]}},
        "availableAccounts": ["a1", "a2"],
    }
    statuses, more = driver.parse_batch(response_for(body), 1, {"j1": None, "j2": None})
    assert more is False
    assert set(statuses) == {"j1"}  # j2 left the running list: fetched on its own
    assert statuses["j1"].state is JobState.PROCESSING
    running = _api.parse_running_jobs(response_for(body))
    assert running.running("a1") == 1 and running.available_accounts == ("a1", "a2")


def test_song_download_spec_names_title_and_version() -> None:
    song = Song(
        song_id="user:1-mureka:2-song:12345", title="Trains", version="2", mp3_url="https://c/x.mp3"
    )
    spec = song.download_spec()
    assert spec.name == "Trains v2 (12345)" and spec.auth is False
    with pytest.raises(errors.ValidationError):
        Song(song_id="s").download_spec()


async def test_slots_pick_least_busy_and_wait_when_full() -> None:
    slots = AccountSlots(("a1", "a2"), limit=2, resync_every=60)

    async def no_refresh() -> dict[str, set[str]]:
        return {}

    picked = [await slots.acquire(None, no_refresh, timeout=1) for _ in range(4)]
    assert sorted(picked) == ["a1", "a1", "a2", "a2"]
    for n, account in enumerate(picked):
        slots.commit(account, f"j{n}")
    waiter = asyncio.create_task(slots.acquire(None, no_refresh, timeout=5))
    await asyncio.sleep(0.02)
    assert not waiter.done()  # every account is full: it waits, it does not fail
    slots.finished("j1")
    assert await asyncio.wait_for(waiter, 1) == picked[1]
    with pytest.raises(errors.RateLimitError):
        await slots.acquire(None, no_refresh, timeout=0.05)


async def test_slots_backoff_pauses_one_account_and_resync_frees() -> None:
    slots = AccountSlots(("a1", "a2"), limit=1, resync_every=0.01)
    slots.backoff("a1", 30)

    async def refresh() -> dict[str, set[str]]:
        return {"a1": set(), "a2": set()}

    assert await slots.acquire(None, refresh, timeout=1) == "a2"
    slots.commit("a2", "j9")
    # a2 is full, a1 is paused: the resync from the service frees a2 (j9 finished remotely).
    assert await slots.acquire(None, refresh, timeout=1) == "a2"


# -- seeds 002/003: "all fields are optional" and numbers are `number` ------------------------


def _seed_list_with_odd_items() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(sample("mureka", "list_200"))
    first, second = data["list"]
    del first["feed_id"]  # a feed without its id
    del first["songs"][1]["song_id"]  # a song without its id
    second["songs"][0]["duration_milliseconds"] = 123456.5  # a fractional number
    second["songs"][1]["generate_at"] = 1733100000.25
    return data


def test_feed_without_id_song_without_id_and_fractional_numbers_keep_the_page() -> None:
    page = _api.parse_feed_page(response_for(_seed_list_with_odd_items(), provider="mureka"))
    first, second = page.items
    assert first.feed_id is None and first.complete and len(first.songs) == 2
    assert first.songs[0].song_id == "user:777-mureka:123456789-song:111122222"
    assert first.songs[1].song_id is None and first.songs[1].title == "<song title>"
    assert second.feed_id == 444555666
    assert second.songs[0].duration_milliseconds == 123456.5
    assert second.songs[1].generate_at == 1733100000.25
    assert type(second.songs[1].duration_milliseconds) is int  # whole numbers stay ints
    assert page.total == 9623 and page.cursor == 123456789


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("machine_audit_state", 1.5),
        ("credit_type", 2.5),
        ("duration_milliseconds", "1234.5"),
        ("wave_list", [0.25, 1, 0.5]),
    ],
)
def test_song_numbers_may_be_fractional(field: str, value: Any) -> None:
    detail = _api.parse_song_detail(response_for({"song": {"song_id": "s", field: value}}))
    read = getattr(detail.song, field)
    expected = tuple(value) if isinstance(value, list) else float(value)
    assert read == expected


def test_lyric_timings_may_be_fractional() -> None:
    body = {
        "song": {
            "lyrics": [
                {"seg_type": 1, "start": 0.5, "end": 99.5, "rows": [{"start": 1.25, "text": "x"}]}
            ]
        }
    }
    section = _api.parse_song_detail(response_for(body)).song.lyrics[0]
    assert (section.start, section.end, section.rows[0].start) == (0.5, 99.5, 1.25)
    assert section.seg_type == 1 and section.rows[0].end is None


@pytest.mark.parametrize("value", [True, "many", [1]])
def test_a_number_that_is_not_a_number_is_a_parse_error_with_its_path(value: Any) -> None:
    body = {"song": {"song_id": "s", "duration_milliseconds": value}}
    with pytest.raises(errors.ParseError) as info:
        _api.parse_song_detail(response_for(body))
    assert "duration_milliseconds" in str(info.value.path)


def test_song_detail_without_song_id_is_read() -> None:
    detail = _api.parse_song_detail(response_for({"song": {"title": "t"}, "feed_id": 1.0}))
    assert detail.song.song_id is None and detail.song.title == "t" and detail.feed_id == 1


def test_get_of_a_missing_song_id_names_the_field_before_sending() -> None:
    with pytest.raises(errors.ValidationError, match="without a song_id") as info:
        _api.build_get_song(BASE, None)  # type: ignore[arg-type]
    assert info.value.field == "song_id"


def test_a_song_without_song_id_still_downloads_under_a_stable_name() -> None:
    one = Song(title="Trains", version="1", mp3_url="https://c/a.mp3")
    other = Song(title="Trains", version="1", mp3_url="https://c/b.mp3")
    assert one.download_spec().name.startswith("Trains v1 (")
    assert one.download_spec().name == one.download_spec().name
    assert one.download_spec().name != other.download_spec().name
