"""Song titles that iMuze accepts (4 to 255 ASCII letters and spaces), numbered for tests."""

from __future__ import annotations

_LETTERS = str.maketrans("0123456789", "abcdefghij")


def numbered_title(n: int, stem: str = "Song") -> str:
    """``stem`` and ``n`` spelled in letters (0-9 as a-j): ``numbered_title(12) == "Song bc"``.

    Distinct numbers give distinct titles, and each is a valid iMuze title.
    """
    return f"{stem} {str(n).translate(_LETTERS)}"


def spelled_title(text: str, stem: str = "Song") -> str:
    """``stem`` and ``text`` with digits spelled as letters (0-9 as a-j) and any other
    character that is not an ASCII letter as a space: ``spelled_title("s-12") == "Song s bc"``.
    """
    spelled = "".join(c if c.isascii() and c.isalpha() else " " for c in text.translate(_LETTERS))
    return f"{stem} {spelled}"
