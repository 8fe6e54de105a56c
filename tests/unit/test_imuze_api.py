"""iMuze API v4: builders and parsers on the seed's bodies (verbatim) and on edge cases."""

from __future__ import annotations

import json
import re

import pytest

from imuzekit import errors
from imuzekit.jobs import JobState
from imuzekit.providers.imuze import Arrangement, Song, _api
from tests.conftest import require_seed, response_for, sample

BASE = "https://api.imuze.io/api/4"


def test_seed_arrangements_index_parses_verbatim() -> None:
    count, items = _api.parse_arrangements(response_for(sample("imuze", "arrangements_index")))
    assert count == 74444134
    assert items == [
        Arrangement(id=823127, name="quos deserunt tenetur"),
        Arrangement(id=33498342, name="necessitatibus accusamus saepe veniam omnis"),
    ]


def test_seed_arrangement_show_parses_verbatim() -> None:
    arrangement = _api.parse_arrangement(response_for(sample("imuze", "arrangement_show")))
    assert arrangement == Arrangement(
        id=14171879,
        description="omnis",
        image_url=None,
        genre_list=("iste quidem est", "ullam vitae quia", "consequatur voluptatem similique"),
    )


def test_seed_token_parses_verbatim() -> None:
    assert _api.parse_login(response_for(sample("imuze", "token_create"))).token == "et"


def test_login_also_reads_token_and_user_id_shape() -> None:
    result = _api.parse_login(response_for({"token": "abc123", "user_id": 7}))
    assert result.token == "abc123"


def test_login_without_token_is_a_parse_error() -> None:
    with pytest.raises(errors.ParseError):
        _api.parse_login(response_for({"user_id": 7}))


def test_seed_song_create_parses_with_mp3_as_mp3_url() -> None:
    song = _api.parse_song(response_for(sample("imuze", "song_create")))
    assert song.id == 9765394
    assert song.mp3_url == "accusantium aliquid"
    assert song.musical_mode == "Locrian"
    assert song.arrangement_id == 86293133
    assert song.status_channel == "sunt quo"
    assert song.status is None
    assert song.state is JobState.QUEUED


def test_seed_songs_index_parses_verbatim() -> None:
    count, songs = _api.parse_songs(response_for(sample("imuze", "songs_index")))
    assert count == 58887924
    assert [s.id for s in songs] == [94262179, 65386972]
    assert songs[1].arrangement_name == "qui"
    assert all(s.state is JobState.PROCESSING for s in songs)


def test_seed_song_show_parses_verbatim() -> None:
    song = _api.parse_song(response_for(sample("imuze", "song_show")))
    assert song == Song(
        id=6866063,
        title="nisi illo et",
        status="processing",
        mp3_url="sequi",
        arrangement_name="laboriosam fuga aut dolores non",
        timeline_url="soluta",
    )


def test_samples_are_the_seed_bodies_verbatim() -> None:
    seed = require_seed("001_d9d84d674d628908.txt")
    blocks = re.findall(r"```moonscript\n(.*?)```", seed.read_text(), re.S)
    names = [
        "arrangements_index",
        "arrangement_show",
        "token_create",
        "song_create",
        "songs_index",
        "song_show",
    ]
    assert len(blocks) == len(names)
    for name, block in zip(names, blocks, strict=True):
        assert sample("imuze", name) == block


def test_unknown_status_is_kept_raw_and_maps_to_unknown() -> None:
    song = _api.parse_song(response_for({"id": 1, "status": "rendering-v2", "extra": {"x": 1}}))
    assert song.status == "rendering-v2"
    assert song.state is JobState.UNKNOWN


def test_ready_song_maps_to_ready_and_is_downloadable() -> None:
    song = _api.parse_song(
        response_for(
            {"id": "12", "status": "ready", "mp3_url": "https://cdn.test/a.mp3", "title": "T"}
        )
    )
    assert song.id == 12  # numeric strings are accepted
    assert song.state is JobState.READY
    spec = song.download_spec()
    assert spec.url == "https://cdn.test/a.mp3"
    assert spec.suffix == ".mp3"


