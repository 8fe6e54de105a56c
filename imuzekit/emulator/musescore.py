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

- ``/musescore/oauth`` (``/oauth/...``): ``request_token`` and ``access_token`` (GET or POST);
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
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import math
import random
import re
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Final, Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit
from urllib.request import parse_http_list

import attrs
from aiohttp import web
from authlib.oauth1.rfc5849 import signature as oauth_signature

from ._clock import Clock
from ._files import (
    DRUMSET_PROGRAM,
    Box,
    MsczInfo,
    PartSpec,
    is_zip,
    midi_file,
    mscz_archive,
    musicxml_archive,
    pdf_document,
    png_image,
    read_mscz,
)
from ._kit.http import MAX_BODY_BYTES, bytes_response, json_error
from ._kit.provider import Credentials
from ._kit.routes import Mount
from ._kit.timing import RenderSeconds
from ._kit.timing import check_render_seconds as _check_render_seconds
from ._mp3 import mp3_bytes

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
]

PAGE_SIZE: Final = 20
"""Scores per search page."""

LICENSES: Final = (
    "all-rights-reserved", "publicdomain", "cc-zero", "cc-by", "cc-by-sa", "cc-by-nd",
    "cc-by-nc", "cc-by-nc-sa", "cc-by-nc-nd",
)  # fmt: skip
"""The nine licences a score can carry."""

LICENSE_FILTERS: Final[Mapping[str, frozenset[str]]] = {
    "to_play": frozenset(LICENSES),
    "to_share": frozenset(LICENSES) - {"all-rights-reserved"},
    "to_use_commercially": frozenset(("publicdomain", "cc-zero", "cc-by", "cc-by-sa", "cc-by-nd")),
    "to_modify_commercially": frozenset(("publicdomain", "cc-zero", "cc-by", "cc-by-sa")),
}
"""Values of the search's ``license`` filter and the licences each one admits."""

SORTS: Final = ("relevance", "view_count", "date_uploaded", "comment_count")
"""Values of the search's ``sort`` parameter (``relevance`` is the default)."""

INSTRUMENTS: Final[Mapping[str, int]] = {
    "Piano": 0, "Electric Piano": 4, "Harpsichord": 6, "Organ": 19, "Accordion": 21,
    "Guitar": 24, "Electric Guitar": 27, "Bass Guitar": 33, "Violin": 40, "Viola": 41,
    "Cello": 42, "Contrabass": 43, "Harp": 46, "Timpani": 47, "Strings": 48, "Voice": 52,
    "Soprano": 52, "Alto": 52, "Tenor": 52, "Bass": 52, "Trumpet": 56, "Trombone": 57,
    "Tuba": 58, "Horn": 60, "Alto Saxophone": 65, "Tenor Saxophone": 66, "Oboe": 68,
    "Bassoon": 70, "Clarinet": 71, "Piccolo": 72, "Flute": 73, "Recorder": 74,
    "Drumset": DRUMSET_PROGRAM, "Staff": -1,
}  # fmt: skip
"""Part names of the catalogue and their General MIDI program (128 drum set, -1 undefined)."""

FILE_NAMES: Final = ("score.pdf", "score.mid", "score.mxl", "score.mscz", "score.mp3", "thumb.png")
"""Static file names of every score, besides its pages ``score_{n}.png``."""

DEMO_CONSUMER_KEY: Final = "imuzekit-demo"
"""Key of the demo consumer (its secret is random per emulator)."""
DEMO_USER_ID: Final = 1024
"""Id of the demo user, whose access token is in ``emu.credentials["musescore"]``."""

_CONTENT_TYPES: Final[Mapping[str, str]] = {
    "pdf": "application/pdf",
    "mid": "audio/midi",
    "mxl": "application/vnd.recordare.musicxml",
    "mscz": "application/x-musescore",
    "mp3": "audio/mpeg",
    "png": "image/png",
}
_PAGE_PNG = re.compile(r"score_(0|[1-9][0-9]{0,5})\.png")
_CALLBACK = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*", re.ASCII)
_INT = re.compile(r"-?[0-9]{1,9}")
# Characters XML 1.0 cannot carry, even escaped: user text loses them in XML answers.
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_XML_ITEM_NAMES: Final[Mapping[str, str]] = {
    "scores": "score", "events": "event", "elements": "element", "parts": "part",
    "users": "user",
}  # fmt: skip

# Page layout, in the space route's units: 1/12 pixel at 100 dpi (a 12x scale, as the reference
# says of its PNGs). Margins of 25 mm; the first page leaves room for the title.
_UNITS_PER_PX = 12
_MARGIN = 25 / 25.4 * 100 * _UNITS_PER_PX
_TITLE_SPACE = 1175.0
_THUMB_WIDTH = 200
_MP3_KBPS = 32
_MP3_MAX_SECONDS = 120
_FIRST_SCORE_ID = 1001
_RESERVED_SITE_PATHS = frozenset(("oauth", "oembed", "score", "user", "node", "static"))
_PROVIDER_NAME = "MuseScore.com"
_OEMBED_HEIGHT = 394


class MuseScoreError(Exception):
    """A request the API refuses: `status` and `message` become ``{"error", "code"}``."""

    def __init__(self, status: int, message: str) -> None:
        """Record the status and message to answer."""
        super().__init__(message)
        self.status = status
        self.message = message


# --------------------------------------------------------------------------------------------
# Records


@attrs.frozen
class MuseScoreUser:
    """A MuseScore.com user: ``{"id", "name", "permalink", "uri"}`` on the wire."""

    id: int
    name: str
    """Screen name, also ``user.username`` in scores; its lower case is the permalink slug."""
    full_name: str
    """The person's name (composer of their own pieces; not on the wire)."""

    @property
    def slug(self) -> str:
        """Path segment of the user's permalink (``/nicolas``)."""
        return self.name.lower()


@attrs.frozen
class ScorePart:
    """One part of a score: its name and General MIDI program (128 drum set, -1 undefined)."""

    name: str
    program: int


@attrs.frozen
class ScoreMetadata:
    """What MuseScore.com extracts from the score file (``metadata`` on the wire)."""

    title: str
    subtitle: str | None
    composer: str | None
    poet: str | None
    pages: int
    measures: int
    lyrics: bool
    chordnames: bool
    keysig: int
    duration: int
    """Seconds, repeats included."""
    dimensions: str
    """Paper size in mm, ``"210x297"``."""
    parts: tuple[ScorePart, ...]

    @property
    def programs(self) -> frozenset[int]:
        """The distinct programs of the parts."""
        return frozenset(part.program for part in self.parts)


@attrs.define(eq=False)
class MuseScoreScore:
    """A score as `MuseScoreState.scores` holds it (counts as ints; the wire makes some strings).

    `status` is read from the clock: ``"processing"`` until `ready_at`, then ``"ready"``.
    """

    id: int
    vid: int
    posted: int
    """Unix seconds of posting (``dates.posted``)."""
    lastupdate: int
    secret: str
    """Ten hex digits: the key to the static files and to a private score."""
    user_id: int
    sharing: str
    """``"public"`` or ``"private"``."""
    title: str
    description: str
    license: str
    language: str | None
    """A 2-letter code, ``""`` or None."""
    metadata: ScoreMetadata
    comment_count: int = 0
    favoriting_count: int = 0
    view_count: int = 0
    playback_count: int = 0
    download_count: int = 0
    genre: str = ""
    format: str = ""
    tags: tuple[str, ...] = ()
    ready_at: float | None = None
    """Emulator clock time (`Clock.now`) at which an upload is processed; None: ready."""
    upload: bytes | None = attrs.field(default=None, repr=False)
    """The uploaded ``.mscz`` (served as ``score.mscz``); None for catalogue scores."""
    _clock: Clock | None = attrs.field(default=None, repr=False)

    @property
    def status(self) -> str:
        """``"ready"``, or ``"processing"`` while an upload is being processed."""
        if self.ready_at is None or self._clock is None or self._clock.now() >= self.ready_at:
            return "ready"
        return "processing"

    @property
    def is_ready(self) -> bool:
        """Whether `status` is ``"ready"``."""
        return self.status == "ready"

    @property
    def is_public(self) -> bool:
        """Whether `sharing` is ``"public"``."""
        return self.sharing == "public"


