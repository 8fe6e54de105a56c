"""The seeded catalogue of the emulated MuseScore.com: its users and a few hundred scores.

Pure: no aiohttp. The same seed draws the same catalogue, whenever it is drawn.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Final

from imuzekit.emulator._clock import Clock

from .layout import pages_needed
from .models import (
    DEMO_USER_ID,
    INSTRUMENTS,
    LICENSES,
    MuseScoreScore,
    MuseScoreUser,
    ScoreMetadata,
    ScorePart,
)

__all__ = ["USERS", "seed_catalogue"]

USERS: Final = (
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
"""The catalogue's users: (id, name, full name)."""
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


def _tags(parts: Sequence[str]) -> tuple[str, ...]:
    """A seeded score's tags: its instruments, lower-cased (drawn from no random stream, so the
    rest of the catalogue is the same with or without them)."""
    names = (name.lower() for name in parts if name != "Staff")
    return tuple(dict.fromkeys(names))[:3]


def seed_catalogue(
    seed: int,
    *,
    public_scores: int,
    private_scores: int,
    users: Mapping[int, MuseScoreUser],
    clock: Clock,
    first_id: int,
) -> tuple[dict[int, MuseScoreScore], int]:
    """Draw the catalogue: the scores by id, and the id the next upload takes."""
    rng = random.Random(f"musescore-{seed}")
    total = public_scores + private_scores
    owners = rng.choices([user[0] for user in USERS], weights=_USER_WEIGHTS, k=total)
    private = set(rng.sample(range(total), private_scores))
    # The demo user gets private scores of their own, to try the owner's view with.
    for index in sorted(private)[:3]:
        owners[index] = DEMO_USER_ID
    start, end = _POSTED_RANGE
    step = (end - start) // max(1, total)
    scores: dict[int, MuseScoreScore] = {}
    next_id = first_id
    for index in range(total):
        score_id = next_id
        next_id += rng.randint(1, 40)
        # Ids follow posting order, give or take a few days (drafts published later).
        posted = start + index * step + rng.randint(-3 * 86400, 0)
        owner = users[owners[index]]
        scores[score_id] = _seeded_score(rng, score_id, owner, index in private, posted, clock)
    return scores, next_id


def _seeded_score(
    rng: random.Random,
    score_id: int,
    owner: MuseScoreUser,
    private: bool,
    posted: int,
    clock: Clock,
) -> MuseScoreScore:
    if rng.random() < _RANDOM_ENSEMBLE_SHARE:
        pool = [name for name in INSTRUMENTS if name not in ("Soprano", "Alto", "Tenor", "Bass")]
        names: tuple[str, ...] = tuple(rng.choices(pool, k=rng.randint(1, 6)))
    else:
        names = rng.choices([e[0] for e in _ENSEMBLES], weights=[e[1] for e in _ENSEMBLES])[0]
    ensemble = _ensemble_phrase(names)
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
        subtitle=rng.choice(_SUBTITLES).format(ensemble=ensemble) if rng.random() < 0.3 else None,
        composer=composer if rng.random() < 0.95 else None,
        poet=rng.choice(_POETS) if lyrics else None,
        pages=pages_needed(measures, len(parts), dimensions),
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
        user_id=owner.id,
        sharing="private" if private else "public",
        title=title,
        description=description,
        license=rng.choices(LICENSES, weights=(30, 10, 5, 12, 10, 5, 8, 12, 8))[0],
        language=language,
        metadata=metadata,
        tags=_tags(names),
        comment_count=min(int(rng.expovariate(0.4)), 40),
        favoriting_count=int(views * rng.uniform(0, 0.05)),
        view_count=views,
        playback_count=int(views * rng.uniform(0.2, 0.9)),
        download_count=int(views * rng.uniform(0, 0.3)),
        clock=clock,
    )
