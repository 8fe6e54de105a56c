"""iMuze API v4 as pure functions: ``build_*`` return Requests, ``parse_*`` read Responses.

Seed 001. Notes on the wire format:

* the token goes in the ``Authorization`` header as the raw value (no scheme) by default;
* the login answers ``{"response": "<token>"}``; some deployments answer
  ``{"token": "<token>", "user_id": N}``: both are read;
* the create response names the audio ``mp3``, show and index name it ``mp3_url``;
* the reference shows ``-d '{}'`` on GET requests: an artefact of its generator, not sent.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

import attrs
import cattrs

from imuzekit import errors
from imuzekit._convert import alias_keys
from imuzekit._http import Request, Response
from imuzekit.auth import LoginResult
from imuzekit.jobs import JobState, JobStatus
from imuzekit.providers._common import (
    check_int,
    check_str_list,
    decode_json,
    expect_object,
    join_url,
    structure,
)
from imuzekit.providers.imuze.models import Arrangement, Song

__all__ = [
    "PROVIDER",
    "SongDriver",
    "build_create_song",
    "build_get_arrangement",
    "build_get_song",
    "build_list_arrangements",
    "build_list_songs",
    "build_login",
    "check_title",
    "configure_converter",
    "parse_arrangement",
    "parse_arrangements",
    "parse_login",
    "parse_song",
    "parse_songs",
]

PROVIDER = "imuze"

# A song title as iMuze's own input schema has it (createSong.input.json of imuze/jslate:
# ``"pattern": "^[a-zA-Z ]*$", "minLength": 4``). The schema sets no maximum; 255 is the
# SDK's own bound, kept from before the schema was known.
TITLE_MIN_LENGTH = 4
"""Fewest characters in a song title (the schema's ``minLength``)."""
TITLE_MAX_LENGTH = 255
"""Most characters in a song title (the SDK's bound; the schema names none)."""
TITLE_PATTERN = "^[a-zA-Z ]*$"
"""The characters a song title may hold, as the schema writes it: ASCII letters and spaces."""
TITLE_RULE = (
    f"{TITLE_MIN_LENGTH} to {TITLE_MAX_LENGTH} characters, ASCII letters (a-z, A-Z) and "
    "spaces only, not only spaces"
)
"""The title rule in words, for error messages."""
MAX_TITLE_LENGTH = TITLE_MAX_LENGTH  # the former name, kept as an alias
MIN_ARRANGEMENT_ID = 0
"""Smallest arrangement id sent."""
MIN_DESIRED_LENGTH = 1
"""Shortest ``desired_length`` sent (seconds)."""
MAX_TAG_LENGTH = 255
"""Longest tag a batch manifest accepts (characters; the API documents no limit, and the SDK
checks none)."""
LIST_PAGE_SIZE = 1000


def configure_converter(converter: cattrs.Converter) -> None:
    """Register iMuze v4's wire renames on the package converter."""
    alias_keys(converter, Song, {"mp3": "mp3_url"})


# -- auth ---------------------------------------------------------------------------------


def build_login(base_url: str, email: str, password: str) -> Request:
    """``POST /tokens`` with ``{"token": {"email", "password"}}`` (sent without auth)."""
    return Request(
        "POST",
        join_url(base_url, "tokens"),
        provider=PROVIDER,
        json={"token": {"email": email, "password": password}},
        auth=False,
        # Logging in twice is harmless: the login may be retried like a GET.
        idempotent=True,
    )


def parse_login(response: Response) -> LoginResult:
    """The token from ``{"response": "<token>"}`` or ``{"token": "<token>", "user_id": N}``."""
    data = expect_object(decode_json(response, secret=True), "the login response", secret=True)
    for key in ("response", "token"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return LoginResult(token=value)
    raise errors.ParseError("the login response carries no token", path="$.response", body=None)


# -- arrangements -------------------------------------------------------------------------


def build_list_arrangements(base_url: str) -> Request:
    """``GET /arrangements``."""
    return Request("GET", join_url(base_url, "arrangements"), provider=PROVIDER)


def _listing(response: Response, item: type[Any]) -> tuple[int | None, list[Any]]:
    data = expect_object(decode_json(response), "a list response")
    if "response" not in data and data.get("count") != 0:
        # Not a listing at all (another shape, an error object): an empty page would hide it.
        raise errors.ParseError("a list response without its 'response' list", body=data)
    items = data.get("response")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise errors.ParseError("expected a list", path="$.response", body=data)
    total = _count(data.get("count"))
    return total, [structure(entry, item, path=f"$.response[{i}]") for i, entry in enumerate(items)]


def _count(value: Any) -> int | None:
    """A list's ``count``: a whole number, also when sent as a numeric string (``"2500"``).

    Anything else (a word, a negative or fractional number) is no count at all: None, so that
    paging goes by page sizes rather than by a made-up total.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        # isdecimal, not int(): int() also takes "+5", "1_000" and non-ASCII digits.
        return int(text) if text.isascii() and text.isdecimal() else None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and value >= 0 else None


def parse_arrangements(response: Response) -> tuple[int | None, list[Arrangement]]:
    """``(count, arrangements)`` from ``{"count": N, "response": [...]}``."""
    return _listing(response, Arrangement)


def build_get_arrangement(base_url: str, arrangement_id: int) -> Request:
    """``GET /arrangements/:id``."""
    check_int("arrangement_id", arrangement_id, minimum=MIN_ARRANGEMENT_ID)
    return Request("GET", join_url(base_url, "arrangements", arrangement_id), provider=PROVIDER)


def parse_arrangement(response: Response) -> Arrangement:
    """An `Arrangement` from the show endpoint."""
    return structure(decode_json(response), Arrangement)


# -- songs ----------------------------------------------------------------------------------


def check_title(field: str, value: object) -> str:
    """``value`` if it is a title iMuze accepts, else ValidationError(``field``) naming the rule.

    The rule is iMuze's own schema: `TITLE_MIN_LENGTH` to `TITLE_MAX_LENGTH` characters,
    each an ASCII letter or a space (`TITLE_PATTERN`), and not only spaces.
    """
    if not isinstance(value, str):
        raise errors.ValidationError(field, f"must be a string, got {type(value).__name__}")
    if not TITLE_MIN_LENGTH <= len(value) <= TITLE_MAX_LENGTH:
        raise errors.ValidationError(
            field, f"has {len(value)} characters; iMuze wants {TITLE_RULE}"
        )
    # fullmatch: the pattern's "$" alone would also let a trailing newline through.
    if re.fullmatch(TITLE_PATTERN, value) is None:
        bad = next(c for c in value if re.fullmatch(TITLE_PATTERN, c) is None)
        raise errors.ValidationError(field, f"holds {bad!r}; iMuze wants {TITLE_RULE}")
    if not value.strip():
        raise errors.ValidationError(field, f"is only spaces; iMuze wants {TITLE_RULE}")
    return value


def build_create_song(
    base_url: str,
    *,
    title: str,
    arrangement_id: int | None,
    tags: Collection[str],
    desired_length: int,
) -> Request:
    """``POST /songs``; ValidationError (nothing sent) for a title outside iMuze's rule (see
    `check_title`), a non-positive ``desired_length`` or ``tags`` that is not a list of strings.

    Seed 001 reaches arrangements "by ids ... or by tags": with ``arrangement_id=None`` the
    service chooses the arrangement from ``tags`` (then at least one is needed), and the id is
    sent as ``null`` (the seed gives it no type and lists it as required).
    """
    check_title("title", title)
    if arrangement_id is not None:
        check_int("arrangement_id", arrangement_id, minimum=MIN_ARRANGEMENT_ID)
    tag_list = check_str_list("tags", tags)
    if arrangement_id is None and not tag_list:
        raise errors.ValidationError(
            "tags", "must name at least one tag when arrangement_id is None (tags choose it)"
        )
    check_int("desired_length", desired_length, minimum=MIN_DESIRED_LENGTH)
    return Request(
        "POST",
        join_url(base_url, "songs"),
        provider=PROVIDER,
        json={
            "title": title,
            "arrangement_id": arrangement_id,
            "tags": list(tag_list),
            "desired_length": int(desired_length),
        },
    )


def parse_song(response: Response) -> Song:
    """A `Song` from the create or show endpoint."""
    return structure(decode_json(response), Song)


def build_list_songs(
    base_url: str, *, page: int | None = None, per_page: int | None = None
) -> Request:
    """``GET /songs``, optionally one page of it (``page`` is 1-based).

    The reference documents no paging; the parameters are harmless where they are ignored
    (the whole list comes back, and `SongDriver.parse_batch()` sees it is complete).
    """
    params = {"page": page, "per_page": per_page}
    return Request("GET", join_url(base_url, "songs"), provider=PROVIDER, params=params)


def parse_songs(response: Response) -> tuple[int | None, list[Song]]:
    """``(count, songs)`` from ``{"count": N, "response": [...]}``."""
    return _listing(response, Song)


def build_get_song(base_url: str, song_id: int) -> Request:
    """``GET /songs/:id``."""
    check_int("song_id", song_id, minimum=0)
    return Request("GET", join_url(base_url, "songs", song_id), provider=PROVIDER)


def merge_song(previous: Song | None, fresh: Song) -> Song:
    """``fresh`` completed with what only ``previous`` knew (the create response's tags, length)."""
    if previous is None:
        return fresh
    known = {k: v for k, v in attrs.asdict(fresh, recurse=False).items() if v not in (None, ())}
    return attrs.evolve(previous, **known)


@attrs.frozen
class SongDriver:
    """Polls a song with ``GET /songs/:id`` until its status is ``ready``."""

    base_url: str
    provider: str = PROVIDER
    kind: str = "song"
    ok_statuses: Collection[int] = ()

    def status_request(self, job_id: str) -> Request:
        """``GET /songs/:id``."""
        return build_get_song(self.base_url, int(job_id))

    def parse_status(
        self, job_id: str, response: Response, previous: Song | None
    ) -> JobStatus[Song]:
        """The song's state from its show response."""
        return self.status_of(merge_song(previous, parse_song(response)))

    @staticmethod
    def status_of(song: Song) -> JobStatus[Song]:
        """A JobStatus for ``song`` (failed-like raw values are kept as UNKNOWN, never fatal)."""
        state = song.state
        if state is JobState.READY and not song.mp3_url:
            state = JobState.PROCESSING  # ready without audio yet: keep polling
        return JobStatus(state=state, raw_status=song.status, result=song)

    def batch_request(self, page: int, job_ids: Collection[str]) -> Request:
        """One page of ``GET /songs``: every song of the account with its status."""
        return build_list_songs(self.base_url, page=page, per_page=LIST_PAGE_SIZE)

    def parse_batch(
        self, response: Response, page: int, previous: Mapping[str, Any]
    ) -> tuple[dict[str, JobStatus[Song]], bool]:
        """Statuses by song id from a list page, and whether a further page exists."""
        count, songs = parse_songs(response)
        statuses = {
            str(song.id): self.status_of(merge_song(previous.get(str(song.id)), song))
            for song in songs
        }
        more = len(songs) == LIST_PAGE_SIZE and count is not None and count > page * LIST_PAGE_SIZE
        return statuses, more

    def token_data(self, job_id: str, result: Song | None) -> dict[str, Any]:
        """The title, arrangement and length, so a resumed job names its file the same way."""
        if result is None:
            return {}
        return {
            k: v
            for k, v in {
                "title": result.title,
                "arrangement_id": result.arrangement_id,
                "desired_length": result.desired_length,
                "tags": list(result.tags),
            }.items()
            if v not in (None, [])
        }

    def from_token_data(self, job_id: str, data: Mapping[str, Any]) -> Song | None:
        """A partial Song from `token_data()`'s output."""
        return structure({**data, "id": job_id}, Song)
