"""Emulated MuseScore.com (``http://api.musescore.com/services/rest``), mounted at
``/musescore/services/rest``, with its OAuth 1.0 endpoints, static files, oEmbed and site pages.

Shapes follow the reference page (seed 004) field for field. Every REST route takes its format as
the suffix of its last path segment (``.json``, ``.xml``, ``.jsonp`` with ``callback``; none means
JSON):

======  ===============================  ====================================================
GET     /score.{fmt}                     search: an array of scores, 20 a page (rules below)
POST    /score.{fmt}                     multipart upload (signed by a user): the new score,
                                         ``"status": "processing"`` until `render_seconds`
GET     /score/{id}.{fmt}?secret=        a score; 404 unless readable (rules below)
DELETE  /score/{id}.{fmt}                the owner only: ``{"ok": true, "id": "<id>"}``
GET     /score/{id}/time.{fmt}           ``[{"elid": 0, "position": 0}, ...]``, one per measure
GET     /score/{id}/space.{fmt}          ``[{"id", "x", "y", "sx", "sy", "page"}, ...]``
GET     /me.{fmt}                        the signing user
GET     /user/{id}.{fmt}                 a user (by id, or by name)
GET     /user/{id}/score.{fmt}           search restricted to the user's scores
GET     /resolve.{fmt}?url=              302 to the API resource of a score or user permalink
======  ===============================  ====================================================

Outside the REST base (logged and matched by faults under these labels):

- ``/musescore/oauth`` (``/oauth/...``): ``request_token`` and ``access_token`` (GET or POST;
  ``access_token`` also takes xAuth's ``x_auth_username``, ``x_auth_password`` and
  ``x_auth_mode=client_auth``, the desktop app's login, refused as ``[{"code": ...}]``);
- ``/musescore/site`` (``/site/...``): ``oauth/authorize``, ``oembed/endpoint``, permalink pages
  ``/{username}/scores/{id}`` and ``/{username}``, and ``/node/{id}/embed`` (the player iframe);
- ``/musescore/static`` (``/static/...``): ``/{id}/{secret}/score.{pdf,mid,mxl,mscz,mp3}``,
  ``score_{n}.png`` and ``thumb.png``, real files, with Range support.

OAuth 1.0 (RFC 5849), HMAC-SHA1, verified for real: a REST call carries at least
``oauth_consumer_key`` (a query parameter alone is enough for public resources). A signed call
(``Authorization: OAuth ...``, or oauth parameters in the query or a form-urlencoded body) must
name a known consumer, carry a timestamp within `MuseScoreState.timestamp_window` seconds of the
emulator clock's `Clock.wall`, a nonce never used before by that consumer within that window,
and an HMAC-SHA1 signature over the method, the URL as received (scheme, host:port, path) and
every query, form-body and oauth parameter. Signed with the consumer alone ("two-legged") it is
public-level; with an access token it acts as that token's user. Any failure is a 401
``{"error": "<why>", "code": 401}``.

Search (``GET /score`` and ``GET /user/{id}/score``), exactly; `MuseScoreState.search` is the
same code:

- candidates: scores with status ready that are public, or private and owned by the user whose
  access token signed the request; ``/user/{id}/score`` keeps only that user's;
- ``text``: with surrounding double quotes removed, a case-insensitive (`str.lower`) substring
  of the title, the description or the metadata composer;
- ``part``: a program number or a comma-separated list (repeated ``part`` parameters add to it);
  the score has a part with every listed program; each an integer in [-1, 128], else 400;
- ``parts``: exact number of parts (a non-negative integer, else 400);
- ``language``: the exact 2-letter code (lower-cased; not 2 ASCII letters: 400);
- ``license``: ``to_play`` (default) every licence; ``to_share`` all but
  ``all-rights-reserved``; ``to_use_commercially`` publicdomain, cc-zero, cc-by, cc-by-sa,
  cc-by-nd; ``to_modify_commercially`` publicdomain, cc-zero, cc-by, cc-by-sa; else 400;
- ``sort``: ``relevance`` (default: with text, how many of title/description/composer match,
  most first; without text, nothing to rank), ``view_count``, ``date_uploaded`` (posted),
  ``comment_count``, all descending; ties, always, by id descending; else 400;
- ``page``: zero-based, 20 scores a page (the last one short, past the end empty); a negative
  or non-integer value is a 400. An empty parameter (``text=``) counts as absent.

A score is readable by ``GET /score/{id}`` (and its time and space) when its owner signed the
request (any status), or when it is ready and public, or ready, private and the right ``secret``
is given; otherwise 404 ``{"error": "Not found", "code": 404}``, whether it exists or not.

Everything is derived from the clock when read (no background tasks): an upload is
``processing`` until the clock passes its render time, then ``ready``.

Where the reference is silent, knobs on the state choose the answer: `MuseScoreState.upload_answer`
(``POST /score`` answers the whole score, or only its ``id``, ``score_id``, ``uri`` or
``permalink``), `MuseScoreState.redirect_scheme` (``/resolve``'s ``Location`` on ``https`` while
the request came over ``http``) and `MuseScoreState.score_quirks` (fields merged into a score's
object, e.g. a fractional ``metadata.duration``). oEmbed and ``/resolve`` take the short links
``http(s)://mus.cr/{id}`` as well as permalinks.

The package follows moto's shape. Without aiohttp: `models` (constants and records), `catalogue`
(the seeded users and scores), `layout` (page geometry), `search` (the query's parameters),
`files` (the static files), `state` (the data) and `views` (the JSON shapes). With aiohttp:
`oauth` (verification and the token endpoints), `rendering` (JSON, XML, JSONP, HTML),
`responses` (the REST handlers), `site` (pages, oEmbed, static files) and `urls` (the route
tables `build_app` and its siblings read).
"""

from __future__ import annotations

from .models import (
    DEMO_CONSUMER_KEY,
    DEMO_USER_ID,
    FILE_NAMES,
    INSTRUMENTS,
    LICENSE_FILTERS,
    LICENSES,
    PAGE_SIZE,
    SORTS,
    AccessToken,
    MuseScoreError,
    MuseScoreScore,
    MuseScoreUser,
    RequestToken,
    ScoreMetadata,
    ScorePart,
)
from .state import MuseScoreState
from .urls import build_app, build_oauth_app, build_site_app, build_static_app, mounts

__all__ = [
    "DEMO_CONSUMER_KEY",
    "DEMO_USER_ID",
    "FILE_NAMES",
    "INSTRUMENTS",
    "LICENSES",
    "LICENSE_FILTERS",
    "PAGE_SIZE",
    "SORTS",
    "AccessToken",
    "MuseScoreError",
    "MuseScoreScore",
    "MuseScoreState",
    "MuseScoreUser",
    "RequestToken",
    "ScoreMetadata",
    "ScorePart",
    "build_app",
    "build_oauth_app",
    "build_site_app",
    "build_static_app",
    "mounts",
]