def test_processing_song_is_not_downloadable() -> None:
    song = Song(id=3, status="processing", mp3_url="https://cdn.test/a.mp3")
    with pytest.raises(errors.ValidationError, match="not ready"):
        song.download_spec()


def test_wrong_shapes_raise_parse_error_with_path() -> None:
    with pytest.raises(errors.ParseError) as info:
        _api.parse_songs(response_for({"count": 2, "response": [{"id": 1}, {"id": "x"}]}))
    assert info.value.path.startswith("$.response[1]")
    with pytest.raises(errors.ParseError):
        _api.parse_songs(response_for({"count": 1, "response": "nope"}))
    with pytest.raises(errors.ParseError):
        _api.parse_song(response_for("<html>502 Bad Gateway</html>"))
    with pytest.raises(errors.ParseError):
        _api.parse_song(response_for([1, 2]))


def test_tags_given_as_string_are_refused_not_split() -> None:
    with pytest.raises(errors.ParseError):
        _api.parse_song(response_for({"id": 1, "tags": "rock"}))


def test_build_login_body_and_no_auth() -> None:
    request = _api.build_login(BASE, "a@b.c", "pw")
    assert (request.method, request.url) == ("POST", f"{BASE}/tokens")
    assert request.json == {"token": {"email": "a@b.c", "password": "pw"}}
    assert request.auth is False
    assert "pw" not in repr(request)


def test_get_requests_carry_no_body() -> None:
    for request in (
        _api.build_list_arrangements(BASE),
        _api.build_get_arrangement(BASE, 5),
        _api.build_list_songs(BASE),
        _api.build_get_song(BASE, 9),
    ):
        assert request.method == "GET"
        assert request.json is None and not request.form and not request.files
    assert _api.build_get_song(BASE, 9).url == f"{BASE}/songs/9"


