"""Mureka through useapi.net as pure functions: ``build_*`` Requests, ``parse_*`` Responses.

Seeds 002 (``GET /music/``) and 003 (``GET /music/{song_id}``), plus useapi.net's creation and
job endpoints. Notes on the wire format:

* ``Authorization: Bearer <useapi.net token>``; one token drives several Mureka accounts, chosen
  with ``account`` (required by the service once more than one account is configured);
* the music list pages with ``last_id`` while ``more`` is true;
* creations are sent with ``"async": true``: the service answers 201 with a job record and the
  generation runs for ~45 s; ``GET /jobs/{jobid}`` reports ``completed`` (with the feed) or
  ``failed``; ``GET /jobs`` lists the jobs still running, per account.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs
import cattrs

from imuzekit import errors
from imuzekit._http import Request, Response
from imuzekit._paging import Page
from imuzekit.jobs import JobState, JobStatus
from imuzekit.providers._common import (
    check_str,
    decode_json,
    expect_object,
    join_url,
    structure,
)
from imuzekit.providers.mureka.models import (
    Feed,
    FeedPage,
    JobRecord,
    Number,
    RunningJob,
    RunningJobs,
    SongDetail,
)

__all__ = [
    "CREATE_LIMITS",
    "PROVIDER",
    "FeedDriver",
    "build_create",
    "build_get_job",
    "build_get_song",
    "build_list_music",
    "build_running_jobs",
    "configure_converter",
    "next_music_request",
    "parse_feed_page",
    "parse_job_record",
    "parse_running_jobs",
    "parse_song_detail",
    "reply_ref_from_token",
]

PROVIDER = "mureka"
COMPLETED = "completed"
FAILED = "failed"

# Length limits useapi.net documents per creation route (characters).
CREATE_LIMITS: dict[str, dict[str, int]] = {
    "create": {"prompt": 3000},
    "create-advanced": {"lyrics": 5000, "title": 50, "desc": 1000},
    "create-instrumental": {"prompt": 1000, "title": 50},
}
MAX_TEXT_LENGTH = 1000
"""Longest text field a route names no limit for (``model``, ``vocal_id``, ``ref_id``,
``motif_id``; characters)."""
MAX_ACCOUNT_LENGTH = 128
"""Longest ``account`` id sent (characters)."""
_TEXT_FIELDS = ("prompt", "lyrics", "title", "desc", "vocal_id", "ref_id", "motif_id", "model")
MAX_REPLY_URL = 2048
"""Longest ``replyUrl`` sent (useapi.net documents none; a URL longer than this is a mistake)."""
MAX_REPLY_REF = 256
"""Longest ``replyRef`` sent (imuzekit's own are about 80 characters)."""
REPLY_REF_TOKEN_FIELD = "reply_ref"
"""The job-token field recording that callbacks were requested, with their ``replyRef``."""


def rate_key(account: str | None) -> str:
    """The rate-limit gate of one account: a 429 on it pauses only that account."""
    return f"{PROVIDER}:{account or ''}"


def _number(value: Any, _: Any) -> Number:
    """A JavaScript ``number``: an int when whole, else a float (numeric strings too)."""
    if isinstance(value, bool):
        raise TypeError(f"expected a number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            value = float(text)  # "abc" raises ValueError: a ParseError with the path
    if not isinstance(value, float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    return int(value) if value.is_integer() else value


def _optional_number(value: Any, tp: Any) -> Number | None:
    return None if value is None else _number(value, tp)


def configure_converter(converter: cattrs.Converter) -> None:
    """Register Mureka's wire rules: useapi.net's ``number`` fields (`Number`)."""
    converter.register_structure_hook(Number, _number)
    converter.register_structure_hook(Number | None, _optional_number)


# -- music list and songs -------------------------------------------------------------------


def build_list_music(
    base_url: str, *, account: str | None = None, last_id: int | None = None, expand: bool = False
) -> Request:
    """``GET /music/?account=&last_id=&expand=``."""
    params: dict[str, Any] = {"account": account, "last_id": last_id}
    if expand:
        params["expand"] = "true"
    return Request("GET", join_url(base_url, "music") + "/", provider=PROVIDER, params=params)


def parse_feed_page(response: Response) -> Page[Feed]:
    """One page of feeds, with ``last_id`` as the cursor and the service's ``total``."""
    data = expect_object(decode_json(response), "a music list")
    if "list" not in data:
        # Another shape (an error object, a proxy's page): an empty page would hide it.
        raise errors.ParseError("a music list without its 'list' of feeds", body=data)
    page = structure(data, FeedPage)
    return Page(items=page.list, total=page.total, cursor=page.last_id, more=page.more)


def next_music_request(previous: Request, page: Page[Feed]) -> Request | None:
    """The next page's request (``last_id`` from this page) while ``more`` is true."""
    if not page.more or page.cursor is None or not page.items:
        return None
    if dict(previous.params).get("last_id") == str(page.cursor):
        return None  # the service repeated its cursor: stop rather than loop forever
    return previous.with_params(last_id=str(page.cursor))


def build_get_song(base_url: str, song_id: str | int | None) -> Request:
    """``GET /music/{song_id}`` (the id is URL-encoded: it contains ``:``)."""
    if song_id is None:
        raise errors.ValidationError(
            "song_id",
            "is missing: the service sent this song without a song_id, so it cannot be fetched",
        )
    if isinstance(song_id, bool) or not isinstance(song_id, str | int):
        raise errors.ValidationError("song_id", f"must be a string, got {song_id!r}")
    song_id = str(song_id)
    check_str("song_id", song_id, max_length=256)
    return Request("GET", join_url(base_url, "music", song_id), provider=PROVIDER)


def parse_song_detail(response: Response) -> SongDetail:
    """A `SongDetail` (song with lyrics, user, feed id)."""
    return structure(expect_object(decode_json(response), "a song"), SongDetail)


# -- creation ---------------------------------------------------------------------------------


def check_reply_url(value: Any) -> str:
    """A ``replyUrl``: an absolute http(s) URL with a host, no fragment, bounded."""
    check_str("reply_url", value, max_length=MAX_REPLY_URL)
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise errors.ValidationError("reply_url", "must be an absolute http(s) URL")
    if parts.fragment or any(ch.isspace() for ch in value) or not value.isascii():
        raise errors.ValidationError("reply_url", "must be a plain URL (ASCII, no spaces)")
    return str(value)


def check_reply_ref(value: Any) -> str:
    """A ``replyRef``: printable ASCII, at most `MAX_REPLY_REF` characters."""
    check_str("reply_ref", value, max_length=MAX_REPLY_REF)
    if not (value.isascii() and value.isprintable()):
        raise errors.ValidationError("reply_ref", "must be printable ASCII")
    return str(value)


def build_create(
    base_url: str,
    route: str,
    *,
    account: str | None,
    retry: Any = None,
    reply_url: str | None = None,
    reply_ref: str | None = None,
    **fields: Any,
) -> Request:
    """``POST /music/<route>`` with ``"async": true``; ValidationError before sending.

    ``route`` is ``create``, ``create-advanced`` or ``create-instrumental``; ``fields`` are
    that route's body fields (None ones are left out). ``reply_url`` and ``reply_ref`` become
    useapi.net's ``replyUrl`` (where it POSTs the job record when the job is created,
    completed or failed) and ``replyRef`` (passed back in those callbacks); a ``reply_ref``
    needs a ``reply_url``.
    """
    limits = CREATE_LIMITS.get(route)
    if limits is None:
        raise errors.ValidationError("route", f"unknown creation route {route!r}")
    body: dict[str, Any] = {}
    for name, value in fields.items():
        if value is None:
            continue
        if name not in _TEXT_FIELDS:
            raise errors.ValidationError(name, "is not a field of this creation")
        body[name] = check_str(name, value, max_length=limits.get(name, MAX_TEXT_LENGTH))
    if route == "create-advanced" and "lyrics" not in body:
        raise errors.ValidationError("lyrics", "is required for create_advanced")
    if account is not None:
        body["account"] = check_str("account", account, max_length=MAX_ACCOUNT_LENGTH)
    if reply_url is not None:
        body["replyUrl"] = check_reply_url(reply_url)
    if reply_ref is not None:
        if reply_url is None:
            raise errors.ValidationError("reply_ref", "is only sent with a reply_url")
        body["replyRef"] = check_reply_ref(reply_ref)
    body["async"] = True
    return Request(
        "POST",
        join_url(base_url, "music", route),
        provider=PROVIDER,
        json=body,
        rate_key=rate_key(account),
        retry=retry,
    )


# -- jobs ---------------------------------------------------------------------------------------


def parse_job_record(response: Response) -> JobRecord:
    """A `JobRecord` (the 201 of a create, or ``GET /jobs/{jobid}``)."""
    return structure(expect_object(decode_json(response), "a job record"), JobRecord)


def build_get_job(base_url: str, jobid: str) -> Request:
    """``GET /jobs/{jobid}``."""
    check_str("jobid", jobid, max_length=512)
    return Request("GET", join_url(base_url, "jobs", jobid), provider=PROVIDER)


def build_running_jobs(base_url: str) -> Request:
    """``GET /jobs``: every job still running, per account."""
    return Request("GET", join_url(base_url, "jobs"), provider=PROVIDER)


def parse_running_jobs(response: Response) -> RunningJobs:
    """`RunningJobs` from ``{"total", "accounts": {id: {"jobs": [...]}}, ...}``."""
    data = expect_object(decode_json(response), "the running jobs")
    accounts_data = data.get("accounts") or {}
    if not isinstance(accounts_data, dict):
        raise errors.ParseError("expected an object", path="$.accounts", body=data)
    accounts: dict[str, tuple[RunningJob, ...]] = {}
    for account, entry in accounts_data.items():
        jobs = entry.get("jobs", []) if isinstance(entry, dict) else entry
        accounts[str(account)] = structure(
            jobs or [], tuple[RunningJob, ...], path=f"$.accounts[{account!r}].jobs"
        )
    total = data.get("total")
    available = structure(
        data.get("availableAccounts") or [], tuple[str, ...], path="$.availableAccounts"
    )
    return RunningJobs(
        total=total if isinstance(total, int) else sum(len(j) for j in accounts.values()),
        accounts=accounts,
        available_accounts=available,
    )


@attrs.frozen
class FeedDriver:
    """Polls Mureka generations: one ``GET /jobs`` per tick says which still run; a job that
    left that list is fetched once with ``GET /jobs/{jobid}``."""

    base_url: str
    failure_states: frozenset[int] = frozenset()
    provider: str = PROVIDER
    kind: str = "feed"
    ok_statuses: Collection[int] = ()
    reply_ref_of: Callable[[str], str | None] | None = None
    """The ``replyRef`` a job was created with, when callbacks were requested
    (``Webhooks.ref_of``): job tokens then record it as ``reply_ref``."""

    def status_request(self, job_id: str) -> Request:
        """``GET /jobs/{jobid}``."""
        return build_get_job(self.base_url, job_id)

    def status_of(self, record: JobRecord, previous: Feed | None = None) -> JobStatus[Feed]:
        """The JobStatus a job record stands for."""
        feed = record.response or previous
        raw = record.status
        if raw == FAILED or (feed is not None and feed.state in self.failure_states):
            reason = ": ".join(x for x in (record.error, record.errorDetails) if x) or None
            if reason is None and feed is not None and feed.state in self.failure_states:
                reason = f"the feed reached failure state {feed.state}"
            return JobStatus(JobState.FAILED, raw_status=raw, result=feed, error=reason)
        if raw == COMPLETED and feed is None:
            raise errors.ParseError(
                f"Mureka job {record.jobid} is completed but carries no feed", path="$.response"
            )
        if raw == COMPLETED or (feed is not None and feed.complete):
            return JobStatus(JobState.READY, raw_status=raw, result=feed)
        state = JobState.QUEUED if raw in (None, "created") else JobState.PROCESSING
        return JobStatus(state, raw_status=raw, result=feed)

    def parse_status(
        self, job_id: str, response: Response, previous: Feed | None
    ) -> JobStatus[Feed]:
        """The job's state from its record."""
        return self.status_of(parse_job_record(response), previous)

    def batch_request(self, page: int, job_ids: Collection[str]) -> Request:
        """``GET /jobs``: which jobs still run."""
        return build_running_jobs(self.base_url)

    def parse_batch(
        self, response: Response, page: int, previous: Mapping[str, Any]
    ) -> tuple[dict[str, JobStatus[Feed]], bool]:
        """Jobs in the running list are still processing; the others are left to a direct
        ``GET /jobs/{jobid}`` (they finished, or failed)."""
        running = parse_running_jobs(response).jobids()
        statuses = {
            jobid: JobStatus(JobState.PROCESSING, raw_status="running", result=previous[jobid])
            for jobid in running
            if jobid in previous
        }
        return statuses, False

    def token_data(self, job_id: str, result: Feed | None) -> dict[str, Any]:
        """Nothing beyond the job id is needed (the job record holds the feed), except the
        ``reply_ref`` of a job created with callbacks, so a resumed job is watched again."""
        ref = self.reply_ref_of(job_id) if self.reply_ref_of is not None else None
        return {REPLY_REF_TOKEN_FIELD: ref} if ref is not None else {}

    def from_token_data(self, job_id: str, data: Mapping[str, Any]) -> Feed | None:
        """No partial result: the first poll reads the record."""
        return None


def reply_ref_from_token(data: Mapping[str, Any]) -> str | None:
    """The ``replyRef`` a job token recorded (None when callbacks were not requested).

    A malformed value is ValidationError on the token: it came from outside.
    """
    ref = data.get(REPLY_REF_TOKEN_FIELD)
    if ref is None:
        return None
    try:
        return check_reply_ref(ref)
    except errors.ValidationError as exc:
        raise errors.ValidationError("token", f"reply_ref: {exc.reason}") from None
