"""The batch runner's pure rules: the landing window, when a line may be sent again, and the
reconciliation marker carried in a create's parameters.
"""

from __future__ import annotations

import re
import time
from typing import Any

from imuzekit import Timeouts
from imuzekit.cli.batch._journal import LineRecord
from imuzekit.cli.batch._manifest import movements
from imuzekit.providers.imuze import _api as imuze_api

__all__ = [
    "landing_window",
    "marked_params",
    "markers_in",
    "resubmit_after",
    "spelled_marker",
    "when",
]

_MARKER = re.compile(r"ik:[0-9a-f]{12}")
# iMuze titles are ASCII letters and spaces only: there the marker's 12 hex digits are spelled
# with the letters a-p ("ik:09af..." -> "ik ajkp..."), as a word of its own.
_SPELLED_MARKER = re.compile(r"(?<![A-Za-z])ik ([a-p]{12})(?![A-Za-z])")
_HEX_TO_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")
_LETTERS_TO_HEX = str.maketrans("abcdefghijklmnop", "0123456789abcdef")
_TITLE_LIMITS = {"imuze": imuze_api.TITLE_MAX_LENGTH, "mureka": 50}
# The landing window's margin: the request's own bound again, at most this. It covers a
# provider that finishes acting on a request after the client stopped waiting for the answer,
# and the wall clocks of two processes (or machines) disagreeing a little.
_LANDING_MARGIN_MAX = 30.0
_UNBOUNDED = 600.0  # what a request with no time limit at all is assumed to take at most


def landing_window(timeouts: Timeouts) -> float:
    """Seconds after a create request's sender stopped (answered, gave up, or died) during
    which the provider could still act on it: the time the client waits for the answer to
    start (``connect + read``, or ``total`` when shorter) plus a margin of as much again, at
    most 30 s. The Client's defaults (10 + 60 s) give 100 s."""
    limits = [timeouts.total]
    if timeouts.connect is not None and timeouts.read is not None:
        limits.append(timeouts.connect + timeouts.read)
    bound = min((x for x in limits if x is not None), default=_UNBOUNDED)
    return bound + min(bound, _LANDING_MARGIN_MAX)


def resubmit_after(line: LineRecord, window: float) -> float:
    """The wall-clock time after which sending ``line``'s create again cannot make a second
    generation of a create sent earlier: its ``settle_by`` (kept from ``submitting`` into
    ``uncertain``), or, for a line that never recorded one (a version 1 journal, or an
    ``uncertain`` line from before), its last change plus ``window``. Zero for a line whose
    create was never possibly sent."""
    if line.settle_by is not None:
        return line.settle_by
    if line.state in ("submitting", "uncertain"):
        return line.updated_at + window
    return 0.0


def when(timestamp: float) -> str:
    """A wall-clock time for people: ``2026-12-03 10:08:02`` (local time)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def spelled_marker(marker: str) -> str:
    """A marker as an iMuze title carries it, in letters and a space: ``"ik ajkp..."``."""
    return "ik " + marker.removeprefix("ik:").translate(_HEX_TO_LETTERS)


def _with_marker(title: str | None, suffix: str, limit: int) -> str:
    """``"<title> <suffix>"`` within ``limit`` characters (the title is shortened)."""
    kept = (title or "")[: max(limit - len(suffix) - 1, 0)].rstrip()
    return f"{kept} {suffix}" if kept else suffix


def marked_params(line: LineRecord) -> dict[str, Any]:
    """The create call's keyword arguments, with the marker added where it goes."""
    params = dict(line.params)
    if line.provider == "joplin":
        params["structure"] = movements(params["structure"])
    if line.marker is None:
        return params
    limit = _TITLE_LIMITS[line.provider]
    if line.provider == "imuze":
        params["title"] = _with_marker(params.get("title"), spelled_marker(line.marker), limit)
        params["tags"] = [*params.get("tags", []), line.marker]
    else:
        params["title"] = _with_marker(params.get("title"), f"[{line.marker}]", limit)
    return params


def markers_in(*texts: str | None) -> set[str]:
    """Every reconciliation marker found in ``texts``, as ``ik:<12 hex>``.

    Both spellings are read: ``ik:<12 hex>`` (tags, Mureka titles, and iMuze titles written
    before iMuze's title rule was followed) and an iMuze title's ``ik <12 letters a-p>``.
    """
    found: set[str] = set()
    for text in texts:
        if text:
            found.update(_MARKER.findall(text))
            found.update(
                "ik:" + m.translate(_LETTERS_TO_HEX) for m in _SPELLED_MARKER.findall(text)
            )
    return found