@attrs.define(eq=False)
class RequestToken:
    """A temporary credential of the three-legged flow."""

    token: str
    secret: str
    consumer_key: str
    callback: str
    created_at: float
    """Emulator clock time (`Clock.now`) of issue."""
    verifier: str | None = None
    """Set once a user approved it (`MuseScoreState.approve`)."""
    user_id: int | None = None


@attrs.frozen
class AccessToken:
    """A token credential: it acts as `user_id` for the consumer it was issued to."""

    token: str
    secret: str
    consumer_key: str
    user_id: int


@attrs.frozen
class _File:
    data: bytes
    etag: str
    content_type: str


@attrs.frozen
class _Caller:
    """Who sent a request: the consumer, and the user when signed with an access token."""

    consumer_key: str
    user: MuseScoreUser | None = None

    @property
    def user_id(self) -> int | None:
        return self.user.id if self.user is not None else None


# --------------------------------------------------------------------------------------------
# The seeded catalogue

_USERS: Final = (
    (5, "Nicolas", "Nicolas Froment"), (400, "Mozart", "Wolfgang Amadeus Mozart"),
    (DEMO_USER_ID, "demo", "Demo User"), (1311, "ClaraS", "Clara Schneider"),
    (1702, "pianoman", "Peter Hollis"), (2048, "thomasb", "Thomas Bonte"),
    (2519, "marc_s", "Marc Sabatella"), (3077, "jojo", "Joachim Schmitz"),
    (3344, "LaSonata", "Lucia Santoro"), (4120, "ElenaV", "Elena Vasquez"),
    (4567, "kenji", "Kenji Watanabe"), (5003, "Ana_Garcia", "Ana Garcia"),
    (5890, "fluteforever", "Fiona Hart"), (6211, "brassband42", "Brian Kelly"),
    (6876, "guitarhero", "Gustavo Ruiz"), (7350, "choirmaster", "Charlotte Dubois"),
    (7777, "Luca", "Luca Bianchi"), (8190, "sofia_m", "Sofia Meyer"),
    (8642, "BachFan", "Benedikt Huber"), (9311, "olivier", "Olivier Martin"),
)  # fmt: skip
# Relative share of the catalogue each user posted (the demo user has enough to page through).
_USER_WEIGHTS: Final = (8, 6, 5, 4, 6, 3, 4, 3, 2, 3, 2, 3, 3, 2, 3, 3, 2, 2, 4, 2)

# (parts, weight): ensembles the catalogue draws from; then a share of random ensembles.
_ENSEMBLES: Final = (
    (("Piano",), 30), (("Guitar",), 8), (("Flute",), 3), (("Violin",), 2), (("Organ",), 3),
    (("Harp",), 1), (("Recorder",), 2), (("Accordion",), 1), (("Staff",), 1),
    (("Violin", "Piano"), 6), (("Flute", "Piano"), 6), (("Voice", "Piano"), 8),
    (("Cello", "Piano"), 4), (("Clarinet", "Piano"), 3), (("Trumpet", "Piano"), 2),
    (("Alto Saxophone", "Piano"), 2), (("Piano", "Staff"), 1),
    (("Violin", "Cello", "Piano"), 3), (("Flute", "Clarinet", "Bassoon"), 1),
    (("Violin", "Violin", "Viola", "Cello"), 5), (("Soprano", "Alto", "Tenor", "Bass"), 3),
    (("Voice", "Electric Guitar", "Bass Guitar", "Drumset"), 4),
    (("Flute", "Oboe", "Clarinet", "Bassoon", "Horn"), 2),
    (("Trumpet", "Trumpet", "Horn", "Trombone", "Tuba"), 2),
    (("Voice", "Guitar", "Bass Guitar", "Drumset", "Electric Piano"), 2),
    (("Soprano", "Alto", "Tenor", "Bass", "Organ"), 1),
    (("Flute", "Clarinet", "Violin", "Cello", "Piano", "Timpani"), 2),
    (("Piccolo", "Flute", "Clarinet", "Trumpet", "Tuba", "Drumset"), 2),
)  # fmt: skip
_RANDOM_ENSEMBLE_SHARE = 0.15

# (title, composer, lyrics language or None)
_FAMOUS: Final = (
    ("Für Elise", "Ludwig van Beethoven", None), ("Moonlight Sonata", "Ludwig van Beethoven", None),
    ("Ode to Joy", "Ludwig van Beethoven", "de"), ("Canon in D", "Johann Pachelbel", None),
    ("Clair de Lune", "Claude Debussy", None), ("Gymnopédie No. 1", "Erik Satie", None),
    ("Air on the G String", "J.S. Bach", None), ("Prelude in C major", "J.S. Bach", None),
    ("Minuet in G", "Christian Petzold", None), ("Greensleeves", "Traditional", "en"),
    ("Amazing Grace", "John Newton", "en"), ("Scarborough Fair", "Traditional", "en"),
    ("Danny Boy", "Frederic Weatherly", "en"), ("Stille Nacht", "Franz Xaver Gruber", "de"),
    ("Frère Jacques", "Traditional", "fr"), ("La Vie en Rose", "Louiguy", "fr"),
    ("Au clair de la lune", "Traditional", "fr"), ("Héléna", "Nicolas Froment", "fr"),
    ("Bella Ciao", "Traditional", "it"), ("O sole mio", "Eduardo di Capua", "it"),
    ("La donna è mobile", "Giuseppe Verdi", "it"), ("Cielito Lindo", "Quirino Mendoza", "es"),
    ("La Cucaracha", "Traditional", "es"), ("Guantanamera", "Joseíto Fernández", "es"),
    ("Der Lindenbaum", "Franz Schubert", "de"), ("The Entertainer", "Scott Joplin", None),
    ("Maple Leaf Rag", "Scott Joplin", None), ("Eine kleine Nachtmusik", "WA Mozart", None),
    ("Turkish March", "WA Mozart", None), ("Nocturne Op. 9 No. 2", "Frédéric Chopin", None),
    ("Waltz in A minor", "Frédéric Chopin", None), ("Habanera", "Georges Bizet", "fr"),
    ("Morning Mood", "Edvard Grieg", None), ("The Swan", "Camille Saint-Saëns", None),
    ("Spring", "Antonio Vivaldi", None), ("Auld Lang Syne", "Traditional", "en"),
)  # fmt: skip
_COMPOSERS: Final = (
    "Johann Sebastian Bach", "J.S. Bach", "Wolfgang Amadeus Mozart", "WA Mozart",
    "Ludwig van Beethoven", "Frédéric Chopin", "Franz Schubert", "Claude Debussy", "Erik Satie",
    "Antonio Vivaldi", "Johannes Brahms", "Robert Schumann", "Felix Mendelssohn",
    "George Frideric Handel", "Joseph Haydn", "Edvard Grieg", "Gabriel Fauré",
)  # fmt: skip
_FORMS: Final = (
    "Sonata", "Sonatina", "Prelude", "Nocturne", "Waltz", "Étude", "Minuet", "Ballade", "Fugue",
    "Invention", "Gavotte", "Serenade", "Romance", "Lullaby", "March", "Rondo", "Scherzo",
    "Impromptu", "Mazurka", "Chorale", "Air", "Theme and Variations",
)  # fmt: skip
_KEYS: Final = (
    ("C major", 0), ("A minor", 0), ("G major", 1), ("E minor", 1), ("D major", 2),
    ("B minor", 2), ("F major", -1), ("D minor", -1), ("B-flat major", -2), ("E-flat major", -3),
    ("A major", 3), ("F-sharp minor", 3), ("A-flat major", -4), ("E major", 4),
)  # fmt: skip
_ORIGINAL_TITLES: Final = (
    "Rainy Afternoon", "Winter Morning", "Lost in Thought", "Dance of the Fireflies",
    "My First Score", "Theme for a Game", "Untitled", "Sunrise over the Lake", "Night Train",
    "Little Waltz", "Study No. 4", "For My Sister", "The Old Lighthouse", "Autumn Leaves Falling",
    "Galactic Voyage", "Evening Prayer", "Castle in the Clouds", "Happy Birthday Variations",
)  # fmt: skip
_DESCRIPTIONS: Final = (
    "Arrangement of {title} for {ensemble}.",
    "My transcription of {composer}'s {title}.",
    "Easy version for beginners.",
    "Practice piece for {ensemble}.",
    "Composed for my students; feedback welcome!",
    "",
    "Public domain edition, engraved with MuseScore.",
    "Galactic score",
    "Based on the original by {composer}.",
    "Written for a school concert ({ensemble}).",
    "",
)
_SUBTITLES: Final = ("Op. 27 No. 2", "for {ensemble}", "Arrangement", "First movement", "Easy")
_POETS: Final = ("Traditional", "Robert Burns", "Friedrich Schiller", "Paul Verlaine", "Anonymous")
_POSTED_RANGE: Final = (1_300_000_000, 1_400_000_000)  # 2011-03 to 2014-05


