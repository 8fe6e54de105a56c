"""The JSON shapes of the emulated Mureka API (seeds 002 and 003, useapi.net's jobs).

Pure: no aiohttp. Each function reads a `MurekaState` and returns the document to send.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .models import ACCOUNT_ERRORS, MurekaFeed, MurekaJob, MurekaSong, stage_name
from .rules import timed_lyrics

if TYPE_CHECKING:
    # Only a type here: the state imports this module to offer these functions as methods.
    from .state import MurekaState

__all__ = [
    "accounts_json",
    "feed_json",
    "iso",
    "job_json",
    "running_jobs_json",
    "song_detail_json",
    "song_json",
    "wave_list",
]


def iso(wall: float) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``, as useapi.net writes job times."""
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def song_json(
    state: MurekaState, song: MurekaSong, origin: str, *, lyrics: bool = False, detail: bool = False
) -> dict[str, Any]:
    """A song as the list shows it (seed 002), with ``lyrics`` (and ``video``) if asked."""
    body: dict[str, Any] = {
        "song_id": song.song_id,
        "title": song.title,
        "version": song.version,
        "duration_milliseconds": song.duration_ms,
        "generate_at": song.feed.generate_at,
        "genres": list(song.genres),
        "moods": list(song.moods),
    }
    if state.is_ready(song):
        body["mp3_url"] = state.cdn_url(origin, song.key, "mp3")
    body["share_key"] = song.share_key
    body["machine_audit_state"] = 1
    body["credit_type"] = 1
    body["cover"] = state.cdn_url(origin, song.key, "png")
    if state.model_fields:
        body["wave_list"] = wave_list(song)
        body["is_played"] = False
        body["is_liked"] = False
    if lyrics or detail:
        body["lyrics"] = timed_lyrics(
            song.feed.lyrics, song.duration_ms, model_fields=state.model_fields
        )
    if state.model_fields:
        body["video"] = {
            "video_url": state.cdn_url(origin, song.key, "mp4"),
            "video_cover_url": state.cdn_url(origin, song.key, "png"),
            "video_id": int(song.song_id.rsplit(":", 1)[-1]),
        }
    elif detail:
        body["video"] = {}
    body["share_link"] = f"{origin}{state.cdn_prefix}/share/{song.share_key}"
    return body


def wave_list(song: MurekaSong, points: int = 48) -> list[float]:
    """The song's waveform (``wave_list``): `points` loudness values in [0, 1], fixed per song."""
    rng = random.Random(song.key)
    return [round(rng.uniform(0.05, 1.0), 3) for _ in range(points)]


def feed_json(
    state: MurekaState, feed: MurekaFeed, origin: str, *, lyrics: bool = False
) -> dict[str, Any]:
    """A feed: ``{"feed_id", "state", "songs", "is_accelerated"}``."""
    return {
        "feed_id": feed.feed_id,
        "state": state.feed_state(feed),
        "songs": [
            song_json(state, song, origin, lyrics=lyrics) for song in feed.songs if not song.deleted
        ],
        "is_accelerated": feed.is_accelerated,
    }


def song_detail_json(state: MurekaState, song: MurekaSong, origin: str) -> dict[str, Any]:
    """``GET /music/{song_id}`` (seed 003): the song, its owner, its feed id."""
    account_id = song.feed.account
    account = state.accounts.get(account_id)
    image_key = account.image_key if account is not None else "unknown"
    return {
        "song": song_json(state, song, origin, detail=True),
        "user": {
            "id": account_id,
            "user_id": int(account_id),
            "stage_name": stage_name(account_id),
            "profile_image": state.cdn_url(origin, image_key, "png"),
        },
        "feed_id": song.feed.feed_id,
    }


def job_json(
    state: MurekaState, job: MurekaJob, origin: str, *, as_created: bool = False
) -> dict[str, Any]:
    """The job record; `as_created` gives the record at creation (the 201 of a create)."""
    status = "created" if as_created else state.job_status(job)
    ended = status != "created"
    record: dict[str, Any] = {
        "jobid": job.jobid,
        "verb": job.verb,
        "jobType": "music",
        "status": status,
        "created": iso(job.created_wall),
        "updated": iso(job.created_wall + (job.render_seconds if ended else 0.0)),
        "request": dict(job.request),
    }
    if status == "completed":
        record["response"] = feed_json(state, job.feed, origin)
    elif status == "failed":
        assert job.failure is not None
        record["error"] = job.failure.error
        record["errorDetails"] = job.failure.details
        record["code"] = job.failure.code
    return record


def running_jobs_json(state: MurekaState) -> dict[str, Any]:
    """``GET /jobs``: the running jobs per account and every configured account."""
    now = state.clock.now()
    accounts: dict[str, Any] = {}
    total = 0
    for account_id, jobs in state.running_jobs().items():
        entries = []
        for job in jobs:
            minutes, seconds = divmod(int(now - job.created_at), 60)
            entries.append(
                {
                    "jobid": job.jobid,
                    "verb": job.verb,
                    "elapsed": f"{minutes:02d}:{seconds:02d}",
                }
            )
        accounts[account_id] = {
            "total": len(entries),
            "music": len(entries),
            "tts": 0,
            "jobs": entries,
        }
        total += len(entries)
    return {
        "total": total,
        "music": total,
        "tts": 0,
        "accounts": accounts,
        "availableAccounts": list(state.accounts),
    }


def accounts_json(state: MurekaState) -> dict[str, Any]:
    """``GET /accounts``: ``{"<account>": {"account", "email", "error"?}}``, every configured one.

    ``error`` is there while `MurekaState.set_account_error` holds (what the account's calls
    answer): useapi.net's script lists the accounts first and skips the ones in error.
    """
    accounts: dict[str, Any] = {}
    for account in state.accounts.values():
        entry: dict[str, Any] = {"account": account.id, "email": account.email}
        if account.error_status is not None:
            entry["error"] = ACCOUNT_ERRORS[account.error_status]
        accounts[account.id] = entry
    return accounts
