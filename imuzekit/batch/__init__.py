"""Crash-safe batches of generations: a journal (SQLite, or PostgreSQL for many workers) whose
state machine makes every paid creation happen exactly once, and the runner that drives it.

`imuzekit batch run` is a thin shell over this package.
"""

from __future__ import annotations

__all__: list[str] = []