def _ensemble_phrase(parts: Sequence[str]) -> str:
    names = [name.lower() for name in parts]
    if len(names) == 1:
        return f"solo {names[0]}"
    if len(names) == 4 and names == ["violin", "violin", "viola", "cello"]:
        return "string quartet"
    return ", ".join(names[:-1]) + " and " + names[-1]


def _page_size_px(dimensions: str) -> tuple[int, int]:
    """Page size at 100 dpi of a ``"210x297"`` (mm) paper size."""
    width_text, _, height_text = dimensions.partition("x")
    try:
        width_mm, height_mm = float(width_text), float(height_text)
    except ValueError:
        width_mm, height_mm = 210.0, 297.0
    return round(width_mm / 25.4 * 100), round(height_mm / 25.4 * 100)


def _natural_system_height(parts: int) -> float:
    # About 500 units (40 px, 10 mm) a staff and its gap: a duo's system is ~1300 units high,
    # as in the reference's example (sy 1321.9 for flute and piano).
    return 300.0 + 500.0 * max(1, parts)


def _measures_per_system(parts: int) -> int:
    return 4 if parts <= 3 else 3


def _pages_needed(measures: int, parts: int, dimensions: str) -> int:
    """Pages a score of `measures` takes with the layout `space` draws."""
    _, height_px = _page_size_px(dimensions)
    available = height_px * _UNITS_PER_PX - _MARGIN * 2 - _TITLE_SPACE
    systems = max(1, int(available // (_natural_system_height(parts) * 1.2)))
    return max(1, math.ceil(measures / (systems * _measures_per_system(parts))))


# --------------------------------------------------------------------------------------------
# Query parameters


def _blank(value: object) -> bool:
    return value is None or value == ""


def _parse_int(value: str | int, name: str, minimum: int | None = None) -> int:
    if isinstance(value, bool):
        raise MuseScoreError(400, f"{name}: must be an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _INT.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        raise MuseScoreError(400, f"{name}: must be an integer")
    if minimum is not None and number < minimum:
        raise MuseScoreError(400, f"{name}: must be >= {minimum}")
    return number


def _parse_text(text: str | None) -> str | None:
    if _blank(text):
        return None
    assert text is not None
    if len(text) >= 2 and text[0] == text[-1] == '"':
        # A quoted phrase matches literally, which a substring match already does.
        text = text[1:-1]
    return text.lower() or None


def _parse_programs(value: str | int | Iterable[int] | None) -> tuple[int, ...]:
    if _blank(value):
        return ()
    assert value is not None
    items: list[str | int]
    if isinstance(value, str):
        items = [item.strip() for item in value.split(",")]
    elif isinstance(value, int):
        items = [value]
    else:
        items = list(value)
    programs = []
    for item in items:
        program = _parse_int(item, "part")
        if not -1 <= program <= DRUMSET_PROGRAM:
            raise MuseScoreError(400, "part: must be a program number in [-1, 128]")
        programs.append(program)
    return tuple(programs)


def _parse_language(value: str | None) -> str | None:
    if _blank(value):
        return None
    assert value is not None
    if not (len(value) == 2 and value.isascii() and value.isalpha()):
        raise MuseScoreError(400, "language: must be a 2-letter language code")
    return value.lower()


def _parse_license(value: str | None) -> frozenset[str]:
    if _blank(value):
        return LICENSE_FILTERS["to_play"]
    assert value is not None
    try:
        return LICENSE_FILTERS[value]
    except KeyError:
        raise MuseScoreError(400, f"license: must be one of {', '.join(LICENSE_FILTERS)}") from None


def _parse_sort(value: str | None) -> str:
    if _blank(value):
        return "relevance"
    if value not in SORTS:
        raise MuseScoreError(400, f"sort: must be one of {', '.join(SORTS)}")
    assert value is not None
    return value


def _relevance(score: MuseScoreScore, needle: str) -> int:
    fields = (score.title, score.description, score.metadata.composer or "")
    return sum(needle in field.lower() for field in fields)


# --------------------------------------------------------------------------------------------
# State


def _check_token_format(_: object, __: object, value: str) -> None:
    if value not in ("form", "json"):
        raise ValueError(f"token_format must be 'form' or 'json', got {value!r}")


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
    render_seconds: RenderSeconds = attrs.field(default=2.0, converter=_check_render_seconds)
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
    _files: OrderedDict[tuple[int, int, str], _File] = attrs.field(factory=OrderedDict, init=False)
    _files_bytes: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        # Streams of its own so that MuseScore does not draw in lockstep with its siblings, and
        # so that the catalogue is the same whenever it is drawn (before or after uploads).
        self._rng = random.Random(f"musescore-uploads-{self.seed}")
        self.consumer_secret = secrets.token_hex(16)
        self.consumers[self.consumer_key] = self.consumer_secret
        for user_id, name, full_name in _USERS:
            self.users[user_id] = MuseScoreUser(user_id, name, full_name)
        self.token, self.token_secret = self.issue_token(DEMO_USER_ID)

    @property
    def scores(self) -> dict[int, MuseScoreScore]:
        """Every score by id, uploads included (deleted ones are removed).

        The seeded catalogue is drawn on first access (the same for a given `seed`).
        """
        if self._scores is None:
            self._scores = {}
            self._seed_catalogue()
        return self._scores

    # --- catalogue --------------------------------------------------------------------------

    def _seed_catalogue(self) -> None:
        rng = random.Random(f"musescore-{self.seed}")
        total = self.public_scores + self.private_scores
        owners = rng.choices([user[0] for user in _USERS], weights=_USER_WEIGHTS, k=total)
        private = set(rng.sample(range(total), self.private_scores))
        # The demo user gets private scores of their own, to try the owner's view with.
        for index in sorted(private)[:3]:
            owners[index] = DEMO_USER_ID
        start, end = _POSTED_RANGE
        step = (end - start) // max(1, total)
        for index in range(total):
            score_id = self._next_id
            self._next_id += rng.randint(1, 40)
            # Ids follow posting order, give or take a few days (drafts published later).
            posted = start + index * step + rng.randint(-3 * 86400, 0)
            self._add(self._seeded_score(rng, score_id, owners[index], index in private, posted))

    def _seeded_score(
        self, rng: random.Random, score_id: int, owner_id: int, private: bool, posted: int
    ) -> MuseScoreScore:
        if rng.random() < _RANDOM_ENSEMBLE_SHARE:
            pool = [
                name for name in INSTRUMENTS if name not in ("Soprano", "Alto", "Tenor", "Bass")
            ]
            names: tuple[str, ...] = tuple(rng.choices(pool, k=rng.randint(1, 6)))
        else:
            names = rng.choices([e[0] for e in _ENSEMBLES], weights=[e[1] for e in _ENSEMBLES])[0]
        ensemble = _ensemble_phrase(names)
        owner = self.users[owner_id]
        roll = rng.random()
        language: str | None
        if roll < 0.35:
            title, composer, lyrics_language = rng.choice(_FAMOUS)
            meta_title = title
            if rng.random() < 0.3:
                title = f"{title} ({'easy ' if rng.random() < 0.5 else ''}{ensemble})"
        elif roll < 0.8:
            form = rng.choice(_FORMS)
            key, _ = rng.choice(_KEYS)
            title = rng.choice(
                (f"{form} in {key}", f"{form} No. {rng.randint(1, 12)}", f"{form} for {ensemble}")
            )
            composer, lyrics_language, meta_title = rng.choice(_COMPOSERS), None, title
        else:
            title = rng.choice(_ORIGINAL_TITLES)
            composer, meta_title = owner.full_name, title
            lyrics_language = rng.choice(("en", "fr", "de", "es", "it", None, None, None))
        has_voice = any(INSTRUMENTS[name] == 52 for name in names)
        lyrics = lyrics_language is not None and (has_voice or rng.random() < 0.3)
        if lyrics:
            # Users often leave the language out even when there are lyrics.
            language = lyrics_language if rng.random() < 0.8 else rng.choice((None, ""))
        else:
            language = rng.choice((None, None, None, ""))
        description = rng.choice(_DESCRIPTIONS).format(
            title=meta_title, composer=composer, ensemble=ensemble
        )
        if ensemble in meta_title:
            # "Arrangement of Rondo for solo flute for solo flute." reads badly.
            description = description.replace(f" for {ensemble}.", ".")
        parts = tuple(ScorePart(name, INSTRUMENTS[name]) for name in names)
        measures = rng.randint(8, max(16, 240 // len(parts)))
        dimensions = "210x297" if rng.random() < 0.8 else "216x279"
        seconds_per_measure = 4 * 60 / rng.randint(60, 160)
        metadata = ScoreMetadata(
            title=meta_title,
            subtitle=rng.choice(_SUBTITLES).format(ensemble=ensemble)
            if rng.random() < 0.3
            else None,
            composer=composer if rng.random() < 0.95 else None,
            poet=rng.choice(_POETS) if lyrics else None,
            pages=_pages_needed(measures, len(parts), dimensions),
            measures=measures,
            lyrics=lyrics,
            chordnames=rng.random() < 0.25,
            keysig=rng.choice(_KEYS)[1] if rng.random() < 0.9 else rng.randint(-7, 7),
            duration=max(1, round(measures * seconds_per_measure)),
            dimensions=dimensions,
            parts=parts,
        )
        views = int(rng.lognormvariate(4.0, 1.6))
        return MuseScoreScore(
            id=score_id,
            vid=score_id * 100 + rng.randint(0, 99),
            posted=posted,
            lastupdate=posted + (rng.randint(60, 90 * 86400) if rng.random() < 0.4 else 0),
            secret=f"{rng.getrandbits(40):010x}",
            user_id=owner_id,
            sharing="private" if private else "public",
            title=title,
            description=description,
            license=rng.choices(LICENSES, weights=(30, 10, 5, 12, 10, 5, 8, 12, 8))[0],
            language=language,
            metadata=metadata,
            comment_count=min(int(rng.expovariate(0.4)), 40),
            favoriting_count=int(views * rng.uniform(0, 0.05)),
            view_count=views,
            playback_count=int(views * rng.uniform(0.2, 0.9)),
            download_count=int(views * rng.uniform(0, 0.3)),
            clock=self.clock,
        )

    def _add(self, score: MuseScoreScore) -> None:
        self.scores[score.id] = score

    # --- consumers, tokens, users -----------------------------------------------------------

    def credentials(self) -> Credentials:
        """The demo user's access token; ``extra`` holds the consumer key and secret too."""
        return Credentials(
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

    def _live_request_token(self, token: str) -> RequestToken | None:
        record = self.request_tokens.get(token)
        if record is None or self.clock.now() - record.created_at >= self.request_token_ttl:
            return None
        return record

    def approve(self, request_token: str, username: str | None = None) -> str:
        """Approve a request token as a user (the demo user by default); return the verifier.

        What a user does on the authorize page; approving again returns the same verifier.
        """
        record = self._live_request_token(request_token)
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
        needle = _parse_text(text)
        programs = _parse_programs(part)
        part_count = None if parts is None or parts == "" else _parse_int(parts, "parts", 0)
        wanted_language = _parse_language(language)
        licences = _parse_license(license)
        order = _parse_sort(sort)
        page_index = 0 if page is None or page == "" else _parse_int(page, "page", 0)

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
            relevance = 0
            if needle is not None:
                relevance = _relevance(score, needle)
                if not relevance:
                    continue
            hits.append((score, relevance))

        def key(hit: tuple[MuseScoreScore, int]) -> tuple[int, int]:
            score, relevance = hit
            if order == "view_count":
                return score.view_count, score.id
            if order == "date_uploaded":
                return score.posted, score.id
            if order == "comment_count":
                return score.comment_count, score.id
            return relevance, score.id

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
            pages=_pages_needed(measures, len(parts), dimensions),
            measures=measures,
            lyrics=info.lyrics,
            chordnames=info.chordnames,
            keysig=info.keysig,
            duration=measures * 2,  # 4/4 at 120 bpm
            dimensions=dimensions,
            parts=parts,
        )
        render = self.render_seconds
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
            ready_at=self.clock.now()
            + (self._rng.uniform(*render) if isinstance(render, tuple) else render),
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

    # --- JSON -------------------------------------------------------------------------------

    def rest_url(self, origin: str) -> str:
        """The REST base at `origin` (``http://127.0.0.1:<port>/musescore/services/rest``)."""
        return origin + self.prefix

    def site_url(self, origin: str) -> str:
        """The site root at `origin` (permalinks live under it)."""
        return origin + self.site_prefix

    def score_permalink(self, score: MuseScoreScore, origin: str) -> str:
        """``{site}/{username}/scores/{id}``."""
        return f"{self.site_url(origin)}/{self.users[score.user_id].slug}/scores/{score.id}"

    def user_json(self, user: MuseScoreUser, origin: str) -> dict[str, Any]:
        """``{"id", "name", "permalink", "uri"}``, the id a string (reference shape)."""
        return {
            "id": str(user.id),
            "name": user.name,
            "permalink": f"{self.site_url(origin)}/{user.slug}",
            "uri": f"{self.rest_url(origin)}/user/{user.id}",
        }

    def score_json(self, score: MuseScoreScore, origin: str) -> dict[str, Any]:
        """The score object of the reference, key for key (ids and most counts as strings)."""
        meta = score.metadata
        owner = self.users[score.user_id]
        return {
            "id": str(score.id),
            "vid": str(score.vid),
            "dates": {"posted": str(score.posted), "lastupdate": str(score.lastupdate)},
            "secret": score.secret,
            "uri": f"{self.rest_url(origin)}/score/{score.id}",
            "permalink": self.score_permalink(score, origin),
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
                    {"part": {"name": part.name, "program": str(part.program)}}
                    for part in meta.parts
                ],
            },
        }

    def time_json(self, score: MuseScoreScore) -> list[dict[str, Any]]:
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

    def layout(self, score: MuseScoreScore) -> list[tuple[int, float, float, float, float]]:
        """Each measure's (page, x, y, sx, sy), in 1/12 px at 100 dpi, as ``space`` sends it.

        Measures are spread evenly over the metadata's pages, in systems of 4 (3 from four
        parts up) filling the page's width between 25 mm margins.
        """
        meta = score.metadata
        width_px, height_px = _page_size_px(meta.dimensions)
        page_w, page_h = width_px * _UNITS_PER_PX, height_px * _UNITS_PER_PX
        per_system = _measures_per_system(len(meta.parts))
        natural = _natural_system_height(len(meta.parts))
        sx = (page_w - 2 * _MARGIN) / per_system
        on_page: dict[int, int] = {}
        pages = max(1, meta.pages)
        for index in range(meta.measures):
            page = index * pages // meta.measures
            on_page[page] = on_page.get(page, 0) + 1
        boxes = []
        seen: dict[int, int] = {}
        for index in range(meta.measures):
            page = index * pages // meta.measures
            position = seen.get(page, 0)
            seen[page] = position + 1
            top = _MARGIN + (_TITLE_SPACE if page == 0 else 0.0)
            systems = math.ceil(on_page[page] / per_system)
            pitch = min((page_h - top - _MARGIN) / systems, natural * 1.5)
            sy = min(natural, pitch * 0.85)
            system, column = divmod(position, per_system)
            boxes.append((page, _MARGIN + column * sx, top + system * pitch, sx, sy))
        return boxes

    def space_json(self, score: MuseScoreScore) -> list[dict[str, Any]]:
        """One ``{"id", "x", "y", "sx", "sy", "page"}`` per measure (floats; see `layout`)."""
        return [
            {"id": index, "x": x, "y": y, "sx": sx, "sy": sy, "page": page}
            for index, (page, x, y, sx, sy) in enumerate(self.layout(score))
        ]

    def oembed_json(
        self,
        score: MuseScoreScore,
        origin: str,
        *,
        maxwidth: int | None = None,
        maxheight: int | None = None,
    ) -> dict[str, Any]:
        """The reference's oEmbed answer: width ``"100%"`` unless `maxwidth`, height 394."""
        owner = self.users[score.user_id]
        site = self.site_url(origin)
        permalink = self.score_permalink(score, origin)
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

    # --- permalinks -------------------------------------------------------------------------

    def resolve(
        self, url: str, viewer_id: int | None = None
    ) -> MuseScoreScore | MuseScoreUser | None:
        """The score or user a site URL names, if `viewer_id` may see it.

        Accepted: the emulator's permalinks (``{site}/{username}/scores/{id}``,
        ``{site}/{username}``, ``{site}/score/{id}``, ``{site}/user/{id}``, on any host) and
        the same paths on ``http(s)://(www.)musescore.com``. The username of a score permalink
        must be its owner's.
        """
        try:
            parts = urlsplit(url.strip())
        except ValueError:
            return None
        host = (parts.hostname or "").lower()
        path = parts.path
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
        return self._file(self.scores[score_id], name).data

    def _file(self, score: MuseScoreScore, name: str) -> _File:
        if name == "score.mp3":
            seconds = min(score.metadata.duration, _MP3_MAX_SECONDS)
            # MP3s depend on the duration alone: one file per length serves many scores.
            key = (-1, seconds, name)
        else:
            key = (score.id, score.vid, name)
        cached = self._files.get(key)
        if cached is not None:
            self._files.move_to_end(key)
            return cached
        data = self._render_file(score, name)
        extension = name.rsplit(".", 1)[-1]
        digest = hashlib.sha256(data).hexdigest()
        made = _File(data, f'"{digest[:32]}"', _CONTENT_TYPES[extension])
        self._files[key] = made
        self._files_bytes += len(data)
        # Keep the newest entry even if it alone exceeds the limit: it is about to be served.
        while self._files_bytes > self.file_cache_limit and len(self._files) > 1:
            _, evicted = self._files.popitem(last=False)
            self._files_bytes -= len(evicted.data)
        return made

    def _page_boxes(self, score: MuseScoreScore, scale: float) -> list[list[Box]]:
        pages: list[list[Box]] = [[] for _ in range(max(1, score.metadata.pages))]
        factor = scale / _UNITS_PER_PX
        for page, x, y, sx, sy in self.layout(score):
            pages[page].append((x * factor, y * factor, sx * factor, sy * factor))
        return pages

    def _render_file(self, score: MuseScoreScore, name: str) -> bytes:
        meta = score.metadata
        specs: list[PartSpec] = [(part.name, part.program) for part in meta.parts]
        staves = len(meta.parts)
        width_px, height_px = _page_size_px(meta.dimensions)
        if name == "score.pdf":
            return pdf_document(
                meta.title,
                self._page_boxes(score, 1.0),
                staves=staves,
                page_size_px=(width_px, height_px),
                composer=meta.composer or "",
            )
        if name == "score.mid":
            quarters = max(1, meta.measures * 4)
            return midi_file(specs, seconds_per_quarter=meta.duration / quarters, title=meta.title)
        if name == "score.mxl":
            return musicxml_archive(
                meta.title, meta.composer or "", specs, measures=meta.measures, keysig=meta.keysig
            )
        if name == "score.mscz":
            if score.upload is not None:
                return score.upload
            return mscz_archive(
                meta.title,
                specs,
                measures=meta.measures,
                keysig=meta.keysig,
                composer=meta.composer or "",
                subtitle=meta.subtitle or "",
                poet=meta.poet or "",
            )
        if name == "score.mp3":
            seconds = min(meta.duration, _MP3_MAX_SECONDS)
            return mp3_bytes(
                seconds, bitrate_kbps=_MP3_KBPS, id3_title=f"MuseScore emulator ({seconds} s)"
            )
        if name == "thumb.png":
            scale = _THUMB_WIDTH / width_px
            height = round(height_px * scale)
            return png_image(_THUMB_WIDTH, height, self._page_boxes(score, scale)[0], staves=staves)
        match = _PAGE_PNG.fullmatch(name)
        if match is not None:
            page = int(match.group(1))
            if page < meta.pages:
                boxes = self._page_boxes(score, 1.0)[page]
                return png_image(width_px, height_px, boxes, staves=staves)
        raise KeyError(name)

    # --- HTTP -------------------------------------------------------------------------------

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

    def build_app(self) -> web.Application:
        """Build the REST application (see `build_app`)."""
        return build_app(self)

    def build_extra_apps(self) -> Sequence[Mount]:
        """OAuth endpoints, site pages and static files, each under its own label."""
        return [
            Mount(self.name, self.oauth_prefix, build_oauth_app(self), "/oauth"),
            Mount(self.name, self.site_prefix, build_site_app(self), "/site"),
            Mount(self.name, self.static_prefix, build_static_app(self), "/static"),
        ]


# ------------------------------------------------------------------------------------------------
# Rendering: JSON, XML, JSONP

_STATE = web.AppKey("musescore_state", MuseScoreState)
_Format = Literal["json", "xml", "jsonp"]


def _state(request: web.Request) -> MuseScoreState:
    return request.app[_STATE]


def _origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _xml_text(value: str) -> str:
    return html.escape(_XML_INVALID.sub("", value), quote=False)


def _xml_element(name: str, value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        out.append(f"<{name}>")
        for key, child in value.items():
            _xml_element(key, child, out)
        out.append(f"</{name}>")
    elif isinstance(value, list):
        item_name = _XML_ITEM_NAMES.get(name, "item")
        out.append(f'<{name} is_array="true">')
        for item in value:
            # {"part": {...}} wrappers (metadata parts) are already the item element.
            if isinstance(item, dict) and len(item) == 1 and item_name in item:
                _xml_element(item_name, item[item_name], out)
            else:
                _xml_element(item_name, item, out)
        out.append(f"</{name}>")
    elif value is None:
        out.append(f"<{name}/>")
    elif isinstance(value, bool):
        out.append(f"<{name}>{'true' if value else 'false'}</{name}>")
    else:
        out.append(f"<{name}>{_xml_text(str(value))}</{name}>")


def _to_xml(value: Any, root: str) -> str:
    """The reference's XML: an element per key, arrays marked ``is_array="true"``."""
    out = ['<?xml version="1.0" encoding="utf-8"?>\n']
    _xml_element(root, value, out)
    out.append("\n")
    return "".join(out)


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


@attrs.frozen
class _Rendering:
    format: _Format
    callback: str | None = None


def _rendering(fmt: str, callback: str | None) -> _Rendering:
    if fmt in ("", "json"):
        return _Rendering("json")
    if fmt == "xml":
        return _Rendering("xml")
    if fmt == "jsonp":
        if not callback or len(callback) > 128 or not _CALLBACK.fullmatch(callback):
            raise MuseScoreError(400, "callback: a JavaScript function name is required")
        return _Rendering("jsonp", callback)
    raise MuseScoreError(400, f"Unsupported format {fmt[:16]!r}: use json, xml or jsonp")


def _render(
    rendering: _Rendering,
    data: Any,
    root: str,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    if rendering.format == "xml":
        return web.Response(
            text=_to_xml(data, root),
            status=status,
            content_type="application/xml",
            headers=headers,
        )
    if rendering.format == "jsonp":
        return web.Response(
            text=f"{rendering.callback}({_dumps(data)});",
            status=status,
            content_type="application/javascript",
            headers=headers,
        )
    return web.Response(
        text=_dumps(data), status=status, content_type="application/json", headers=headers
    )


def _render_error(rendering: _Rendering, exc: MuseScoreError, origin: str) -> web.Response:
    headers = None
    if exc.status == 401:
        headers = {"WWW-Authenticate": f'OAuth realm="{origin}"'}
    return _render(
        rendering, {"error": exc.message, "code": exc.status}, "result", exc.status, headers
    )


# ------------------------------------------------------------------------------------------------
# OAuth 1.0 verification

_TokenKind = Literal["none", "request", "access"]


def _parse_authorization(value: str) -> list[tuple[str, str]] | None:
    """The parameters of an ``OAuth`` Authorization header, None for another scheme."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "oauth":
        return None
    pairs: list[tuple[str, str]] = []
    for item in parse_http_list(rest):
        key, sep, raw = item.strip().partition("=")
        if not sep or not key.strip():
            raise MuseScoreError(401, "malformed Authorization header")
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = raw[1:-1]
        pairs.append((unquote(key.strip()), unquote(raw)))
    return pairs


def _oauth_only(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(key, value) for key, value in pairs if key.startswith("oauth_")]


async def _form_params(request: web.Request) -> list[tuple[str, str]]:
    """The form-urlencoded body's parameters (signed like the query); none for other bodies."""
    if request.content_type != "application/x-www-form-urlencoded" or not request.body_exists:
        return []
    raw = await request.read()
    try:
        return parse_qsl(
            raw.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=1000
        )
    except ValueError:
        raise MuseScoreError(400, "Malformed form body") from None


async def _authenticate(
    request: web.Request,
    state: MuseScoreState,
    *,
    token_kind: _TokenKind = "access",
    require_signature: bool = False,
) -> tuple[_Caller, dict[str, str], RequestToken | None]:
    """Verify the request's OAuth parameters; `MuseScoreError` (401) on any failure.

    Returns the caller, the oauth parameters, and the request token when `token_kind` is
    ``"request"`` (the access-token exchange).
    """
    header = request.headers.get("Authorization")
    header_pairs = _parse_authorization(header) if header else None
    try:
        query = parse_qsl(
            request.rel_url.raw_query_string, keep_blank_values=True, max_num_fields=1000
        )
    except ValueError:
        raise MuseScoreError(400, "Malformed query string") from None
    body = await _form_params(request)
    # Protocol parameters come from one place: the header, else the query, else the body. The
    # others' oauth_* parameters are then ordinary (signed) parameters.
    source = next(
        (pairs for pairs in (header_pairs or [], _oauth_only(query), _oauth_only(body)) if pairs),
        [],
    )
    oauth: dict[str, str] = {}
    for key, value in source:
        if key == "realm" or not key.startswith("oauth_"):
            continue
        if key in oauth:
            raise MuseScoreError(401, f"duplicated oauth parameter {key}")
        oauth[key] = value

    consumer_key = oauth.get("oauth_consumer_key")
    if not consumer_key:
        raise MuseScoreError(401, "missing consumer key")
    consumer_secret = state.consumers.get(consumer_key)
    if consumer_secret is None:
        raise MuseScoreError(401, "unknown consumer")
    provided = oauth.get("oauth_signature")
    if provided is None:
        if require_signature or token_kind == "request":
            raise MuseScoreError(401, "missing signature")
        if "oauth_token" in oauth:
            raise MuseScoreError(401, "a token needs a signature")
        # The reference's public call: the consumer key alone, public resources only.
        return _Caller(consumer_key), oauth, None

    if oauth.get("oauth_signature_method", "").upper() != "HMAC-SHA1":
        raise MuseScoreError(401, "unsupported signature method (HMAC-SHA1 only)")
    if oauth.get("oauth_version", "1.0") != "1.0":
        raise MuseScoreError(401, "unsupported oauth_version")
    stamp_text, nonce = oauth.get("oauth_timestamp", ""), oauth.get("oauth_nonce", "")
    if not (stamp_text.isascii() and stamp_text.isdigit() and len(stamp_text) <= 12):
        raise MuseScoreError(401, "missing or invalid oauth_timestamp")
    if not nonce:
        raise MuseScoreError(401, "missing oauth_nonce")
    timestamp = int(stamp_text)
    if abs(timestamp - state.clock.wall()) > state.timestamp_window:
        raise MuseScoreError(401, "timestamp expired")

    token = oauth.get("oauth_token")
    token_secret = ""
    user: MuseScoreUser | None = None
    request_token: RequestToken | None = None
    if token_kind == "request":
        request_token = state._live_request_token(token) if token else None
        if request_token is None or request_token.consumer_key != consumer_key:
            raise MuseScoreError(401, "invalid token")
        token_secret = request_token.secret
    elif token:
        access = state.access_tokens.get(token) if token_kind == "access" else None
        if access is None or access.consumer_key != consumer_key:
            raise MuseScoreError(401, "invalid token")
        token_secret = access.secret
        user = state.users.get(access.user_id)

    uri = f"{request.scheme}://{request.host}{request.rel_url.raw_path}"
    params = [*query, *body, *(header_pairs or [])]
    try:
        base = oauth_signature.construct_base_string(request.method, uri, params)
        expected = oauth_signature.hmac_sha1_signature(base, consumer_secret, token_secret)
    except (ValueError, TypeError, UnicodeError):
        raise MuseScoreError(401, "invalid signature") from None
    if not hmac.compare_digest(str(expected).encode(), provided.encode("utf-8", "replace")):
        raise MuseScoreError(401, "invalid signature")
    # Recorded only once the signature holds: a forged request cannot burn a nonce.
    if not state.check_nonce(consumer_key, nonce, timestamp):
        raise MuseScoreError(401, "nonce already used")
    return _Caller(consumer_key, user), oauth, request_token


# ------------------------------------------------------------------------------------------------
# REST handlers


@attrs.frozen
class _Answer:
    data: Any
    root: str
    status: int = 200


_RestHandler = Callable[[web.Request, MuseScoreState, _Caller], Awaitable[_Answer | web.Response]]


def _rest(
    handler: _RestHandler, *, require_signature: bool = False
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Wrap a REST handler: format, OAuth, and errors rendered in the requested format."""

    async def wrapped(request: web.Request) -> web.Response:
        state = _state(request)
        origin = _origin(request)
        try:
            rendering = _rendering(
                request.match_info.get("fmt", "").lstrip(".").lower(), request.query.get("callback")
            )
        except MuseScoreError as exc:
            return json_error(exc.status, exc.message)
        try:
            caller, _, _ = await _authenticate(request, state, require_signature=require_signature)
            answer = await handler(request, state, caller)
        except MuseScoreError as exc:
            return _render_error(rendering, exc, origin)
        if isinstance(answer, web.Response):
            return answer
        return _render(rendering, answer.data, answer.root, answer.status)

    return wrapped


def _score_id(request: web.Request) -> int:
    return int(request.match_info["id"])


def _readable_score(request: web.Request, state: MuseScoreState, caller: _Caller) -> MuseScoreScore:
    score = state.scores.get(_score_id(request))
    if score is None or not state.readable(score, caller.user_id, request.query.get("secret")):
        raise MuseScoreError(404, "Not found")
    return score


def _search_args(request: web.Request) -> dict[str, Any]:
    query = request.query
    return {
        "text": query.get("text"),
        "part": ",".join(query.getall("part", [])) or None,
        "parts": query.get("parts"),
        "language": query.get("language"),
        "license": query.get("license"),
        "sort": query.get("sort"),
        "page": query.get("page"),
    }


async def _search(request: web.Request, state: MuseScoreState, caller: _Caller) -> _Answer:
    found = state.search(**_search_args(request), viewer_id=caller.user_id)
    origin = _origin(request)
    return _Answer([state.score_json(score, origin) for score in found], "scores")


async def _user_scores(request: web.Request, state: MuseScoreState, caller: _Caller) -> _Answer:
    user = state.find_user(request.match_info["user"])
    if user is None:
        raise MuseScoreError(404, "Not found")
    found = state.search(**_search_args(request), user_id=user.id, viewer_id=caller.user_id)
    origin = _origin(request)
    return _Answer([state.score_json(score, origin) for score in found], "scores")


async def _get_score(request: web.Request, state: MuseScoreState, caller: _Caller) -> _Answer:
    score = _readable_score(request, state, caller)
    return _Answer(state.score_json(score, _origin(request)), "score")


async def _score_time(request: web.Request, state: MuseScoreState, caller: _Caller) -> _Answer:
    return _Answer(state.time_json(_readable_score(request, state, caller)), "events")


async def _score_space(request: web.Request, state: MuseScoreState, caller: _Caller) -> _Answer:
    return _Answer(state.space_json(_readable_score(request, state, caller)), "elements")


def _signed_user(caller: _Caller) -> MuseScoreUser:
    if caller.user is None:
        raise MuseScoreError(401, "user authentication required (sign with an access token)")
    return caller.user


def _form_text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MuseScoreError(400, f"{name}: must be a text field")
    return value


async def _upload(request: web.Request, state: MuseScoreState, caller: _Caller) -> _Answer:
    user = _signed_user(caller)
    if request.content_type != "multipart/form-data":
        raise MuseScoreError(400, "a score upload must be multipart/form-data")
    try:
        form = await request.post()
    except ValueError:
        raise MuseScoreError(400, "Malformed multipart body") from None
    field = form.get("score_data")
    if not isinstance(field, web.FileField):
        raise MuseScoreError(400, "score_data: a .mscz file is required")
    data = field.file.read()
    private_text = _form_text(form, "private").strip().lower()
    if private_text not in ("", "0", "1", "true", "false"):
        raise MuseScoreError(400, "private: must be 1 or 0")
    license = _form_text(form, "license").strip() or "all-rights-reserved"
    tags = [tag.strip() for tag in _form_text(form, "tags").split(",") if tag.strip()]
    score = state.upload(
        user.id,
        data,
        filename=field.filename or "",
        title=_form_text(form, "title"),
        description=_form_text(form, "description"),
        private=private_text in ("1", "true"),
        license=license,
        tags=tags,
    )
    return _Answer(state.score_json(score, _origin(request)), "score")


async def _delete_score(request: web.Request, state: MuseScoreState, caller: _Caller) -> _Answer:
    user = _signed_user(caller)
    score = state.scores.get(_score_id(request))
    # Someone else's private (or processing) score does not exist as far as the caller knows.
    if score is None or not state.readable(score, user.id):
        raise MuseScoreError(404, "Not found")
    if score.user_id != user.id:
        raise MuseScoreError(403, "Only the owner can delete a score")
    state.delete(score.id)
    return _Answer({"ok": True, "id": str(score.id)}, "result")


async def _me(request: web.Request, state: MuseScoreState, caller: _Caller) -> _Answer:
    return _Answer(state.user_json(_signed_user(caller), _origin(request)), "user")


async def _get_user(request: web.Request, state: MuseScoreState, caller: _Caller) -> _Answer:
    user = state.find_user(request.match_info["user"])
    if user is None:
        raise MuseScoreError(404, "Not found")
    return _Answer(state.user_json(user, _origin(request)), "user")


async def _resolve(
    request: web.Request, state: MuseScoreState, caller: _Caller
) -> _Answer | web.Response:
    url = request.query.get("url", "")
    if not url:
        raise MuseScoreError(400, "url: is required")
    found = state.resolve(url, caller.user_id)
    if found is None:
        raise MuseScoreError(404, "Not found")
    fmt = request.match_info.get("fmt", "")
    kind = "score" if isinstance(found, MuseScoreScore) else "user"
    params = {"oauth_consumer_key": caller.consumer_key}
    if "callback" in request.query:
        params["callback"] = request.query["callback"]
    location = f"{state.rest_url(_origin(request))}/{kind}/{found.id}{fmt}?{urlencode(params)}"
    return web.Response(
        status=302,
        text=_dumps({"location": location}),
        content_type="application/json",
        headers={"Location": location},
    )


_FMT = r"{fmt:(\.[A-Za-z]{1,8})?}"
_ID = r"{id:[0-9]{1,18}}"
_USER = r"{user:[A-Za-z0-9_-]{1,64}}"


def build_app(state: MuseScoreState) -> web.Application:
    """Build the MuseScore.com REST application over `state` (mounted at its prefix)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[_STATE] = state
    router = app.router
    router.add_get(f"/score{_FMT}", _rest(_search))
    router.add_post(f"/score{_FMT}", _rest(_upload, require_signature=True))
    router.add_get(f"/score/{_ID}{_FMT}", _rest(_get_score))
    router.add_delete(f"/score/{_ID}{_FMT}", _rest(_delete_score, require_signature=True))
    router.add_get(f"/score/{_ID}/time{_FMT}", _rest(_score_time))
    router.add_get(f"/score/{_ID}/space{_FMT}", _rest(_score_space))
    # The reference's headings also name these orders of the segments.
    router.add_get(f"/score/time/{_ID}{_FMT}", _rest(_score_time))
    router.add_get(f"/score/space/{_ID}{_FMT}", _rest(_score_space))
    router.add_get(f"/me{_FMT}", _rest(_me, require_signature=True))
    router.add_get(f"/user/{_USER}/score{_FMT}", _rest(_user_scores))
    router.add_get(f"/user/{_USER}{_FMT}", _rest(_get_user))
    router.add_get(f"/resolve{_FMT}", _rest(_resolve))
    return app


# ------------------------------------------------------------------------------------------------
# OAuth endpoints


def _token_answer(state: MuseScoreState, values: Mapping[str, str]) -> web.Response:
    if state.token_format == "json":
        return web.Response(text=_dumps(dict(values)), content_type="application/json")
    return web.Response(text=urlencode(values), content_type="application/x-www-form-urlencoded")


async def _request_token(request: web.Request) -> web.Response:
    state = _state(request)
    try:
        caller, oauth, _ = await _authenticate(
            request, state, token_kind="none", require_signature=True
        )
        if "oauth_token" in oauth:
            raise MuseScoreError(401, "invalid token")
    except MuseScoreError as exc:
        return json_error(exc.status, exc.message)
    callback = oauth.get("oauth_callback") or "oob"
    token = state.new_request_token(caller.consumer_key, callback)
    return _token_answer(
        state,
        {
            "oauth_token": token.token,
            "oauth_token_secret": token.secret,
            "oauth_callback_confirmed": "true",
        },
    )


async def _access_token(request: web.Request) -> web.Response:
    state = _state(request)
    try:
        _, oauth, record = await _authenticate(
            request, state, token_kind="request", require_signature=True
        )
        assert record is not None
        access = state.exchange(record, oauth.get("oauth_verifier"))
    except MuseScoreError as exc:
        return json_error(exc.status, exc.message)
    user = state.users[access.user_id]
    return _token_answer(
        state,
        {
            "oauth_token": access.token,
            "oauth_token_secret": access.secret,
            "user_id": str(user.id),
            "username": user.name,
        },
    )


def build_oauth_app(state: MuseScoreState) -> web.Application:
    """Build the OAuth application: ``request_token`` and ``access_token``, GET or POST."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[_STATE] = state
    for path, handler in (("/request_token", _request_token), ("/access_token", _access_token)):
        app.router.add_get(path, handler)
        app.router.add_post(path, handler)
    return app


# ------------------------------------------------------------------------------------------------
# Site: authorize page, oEmbed, permalink pages


def _page(title: str, body: str, status: int = 200) -> web.Response:
    text = (
        f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}'
        f" - MuseScore.com (emulated)</title></head>\n<body>\n{body}\n</body></html>\n"
    )
    return web.Response(text=text, status=status, content_type="text/html")


def _page_not_found() -> web.Response:
    return _page("Page not found", "<h1>Page not found</h1>", status=404)


async def _authorize(request: web.Request) -> web.Response:
    state = _state(request)
    token = request.query.get("oauth_token", "")
    try:
        verifier = state.approve(token)
    except ValueError:
        return _page(
            "Authorization failed",
            "<h1>Authorization failed</h1><p>Unknown or expired request token.</p>",
            status=404,
        )
    record = state.request_tokens[token]
    user = state.users[DEMO_USER_ID]
    callback = ""
    if record.callback != "oob":
        # Shown, not followed: the emulator never sends a browser (or a test) elsewhere.
        target = record.callback + ("&" if "?" in record.callback else "?")
        target += urlencode({"oauth_token": token, "oauth_verifier": verifier})
        callback = f'<p>Continue to <a href="{html.escape(target)}">the application</a>.</p>'
    body = (
        "<h1>Application authorized</h1>"
        f"<p>Signed in as <strong>{html.escape(user.name)}</strong>; the application may now "
        "act on your behalf.</p>"
        "<p>Enter this verification code in the application:</p>"
        f'<p><code id="oauth_verifier">{verifier}</code></p>{callback}'
    )
    return _page("Application authorized", body)


def _oembed_int(value: str | None, name: str) -> int | None:
    if _blank(value):
        return None
    assert value is not None
    if not (value.isascii() and value.isdigit() and len(value) <= 6 and int(value) > 0):
        raise MuseScoreError(400, f"{name}: must be a positive integer")
    return int(value)


async def _oembed(request: web.Request) -> web.Response:
    state = _state(request)
    query = request.query
    fmt = query.get("format") or "json"
    try:
        if fmt not in ("json", "xml", "jsonp", "js"):
            # What the oEmbed specification prescribes for a format the provider lacks.
            raise MuseScoreError(501, f"Unsupported format {fmt[:16]!r}: use json, xml or jsonp")
        rendering = _rendering("jsonp" if fmt == "js" else fmt, query.get("callback"))
    except MuseScoreError as exc:
        return json_error(exc.status, exc.message)
    try:
        maxwidth = _oembed_int(query.get("maxwidth"), "maxwidth")
        maxheight = _oembed_int(query.get("maxheight"), "maxheight")
        url = query.get("url", "")
        if not url:
            raise MuseScoreError(400, "url: is required")
        found = state.resolve(url)
        if not isinstance(found, MuseScoreScore):
            raise MuseScoreError(404, "Not found")
    except MuseScoreError as exc:
        return _render_error(rendering, exc, _origin(request))
    data = state.oembed_json(found, _origin(request), maxwidth=maxwidth, maxheight=maxheight)
    return _render(rendering, data, "oembed")


def _score_page(state: MuseScoreState, score: MuseScoreScore, origin: str) -> web.Response:
    owner = state.users[score.user_id]
    static = f"{origin}{state.static_prefix}/{score.id}/{score.secret}"
    body = (
        f"<h1>{html.escape(score.title)}</h1>"
        f'<p>by <a href="{state.site_url(origin)}/{owner.slug}">{html.escape(owner.name)}</a></p>'
        f"<p>{html.escape(score.description)}</p>"
        f'<p><img src="{static}/thumb.png" alt="first page"></p>'
        f'<p><a href="{static}/score.pdf">PDF</a> <a href="{static}/score.mid">MIDI</a> '
        f'<a href="{static}/score.mxl">MusicXML</a> <a href="{static}/score.mscz">MuseScore</a> '
        f'<a href="{static}/score.mp3">MP3</a></p>'
    )
    return _page(score.title, body)


def _listed_score(state: MuseScoreState, text: str) -> MuseScoreScore | None:
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        return None
    score = state.scores.get(int(text))
    return score if score is not None and state.listed(score) else None


async def _permalink(request: web.Request) -> web.Response:
    state = _state(request)
    score = _listed_score(state, request.match_info["id"])
    owner = state.users[score.user_id] if score is not None else None
    if score is None or owner is None or owner.slug != request.match_info["user"].lower():
        return _page_not_found()
    return _score_page(state, score, _origin(request))


async def _score_by_id(request: web.Request) -> web.Response:
    state = _state(request)
    score = _listed_score(state, request.match_info["id"])
    if score is None:
        return _page_not_found()
    return _score_page(state, score, _origin(request))


async def _embed(request: web.Request) -> web.Response:
    state = _state(request)
    score = _listed_score(state, request.match_info["id"])
    if score is None:
        return _page_not_found()
    origin = _origin(request)
    static = f"{origin}{state.static_prefix}/{score.id}/{score.secret}"
    body = (
        f'<img src="{static}/score_0.png" alt="{html.escape(score.title)}">'
        f'<audio controls src="{static}/score.mp3"></audio>'
    )
    return _page(score.title, body)


def _user_page(state: MuseScoreState, user: MuseScoreUser, origin: str) -> web.Response:
    owned = sorted(
        (s for s in state.scores.values() if s.user_id == user.id and state.listed(s)),
        key=lambda s: s.id,
        reverse=True,
    )
    items = "".join(
        f'<li><a href="{state.score_permalink(s, origin)}">{html.escape(s.title)}</a></li>'
        for s in owned
    )
    return _page(user.name, f"<h1>{html.escape(user.name)}</h1><ul>{items}</ul>")


async def _user_by_name(request: web.Request) -> web.Response:
    state = _state(request)
    name = request.match_info["user"]
    user = None if name.isdigit() else state.find_user(name)
    if user is None:
        return _page_not_found()
    return _user_page(state, user, _origin(request))


async def _user_by_id(request: web.Request) -> web.Response:
    state = _state(request)
    user = state.users.get(int(request.match_info["id"]))
    if user is None:
        return _page_not_found()
    return _user_page(state, user, _origin(request))


def build_site_app(state: MuseScoreState) -> web.Application:
    """Build the site: authorize page, oEmbed endpoint, embed player and permalink pages."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[_STATE] = state
    router = app.router
    # Fixed paths first: aiohttp matches in registration order, and /{user} would shadow them.
    router.add_get("/oauth/authorize", _authorize)
    router.add_get("/oembed/endpoint", _oembed)
    router.add_get(f"/node/{_ID}/embed", _embed)
    router.add_get(f"/score/{_ID}", _score_by_id)
    router.add_get(f"/user/{_ID}", _user_by_id)
    router.add_get(f"/{_USER}/scores/{_ID}", _permalink)
    router.add_get(f"/{_USER}", _user_by_name)
    return app


# ------------------------------------------------------------------------------------------------
# Static files


async def _static_file(request: web.Request) -> web.Response:
    state = _state(request)
    score = state.scores.get(int(request.match_info["id"]))
    secret = request.match_info["secret"]
    if (
        score is None
        or not score.is_ready
        or not hmac.compare_digest(secret.encode(), score.secret.encode())
    ):
        return json_error(404, "Not found")
    try:
        made = state._file(score, request.match_info["name"])
    except KeyError:
        return json_error(404, "Not found")
    return bytes_response(request, made.data, content_type=made.content_type, etag=made.etag)


def build_static_app(state: MuseScoreState) -> web.Application:
    """Build the static file server: ``/{id}/{secret}/{name}``, no auth (the secret is the key)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[_STATE] = state
    app.router.add_get(f"/{_ID}/{{secret:[0-9a-f]{{1,64}}}}/{{name}}", _static_file)
    return app
