"""The emulated MuseScore.com's state: consumers, OAuth tokens, users, scores, uploads, files.

Pure: no aiohttp (the HTTP side is `oauth`, `rendering`, `responses`, `site` and `urls`), so
tests can drive it directly. Everything is derived from the clock when read (no background
tasks): an upload is ``processing`` until the clock passes its render time, then ``ready``.
"""

from __future__ import annotations

import hmac
import random
import secrets
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

import attrs

from imuzekit.emulator._clock import Clock
from imuzekit.emulator._files import MsczInfo, is_zip, read_mscz
from imuzekit.emulator._kit.accounts import DEMO_EMAIL, DEMO_PASSWORD
from imuzekit.emulator._kit.media import AudioStore
from imuzekit.emulator._kit.provider import Credentials
from imuzekit.emulator._kit.timing import (
    RenderSeconds,
    check_render_seconds,
    draw_render_seconds,
)
from imuzekit.emulator._mp3 import Audio

from . import views
from .catalogue import USERS, seed_catalogue
from .files import file_key, render_file
from .layout import measure_boxes, pages_needed
from .models import (
    DEMO_CONSUMER_KEY,
    DEMO_USER_ID,
    LICENSES,
    PAGE_SIZE,
    AccessToken,
    MuseScoreError,
    MuseScoreScore,
    MuseScoreUser,
    RequestToken,
    ScoreMetadata,
    ScorePart,
)
from .search import (
    parse_int,
    parse_language,
    parse_license,
    parse_programs,
    parse_sort,
    parse_text,
    relevance,
)

__all__ = ["MuseScoreState"]

_FIRST_SCORE_ID = 1001
_RESERVED_SITE_PATHS = frozenset(("oauth", "oembed", "score", "user", "node", "static"))


def _check_token_format(_: object, __: object, value: str) -> None:
    if value not in ("form", "json"):
        raise ValueError(f"token_format must be 'form' or 'json', got {value!r}")


UPLOAD_ANSWERS = ("score", "id", "score_id", "uri", "permalink")
"""What ``POST /score`` may answer (`MuseScoreState.upload_answer`)."""


def _check_upload_answer(_: object, __: object, value: str) -> None:
    if value not in UPLOAD_ANSWERS:
        raise ValueError(f"upload_answer must be one of {', '.join(UPLOAD_ANSWERS)}, got {value!r}")


def _check_redirect_scheme(_: object, __: object, value: str | None) -> None:
    if value not in (None, "http", "https"):
        raise ValueError(f"redirect_scheme must be None, 'http' or 'https', got {value!r}")


