"""The JSON shapes of the emulated MuseScore.com (seed 004): users, scores, time, space, oEmbed.

Pure: no aiohttp. Each function returns the document to send; the format (JSON, XML, JSONP) is
chosen by the handlers.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .layout import measure_boxes
from .models import MuseScoreScore, MuseScoreUser

if TYPE_CHECKING:
    # Only a type here: the state imports this module to offer these functions as methods.
    from .state import MuseScoreState

__all__ = ["oembed_json", "score_json", "space_json", "time_json", "user_json"]

_PROVIDER_NAME = "MuseScore.com"
_OEMBED_HEIGHT = 394


def user_json(state: MuseScoreState, user: MuseScoreUser, origin: str) -> dict[str, Any]:
    """``{"id", "name", "permalink", "uri"}``, the id a string (reference shape)."""
    return {
        "id": str(user.id),
        "name": user.name,
        "permalink": f"{state.site_url(origin)}/{user.slug}",
        "uri": f"{state.rest_url(origin)}/user/{user.id}",
    }


def _merged(base: dict[str, Any], quirks: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in quirks.items():
        inner = merged.get(key)
        if isinstance(inner, dict) and isinstance(value, Mapping):
            merged[key] = _merged(inner, value)
        else:
            merged[key] = value
    return merged


def score_json(state: MuseScoreState, score: MuseScoreScore, origin: str) -> dict[str, Any]:
    """The score object of the reference, key for key (ids and most counts as strings), with
    the score's `MuseScoreState.score_quirks` merged in."""
    data = _score_json(state, score, origin)
    quirks = state.score_quirks.get(score.id)
    return _merged(data, quirks) if quirks else data


def _score_json(state: MuseScoreState, score: MuseScoreScore, origin: str) -> dict[str, Any]:
    meta = score.metadata
    owner = state.users[score.user_id]
    return {
        "id": str(score.id),
        "vid": str(score.vid),
        "dates": {"posted": str(score.posted), "lastupdate": str(score.lastupdate)},
        "secret": score.secret,
        "uri": f"{state.rest_url(origin)}/score/{score.id}",
        "permalink": state.score_permalink(score, origin),
        "user": {"uid": str(owner.id), "username": owner.name},
        "status": score.status,
        "sharing": score.sharing,
        "comment_count": str(score.comment_count),
        "favoriting_count": score.favoriting_count,
        "view_count": str(score.view_count),
        "playback_count": str(score.playback_count),
        "download_count": score.download_count,
        "genre": score.genre,
        "format": score.format,
        "license": score.license,
        "language": score.language,
        "title": score.title,
        "description": score.description,
        # What the desktop app reads besides the reference's fields (loginmanager.cpp).
        "tags": ",".join(score.tags),
        "custom_url": score.custom_url,
        "metadata": {
            "title": meta.title,
            "subtitle": meta.subtitle,
            "composer": meta.composer,
            "poet": meta.poet,
            "pages": str(meta.pages),
            "measures": str(meta.measures),
            "lyrics": "1" if meta.lyrics else "0",
            "chordnames": "1" if meta.chordnames else "0",
            "keysig": str(meta.keysig),
            "duration": str(meta.duration),
            "dimensions": meta.dimensions,
            "parts": [
                {"part": {"name": part.name, "program": str(part.program)}} for part in meta.parts
            ],
        },
    }


def time_json(score: MuseScoreScore) -> list[dict[str, Any]]:
    """One ``{"elid", "position"}`` per measure: start times in ms, increasing.

    Measures last about the same, with a gentle deterministic rubato and, for a third of
    the scores, a short pickup measure; the last starts before `metadata.duration`.
    """
    measures = score.metadata.measures
    weights = [1 + 0.15 * math.sin(index * 0.7 + score.id) for index in range(measures)]
    if score.id % 3 == 0 and measures > 1:
        weights[0] *= 0.25
    unit = score.metadata.duration * 1000 / sum(weights)
    events: list[dict[str, Any]] = [{"elid": 0, "position": 0}]
    position = 0.0
    for index in range(1, measures):
        position += weights[index - 1] * unit
        events.append({"elid": index, "position": position})
    return events


def space_json(score: MuseScoreScore) -> list[dict[str, Any]]:
    """One ``{"id", "x", "y", "sx", "sy", "page"}`` per measure (floats; see `measure_boxes`)."""
    return [
        {"id": index, "x": x, "y": y, "sx": sx, "sy": sy, "page": page}
        for index, (page, x, y, sx, sy) in enumerate(measure_boxes(score))
    ]


def oembed_json(
    state: MuseScoreState,
    score: MuseScoreScore,
    origin: str,
    *,
    maxwidth: int | None = None,
    maxheight: int | None = None,
) -> dict[str, Any]:
    """The reference's oEmbed answer: width ``"100%"`` unless `maxwidth`, height 394."""
    owner = state.users[score.user_id]
    site = state.site_url(origin)
    permalink = state.score_permalink(score, origin)
    width: int | str = maxwidth if maxwidth is not None else "100%"
    height = maxheight if maxheight is not None else _OEMBED_HEIGHT
    title = html.escape(score.title)
    player = (
        f'<iframe width="{width}" height="{height}" src="{site}/node/{score.id}/embed" '
        f'frameborder="0"></iframe><span><a href="{permalink}">{title}</a> by '
        f'<a href="{site}/user/{owner.id}">{html.escape(owner.name)}</a></span> '
    )
    return {
        "type": "rich",
        "version": "1.0",
        "provider_name": _PROVIDER_NAME,
        "width": width,
        "height": height,
        "provider_url": site,
        "html": player,
        "title": score.title,
        "author_name": owner.name,
        "author_url": f"{site}/{owner.slug}",
        "original_url": permalink,
    }
