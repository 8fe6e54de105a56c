"""Hostile file names: invisible format characters and every Windows device name are defused.

A bidi override (U+202E) makes ``evil\u202egnp.exe`` display as ``evilexe.png``; a zero-width
character makes two names look alike; Windows refuses ``COM¹.mp3`` and ``CONIN$.txt`` as it
refuses ``con.mp3`` (device names, case-insensitive, with or without an extension).
"""

from __future__ import annotations

import unicodedata

import pytest

from imuzekit import safe_filename


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # Unicode format characters (category Cf) are removed, not replaced: the visible text stays.
        ("evil\u202egnp.exe", "evilgnp.exe.mp3"),  # RIGHT-TO-LEFT OVERRIDE
        ("a\u202db\u202cc", "abc.mp3"),  # LEFT-TO-RIGHT OVERRIDE, POP DIRECTIONAL FORMATTING
        ("a\u2066b\u2067c\u2068d\u2069", "abcd.mp3"),  # LRI, RLI, FSI, PDI
        ("a\u200db\u200cc", "abc.mp3"),  # ZERO WIDTH JOINER, ZERO WIDTH NON-JOINER
        ("\ufeffsong", "song.mp3"),  # BYTE ORDER MARK
        ("soft\u00adhyphen", "softhyphen.mp3"),  # SOFT HYPHEN is Cf too
        ("a\u200bb\u2060c\u061cd", "abcd.mp3"),  # ZWSP, WORD JOINER, ARABIC LETTER MARK
        ("flag\U000e0067\U000e007f", "flag.mp3"),  # TAG characters
        ("\u202e\u200b\ufeff", "download.mp3"),  # nothing visible is left
        # Removing them can reveal a device name: it is still caught.
        ("c\u200bon", "_con.mp3"),
        ("\u202eNUL", "_NUL.mp3"),
        ("com\u00ad1.txt", "_com1.txt.mp3"),
        # Windows device names: superscript digits, CONIN$ and CONOUT$, any case, any extension.
        ("COM¹", "_COM¹.mp3"),
        ("COM¹.mp3", "_COM¹.mp3.mp3"),
        ("com²", "_com².mp3"),
        ("Com³.tar.gz", "_Com³.tar.gz.mp3"),
        ("LPT¹", "_LPT¹.mp3"),
        ("lpt³", "_lpt³.mp3"),
        ("lpt².txt", "_lpt².txt.mp3"),
        ("CONIN$", "_CONIN$.mp3"),
        ("conin$.txt", "_conin$.txt.mp3"),
        ("CONOUT$", "_CONOUT$.mp3"),
        ("conout$.txt", "_conout$.txt.mp3"),
        ("COM0", "_COM0.mp3"),
        ("lpt0.log", "_lpt0.log.mp3"),
        ("con .txt", "_con .txt.mp3"),  # Windows ignores spaces before the extension
        ("aux ", "_aux.mp3"),
        # Not device names: kept as they are.
        ("COM⁴", "COM⁴.mp3"),  # only ¹ ² ³ are reserved
        ("COM10", "COM10.mp3"),
        ("CONIN", "CONIN.mp3"),
        ("conin$x", "conin$x.mp3"),
        ("console", "console.mp3"),
        ("my con.txt", "my con.txt.mp3"),
        # Other invisible or unencodable code points.
        ("a\x9bb", "a_b.mp3"),  # C1 control (CSI)
        ("a\udcffb", "a_b.mp3"),  # a lone surrogate (os.fsdecode of undecodable bytes)
    ],
)
def test_hostile_names_become_exactly(name: str, expected: str) -> None:
    assert safe_filename(name, ".mp3") == expected


def test_no_format_character_survives_anywhere() -> None:
    every_cf = "".join(
        chr(code) for code in range(0x110000) if unicodedata.category(chr(code)) == "Cf"
    )
    assert len(every_cf) > 150
    result = safe_filename(f"x{every_cf}y", every_cf[:8] + ".mp3")
    assert result == "xy.mp3"


def test_names_are_normalised_after_the_format_characters_go() -> None:
    # `e`, ZWSP, combining acute: once the ZWSP is gone, the two combine into one `é`.
    assert safe_filename("caf" + "e\u200b\u0301", "") == "caf\u00e9"
    assert safe_filename("e\u200d\u0301", "") == safe_filename("\u00e9", "")


def test_suffix_is_cleaned_like_the_name() -> None:
    assert safe_filename("x", ".\u202e3pm") == "x.3pm"
    assert safe_filename("CONOUT$", "") == "_CONOUT$"
    assert safe_filename("lpt¹", ".txt") == "_lpt¹.txt"