@attrs.define
class MuseScoreState:
    """All of the emulated MuseScore.com data, reachable from tests as `emu.musescore`.

    The catalogue is seeded from `seed` on construction (same seed, same scores); the state
    survives an emulator stop/start. The demo consumer (`consumer_key`, `consumer_secret`) and
    the demo user's access token (`token`, `token_secret`) are what ``emu.credentials`` and
    ``emu.client()`` use.
    """

    name: ClassVar[str] = "musescore"
    prefix: ClassVar[str] = "/musescore/services/rest"
    oauth_prefix: ClassVar[str] = "/musescore/oauth"
    """``request_token`` and ``access_token`` (logged as ``/oauth/...``)."""
    site_prefix: ClassVar[str] = "/musescore/site"
    """Permalink pages, ``oauth/authorize`` and ``oembed/endpoint`` (logged as ``/site/...``)."""
    static_prefix: ClassVar[str] = "/musescore/static"
    """Score files (logged as ``/static/...``)."""

    clock: Clock
    render_seconds: RenderSeconds = attrs.field(default=2.0, converter=check_render_seconds)
    """How long an upload stays ``processing`` (a range: each upload draws from it)."""
    seed: int = 0
    public_scores: int = 300
    """Public scores in the seeded catalogue."""
    private_scores: int = 24
    """Private scores in the seeded catalogue (the demo user owns at least three)."""
    timestamp_window: float = 300.0
    """Seconds an ``oauth_timestamp`` may be away from `Clock.wall` (either way)."""
    request_token_ttl: float = 3600.0
    """Seconds (emulator clock) a request token can be approved and exchanged."""
    token_format: str = attrs.field(default="form", validator=_check_token_format)
    """Body of the token endpoints: ``"form"`` (form-urlencoded, default) or ``"json"``."""
    file_cache_limit: int = 64 * 1024 * 1024
    """Bytes of generated static files kept in memory."""
    upload_answer: str = attrs.field(default="score", validator=_check_upload_answer)
    """What ``POST /score`` answers (the reference does not say): ``"score"`` the whole new
    score (default), or only one field naming it: ``"id"``, ``"score_id"``, ``"uri"`` or
    ``"permalink"`` (``{"id": "1001"}``, ``<score><id>1001</id></score>`` in XML)."""
    redirect_scheme: str | None = attrs.field(default=None, validator=_check_redirect_scheme)
    """The scheme of ``/resolve``'s ``Location`` (None: the request's own): ``"https"`` answers
    like an API reached over http that redirects to its https twin."""
    score_quirks: dict[int, dict[str, Any]] = attrs.field(factory=dict)
    """Fields merged into a score's rendered object (nested objects merged key by key), to give
    the odd answers the real service gives at times, by score id:
    ``{1001: {"metadata": {"duration": "474.5"}}}``."""

    consumers: dict[str, str] = attrs.field(factory=dict, init=False)
    """Registered consumers: key -> secret."""
    consumer_key: str = attrs.field(default=DEMO_CONSUMER_KEY, init=False)
    """The demo consumer's key."""
    consumer_secret: str = attrs.field(default="", init=False)
    """The demo consumer's secret."""
    token: str = attrs.field(default="", init=False)
    """The demo user's access token (issued to the demo consumer)."""
    token_secret: str = attrs.field(default="", init=False)
    """The demo user's access token secret."""
    users: dict[int, MuseScoreUser] = attrs.field(factory=dict, init=False)
    """Users by id."""
    passwords: dict[int, str] = attrs.field(factory=dict, init=False, repr=False)
    """xAuth passwords by user id (the demo user's is ``emu.credentials["musescore"]``'s)."""
    request_tokens: dict[str, RequestToken] = attrs.field(factory=dict, init=False)
    """Request tokens not yet exchanged, by token."""
    access_tokens: dict[str, AccessToken] = attrs.field(factory=dict, init=False)
    """Access tokens, by token."""
    uploads: int = attrs.field(default=0, init=False)
    """Scores accepted by ``POST /score``."""
    deletions: int = attrs.field(default=0, init=False)
    """Scores deleted by ``DELETE /score/{id}``."""

    _rng: random.Random = attrs.field(init=False)
    # Seeded on first use: most emulators of a test run never touch MuseScore, and drawing
    # ~300 scores costs a few milliseconds each time.
    _scores: dict[int, MuseScoreScore] | None = attrs.field(default=None, init=False)
    _next_id: int = attrs.field(default=_FIRST_SCORE_ID, init=False)
    # (consumer key, nonce) -> oauth_timestamp, in arrival order. Timestamps arrive roughly in
    # order, so pruning from the front (see check_nonce) keeps about one window's worth.
    _nonces: OrderedDict[tuple[str, str], int] = attrs.field(factory=OrderedDict, init=False)
    _files: AudioStore = attrs.field(factory=AudioStore, init=False)

    def __attrs_post_init__(self) -> None:
        # Streams of its own so that MuseScore does not draw in lockstep with its siblings, and
        # so that the catalogue is the same whenever it is drawn (before or after uploads).
        self._rng = random.Random(f"musescore-uploads-{self.seed}")
        self.consumer_secret = secrets.token_hex(16)
        self.consumers[self.consumer_key] = self.consumer_secret
        for user_id, name, full_name in USERS:
            email = DEMO_EMAIL if user_id == DEMO_USER_ID else None
            self.users[user_id] = MuseScoreUser(user_id, name, full_name, email)
        self.passwords[DEMO_USER_ID] = DEMO_PASSWORD
        self.token, self.token_secret = self.issue_token(DEMO_USER_ID)

    @property
    def scores(self) -> dict[int, MuseScoreScore]:
        """Every score by id, uploads included (deleted ones are removed).

        The seeded catalogue is drawn on first access (the same for a given `seed`).
        """
        if self._scores is None:
            self._scores, self._next_id = seed_catalogue(
                self.seed,
                public_scores=self.public_scores,
                private_scores=self.private_scores,
                users=self.users,
                clock=self.clock,
                first_id=self._next_id,
            )
        return self._scores

    # --- consumers, tokens, users -----------------------------------------------------------

    def credentials(self) -> Credentials:
        """The demo user's access token and xAuth login (`email`, `password`); ``extra`` holds
        the consumer key and secret too."""
        return Credentials(
            email=DEMO_EMAIL,
            password=self.passwords[DEMO_USER_ID],
            token=self.token,
            extra={
                "consumer_key": self.consumer_key,
                "consumer_secret": self.consumer_secret,
                "token": self.token,
                "token_secret": self.token_secret,
            },
        )

    def add_consumer(self, key: str | None = None, secret: str | None = None) -> tuple[str, str]:
        """Register a consumer (random key and secret unless given); return (key, secret)."""
        key = key if key is not None else secrets.token_hex(8)
        secret = secret if secret is not None else secrets.token_hex(16)
        self.consumers[key] = secret
        return key, secret

    def issue_token(self, user: int | str, consumer_key: str | None = None) -> tuple[str, str]:
        """Issue an access token acting as `user` (id or name) for a consumer (the demo one).

        Returns (token, secret): the credentials a three-legged flow would have ended with.
        """
        found = self.find_user(user)
        if found is None:
            raise ValueError(f"unknown user {user!r}")
        key = consumer_key if consumer_key is not None else self.consumer_key
        if key not in self.consumers:
            raise ValueError(f"unknown consumer {key!r}")
        access = AccessToken(secrets.token_hex(16), secrets.token_hex(20), key, found.id)
        self.access_tokens[access.token] = access
        return access.token, access.secret

    def login(self, username: str, password: str) -> MuseScoreUser | None:
        """The user an xAuth login names (email or name) if `password` is theirs, else None."""
        wanted = username.strip().lower()
        user = next((u for u in self.users.values() if wanted in (u.slug, u.email)), None)
        known = self.passwords.get(user.id) if user is not None else None
        # Compared even for an unknown user, so that the answer takes as long either way.
        ok = hmac.compare_digest(password.encode(), (known or "\0").encode())
        return user if ok and known is not None else None

    def find_user(self, user: int | str) -> MuseScoreUser | None:
        """A user by id, by decimal id string, or by name (case-insensitive)."""
        if isinstance(user, int):
            return self.users.get(user)
        if user.isascii() and user.isdigit() and len(user) <= 18:
            return self.users.get(int(user))
        wanted = user.lower()
        return next((u for u in self.users.values() if u.slug == wanted), None)

    def new_request_token(self, consumer_key: str, callback: str = "oob") -> RequestToken:
        """Issue a request token as ``request_token`` does."""
        token = RequestToken(
            token=secrets.token_hex(16),
            secret=secrets.token_hex(20),
            consumer_key=consumer_key,
            callback=callback,
            created_at=self.clock.now(),
        )
        self._prune_request_tokens()
        self.request_tokens[token.token] = token
        return token

    def _prune_request_tokens(self) -> None:
        now = self.clock.now()
        expired = [
            key
            for key, token in self.request_tokens.items()
            if now - token.created_at >= self.request_token_ttl
        ]
        for key in expired:
            del self.request_tokens[key]

    def live_request_token(self, token: str) -> RequestToken | None:
        """The request token, unless unknown or past `request_token_ttl`."""
        record = self.request_tokens.get(token)
        if record is None or self.clock.now() - record.created_at >= self.request_token_ttl:
            return None
        return record

    def approve(self, request_token: str, username: str | None = None) -> str:
        """Approve a request token as a user (the demo user by default); return the verifier.

        What a user does on the authorize page; approving again returns the same verifier.
        """
        record = self.live_request_token(request_token)
        if record is None:
            raise ValueError("unknown or expired request token")
        user = self.find_user(username) if username is not None else self.users[DEMO_USER_ID]
        if user is None:
            raise ValueError(f"unknown user {username!r}")
        if record.verifier is None or record.user_id != user.id:
            record.verifier = secrets.token_hex(6)
            record.user_id = user.id
        return record.verifier

    def exchange(self, record: RequestToken, verifier: str | None) -> AccessToken:
        """Trade an approved request token and its verifier for an access token (single use)."""
        if record.verifier is None or record.user_id is None:
            raise MuseScoreError(401, "request token not authorized")
        if verifier is None or not hmac.compare_digest(verifier.encode(), record.verifier.encode()):
            raise MuseScoreError(401, "invalid verifier")
        del self.request_tokens[record.token]
        token, _ = self.issue_token(record.user_id, record.consumer_key)
        return self.access_tokens[token]

    # --- OAuth verification -----------------------------------------------------------------

    def check_nonce(self, consumer_key: str, nonce: str, timestamp: int) -> bool:
        """Record a nonce; False if the consumer already used it within the window."""
        floor = self.clock.wall() - self.timestamp_window
        # Entries whose timestamp left the window cannot be replayed (the timestamp check
        # refuses them first), so they are forgotten; insertion order is close enough to
        # timestamp order for this to keep the store to one window's worth.
        while self._nonces:
            key, stamp = next(iter(self._nonces.items()))
            if stamp >= floor:
                break
            del self._nonces[key]
        if (consumer_key, nonce) in self._nonces:
            return False
        self._nonces[consumer_key, nonce] = timestamp
        return True

    # --- visibility and search --------------------------------------------------------------

    def listed(self, score: MuseScoreScore, viewer_id: int | None = None) -> bool:
        """Whether a search by `viewer_id` (None: public level) can list the score."""
        return score.is_ready and (score.is_public or score.user_id == viewer_id)

    def readable(
        self, score: MuseScoreScore, viewer_id: int | None = None, secret: str | None = None
    ) -> bool:
        """Whether ``GET /score/{id}`` shows the score to `viewer_id` with `secret`."""
        if viewer_id is not None and score.user_id == viewer_id:
            return True
        if not score.is_ready:
            return False
        if score.is_public:
            return True
        return secret is not None and hmac.compare_digest(secret.encode(), score.secret.encode())

    def search(
        self,
        *,
        text: str | None = None,
        part: str | int | Iterable[int] | None = None,
        parts: str | int | None = None,
        language: str | None = None,
        license: str | None = None,
        sort: str | None = None,
        page: str | int | None = None,
        user_id: int | None = None,
        viewer_id: int | None = None,
    ) -> list[MuseScoreScore]:
        """One page of ``GET /score`` (see the module docstring for the exact rules).

        Values are accepted as the query carries them (strings) or as Python values; an invalid
        one raises `MuseScoreError` (400). `user_id` restricts to one owner
        (``/user/{id}/score``); `viewer_id` is the signing user (their private scores count).
        """
        needle = parse_text(text)
        programs = parse_programs(part)
        part_count = None if parts is None or parts == "" else parse_int(parts, "parts", 0)
        wanted_language = parse_language(language)
        licences = parse_license(license)
        order = parse_sort(sort)
        page_index = 0 if page is None or page == "" else parse_int(page, "page", 0)

        hits: list[tuple[MuseScoreScore, int]] = []
        for score in self.scores.values():
            if user_id is not None and score.user_id != user_id:
                continue
            if not self.listed(score, viewer_id):
                continue
            meta = score.metadata
            if programs and not meta.programs.issuperset(programs):
                continue
            if part_count is not None and len(meta.parts) != part_count:
                continue
            if wanted_language is not None and score.language != wanted_language:
                continue
            if score.license not in licences:
                continue
            rank = 0
            if needle is not None:
                rank = relevance(score, needle)
                if not rank:
                    continue
            hits.append((score, rank))

        def key(hit: tuple[MuseScoreScore, int]) -> tuple[int, int]:
            score, rank = hit
            if order == "view_count":
                return score.view_count, score.id
            if order == "date_uploaded":
                return score.posted, score.id
            if order == "comment_count":
                return score.comment_count, score.id
            return rank, score.id

        hits.sort(key=key, reverse=True)
        start = page_index * PAGE_SIZE
        return [score for score, _ in hits[start : start + PAGE_SIZE]]

    # --- uploads and deletions --------------------------------------------------------------

    def upload(
        self,
        user_id: int,
        data: bytes,
        *,
        filename: str,
        title: str,
        description: str = "",
        private: bool = False,
        license: str = "all-rights-reserved",
        tags: Sequence[str] = (),
    ) -> MuseScoreScore:
        """Add a score as ``POST /score`` does; `MuseScoreError` (400) if the input is invalid.

        The score is ``processing`` for `render_seconds` of the emulator clock. Its metadata come
        from the ``.mscz`` (title, composer, parts, measures...) where it says, else defaults.
        """
        if user_id not in self.users:
            raise ValueError(f"unknown user {user_id!r}")
        catalogue = self.scores  # drawn first: new ids follow the catalogue's
        if not filename.lower().endswith(".mscz"):
            raise MuseScoreError(400, "score_data: must be a .mscz file")
        if not is_zip(data):
            raise MuseScoreError(400, "score_data: not a valid .mscz file (expected a zip)")
        title = title.strip()
        if not title:
            raise MuseScoreError(400, "title: is required")
        if len(title) > 255:
            raise MuseScoreError(400, "title: must be at most 255 characters")
        if license not in LICENSES:
            raise MuseScoreError(400, f"license: must be one of {', '.join(LICENSES)}")
        info = read_mscz(data) or MsczInfo()
        parts = tuple(ScorePart(name, program) for name, program in info.parts) or (
            ScorePart("Piano", 0),
        )
        measures = min(info.measures, 2000) or 32
        dimensions = "210x297"
        metadata = ScoreMetadata(
            title=info.title or title,
            subtitle=info.subtitle or None,
            composer=info.composer or None,
            poet=info.poet or None,
            pages=pages_needed(measures, len(parts), dimensions),
            measures=measures,
            lyrics=info.lyrics,
            chordnames=info.chordnames,
            keysig=info.keysig,
            duration=measures * 2,  # 4/4 at 120 bpm
            dimensions=dimensions,
            parts=parts,
        )
        wall = int(self.clock.wall())
        score_id = self._next_id
        self._next_id += 1
        score = MuseScoreScore(
            id=score_id,
            vid=score_id * 100 + self._rng.randint(0, 99),
            posted=wall,
            lastupdate=wall,
            secret=secrets.token_hex(5),
            user_id=user_id,
            sharing="private" if private else "public",
            title=title,
            description=description,
            license=license,
            language=None,
            metadata=metadata,
            tags=tuple(tags),
            ready_at=self.clock.now() + draw_render_seconds(self._rng, self.render_seconds),
            upload=data,
            clock=self.clock,
        )
        catalogue[score.id] = score
        self.uploads += 1
        return score

    def delete(self, score_id: int) -> None:
        """Remove a score (its files and pages answer 404 from now on)."""
        del self.scores[score_id]
        self.deletions += 1

    # --- URLs -------------------------------------------------------------------------------

    def rest_url(self, origin: str) -> str:
        """The REST base at `origin` (``http://127.0.0.1:<port>/musescore/services/rest``)."""
        return origin + self.prefix

    def site_url(self, origin: str) -> str:
        """The site root at `origin` (permalinks live under it)."""
        return origin + self.site_prefix

    def score_permalink(self, score: MuseScoreScore, origin: str) -> str:
        """``{site}/{username}/scores/{id}``."""
        return f"{self.site_url(origin)}/{self.users[score.user_id].slug}/scores/{score.id}"

    # The JSON shapes, as methods too (`views` holds them, as functions of the state).
    user_json = views.user_json
    score_json = views.score_json
    time_json = staticmethod(views.time_json)
    layout = staticmethod(measure_boxes)
    space_json = staticmethod(views.space_json)
    oembed_json = views.oembed_json

    # --- permalinks -------------------------------------------------------------------------

    def resolve(
        self, url: str, viewer_id: int | None = None
    ) -> MuseScoreScore | MuseScoreUser | None:
        """The score or user a site URL names, if `viewer_id` may see it.

        Accepted: the emulator's permalinks (``{site}/{username}/scores/{id}``,
        ``{site}/{username}``, ``{site}/score/{id}``, ``{site}/user/{id}``, on any host), the
        same paths on ``http(s)://(www.)musescore.com``, and the short links
        ``http(s)://mus.cr/{id}`` of a score. The username of a score permalink must be its
        owner's.
        """
        try:
            parts = urlsplit(url.strip())
        except ValueError:
            return None
        host = (parts.hostname or "").lower()
        path = parts.path
        if host == "mus.cr":
            # The short links of the oEmbed URL schemes: ``http://mus.cr/{score id}``.
            ident = path.strip("/")
            if ident.isascii() and ident.isdigit() and len(ident) <= 18:
                return self._resolvable(int(ident), None, viewer_id)
            return None
        if host in ("musescore.com", "www.musescore.com"):
            pass
        elif path.startswith(self.site_prefix + "/"):
            path = path[len(self.site_prefix) :]
        else:
            return None
        segments = [unquote(segment) for segment in path.strip("/").split("/")]
        if len(segments) == 2 and segments[0] in ("score", "user"):
            kind, ident = segments
            if not (ident.isascii() and ident.isdigit() and len(ident) <= 18):
                return None
            if kind == "user":
                return self.users.get(int(ident))
            return self._resolvable(int(ident), None, viewer_id)
        if len(segments) == 3 and segments[1] == "scores":
            ident = segments[2]
            if not (ident.isascii() and ident.isdigit() and len(ident) <= 18):
                return None
            return self._resolvable(int(ident), segments[0], viewer_id)
        if len(segments) == 1 and segments[0] and segments[0] not in _RESERVED_SITE_PATHS:
            return self.find_user(segments[0]) if not segments[0].isdigit() else None
        return None

    def _resolvable(
        self, score_id: int, username: str | None, viewer_id: int | None
    ) -> MuseScoreScore | None:
        score = self.scores.get(score_id)
        if score is None or not self.listed(score, viewer_id):
            return None
        if username is not None and self.users[score.user_id].slug != username.lower():
            return None
        return score

    # --- files ------------------------------------------------------------------------------

    def file_bytes(self, score_id: int, name: str) -> bytes:
        """The exact bytes ``{static}/{id}/{secret}/{name}`` serves (ready or not).

        `name` is one of `FILE_NAMES` or ``score_{n}.png`` (a zero-based page); anything else,
        or an unknown score, raises `KeyError`.
        """
        return self.file(self.scores[score_id], name).data

    def file(self, score: MuseScoreScore, name: str) -> Audio:
        """A static file of `score` (bytes, SHA-256, ETag), rendered once and cached.

        Raises `KeyError` for a name the score has no file for (see `file_bytes`).
        """
        return self._files.file(
            file_key(score, name),
            lambda: render_file(score, name),
            limit=self.file_cache_limit,
        )

    # --- URLs besides the base ------------------------------------------------------------

    @property
    def extra_urls(self) -> Mapping[str, str]:
        """Paths of the URL keys besides ``"musescore"`` (``emu.urls`` adds the origin)."""
        return {
            "musescore_oauth": self.oauth_prefix,
            "musescore_authorize": self.site_prefix + "/oauth/authorize",
            "musescore_static": self.static_prefix,
            "musescore_oembed": self.site_prefix + "/oembed/endpoint",
            "musescore_site": self.site_prefix,
        }
