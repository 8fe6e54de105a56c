"""A small scanner for credentials in texts: logs, reprs, messages, job tokens, files."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus

__all__ = ["find_leaks"]

MIN_SECRET_LENGTH = 6
"""Shorter values (an empty token, a placeholder) would match by accident."""


def _forms(secret: str) -> set[str]:
    """The secret as it may appear: verbatim, percent-encoded, form-encoded."""
    return {secret, quote(secret, safe=""), quote_plus(secret)}


def find_leaks(secrets: Iterable[str | None], texts: Mapping[str, str]) -> list[str]:
    """``"<where>: <secret prefix>..."`` for every secret found in one of ``texts``.

    ``texts`` maps a description of where the text comes from (``"log"``, ``"repr(job)"``,
    ``"file song.mp3"``) to the text itself.
    """
    found = []
    wanted = {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}
    for where, text in texts.items():
        for secret in sorted(wanted):
            if any(form in text for form in _forms(secret)):
                found.append(f"{where}: {secret[:4]}...")
    return found