def test_build_create_song_sends_the_seed_shape() -> None:
    request = _api.build_create_song(
        BASE, title="Intro", arrangement_id=4, tags=("rock", "epic"), desired_length=60
    )
    assert request.method == "POST"
    assert not request.is_idempotent
    assert json.loads(json.dumps(request.json)) == {
        "title": "Intro",
        "arrangement_id": 4,
        "tags": ["rock", "epic"],
        "desired_length": 60,
    }


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": 5}, "title"),
        ({"title": "x" * 256}, "title"),
        ({"desired_length": 0}, "desired_length"),
        ({"desired_length": -3}, "desired_length"),
        ({"desired_length": 1.5}, "desired_length"),
        ({"desired_length": True}, "desired_length"),
        ({"tags": "rock"}, "tags"),
        ({"tags": ["rock", 3]}, "tags[1]"),
        ({"tags": None}, "tags"),
        ({"arrangement_id": "4"}, "arrangement_id"),
    ],
)
def test_create_validation_names_the_field(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {
        "title": "Intro",
        "arrangement_id": 4,
        "tags": ["rock"],
        "desired_length": 60,
    }
    args.update(kwargs)
    with pytest.raises(errors.ValidationError) as info:
        _api.build_create_song(BASE, **args)  # type: ignore[arg-type]
    assert info.value.field == field


@pytest.mark.parametrize(
    "title", ["Song", "Summer Rain", " Intro ", "a b c d", "x" * _api.TITLE_MAX_LENGTH]
)
def test_titles_within_imuzes_rule_are_sent_unchanged(title: str) -> None:
    request = _api.build_create_song(
        BASE, title=title, arrangement_id=4, tags=["rock"], desired_length=60
    )
    assert request.json["title"] == title
    assert _api.check_title("title", title) == title


@pytest.mark.parametrize(
    ("title", "says"),
    [
        ("abc", "has 3 characters"),
        ("x" * (_api.TITLE_MAX_LENGTH + 1), f"has {_api.TITLE_MAX_LENGTH + 1} characters"),
        ("    ", "only spaces"),
        ("Song 42", "holds '4'"),
        ("Caf\u00e9 Noir", "holds '\u00e9'"),
        ("rock-n-roll", "holds '-'"),
        ("Tab\there", "holds '\\t'"),
        ("Morning\n", "holds '\\n'"),
    ],
)
def test_titles_outside_imuzes_rule_name_the_rule(title: str, says: str) -> None:
    with pytest.raises(errors.ValidationError) as info:
        _api.build_create_song(BASE, title=title, arrangement_id=4, tags=["rock"], desired_length=6)
    assert info.value.field == "title"
    assert says in info.value.reason
    assert info.value.reason.endswith(f"iMuze wants {_api.TITLE_RULE}")
    assert "ASCII letters" in _api.TITLE_RULE and "4 to 255 characters" in _api.TITLE_RULE
    with pytest.raises(errors.ValidationError) as direct:
        _api.check_title("songs[3].title", title)
    assert (direct.value.field, direct.value.reason) == ("songs[3].title", info.value.reason)


def test_song_driver_reports_ready_only_with_audio() -> None:
    driver = _api.SongDriver(BASE)
    status = driver.parse_status(
        "5", response_for({"id": 5, "status": "ready", "mp3_url": None}), None
    )
    assert status.state is JobState.PROCESSING
    previous = Song(id=5, title="Keep", tags=("a",), desired_length=30)
    status = driver.parse_status(
        "5",
        response_for({"id": 5, "status": "ready", "mp3_url": "https://x.test/5.mp3"}),
        previous,
    )
    assert status.state is JobState.READY
    assert status.result is not None
    assert (status.result.title, status.result.tags, status.result.desired_length) == (
        "Keep",
        ("a",),
        30,
    )
    assert status.raw_status == "ready"


def test_song_driver_token_data_round_trips() -> None:
    driver = _api.SongDriver(BASE)
    song = Song(id=5, title="T", arrangement_id=2, tags=("x",), desired_length=9)
    rebuilt = driver.from_token_data("5", driver.token_data("5", song))
    assert rebuilt == song


def test_build_create_song_by_tags_sends_a_null_arrangement_id() -> None:
    # Seed 001: arrangements are reached "by ids ... or by tags"; arrangement_id has no type.
    request = _api.build_create_song(
        BASE, title="Intro", arrangement_id=None, tags=["jazz"], desired_length=60
    )
    assert json.loads(json.dumps(request.json)) == {
        "title": "Intro",
        "arrangement_id": None,
        "tags": ["jazz"],
        "desired_length": 60,
    }


def test_build_create_song_without_arrangement_needs_a_tag() -> None:
    with pytest.raises(errors.ValidationError, match="arrangement_id") as info:
        _api.build_create_song(BASE, title="Intro", arrangement_id=None, tags=[], desired_length=6)
    assert info.value.field == "tags"


@pytest.mark.parametrize(("count", "total"), [("2500", 2500), (" 12 ", 12), (7.0, 7)])
def test_list_count_sent_as_a_numeric_string_is_read(count: object, total: int) -> None:
    read, _ = _api.parse_songs(response_for({"count": count, "response": []}))
    assert read == total
    read, _ = _api.parse_arrangements(response_for({"count": count, "response": []}))
    assert read == total


@pytest.mark.parametrize("count", ["many", "", True, -1, "1.5", None, [3]])
def test_list_count_that_is_not_a_count_is_none(count: object) -> None:
    read, _ = _api.parse_songs(response_for({"count": count, "response": [{"id": 1}]}))
    assert read is None


def test_song_driver_pages_on_when_count_is_a_numeric_string() -> None:
    driver = _api.SongDriver(BASE)
    songs = [{"id": n, "status": "processing"} for n in range(1, _api.LIST_PAGE_SIZE + 1)]
    statuses, more = driver.parse_batch(response_for({"count": "2500", "response": songs}), 1, {})
    assert len(statuses) == _api.LIST_PAGE_SIZE and more is True
    _, more = driver.parse_batch(response_for({"count": "2500", "response": songs}), 3, {})
    assert more is False
