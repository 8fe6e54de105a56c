"""Tables for people: ids whole (they are copied into the next command), "(none)" for nothing.

Rich shrinks a table that is wider than the terminal by cutting cells short with an ellipsis;
an id cut short is useless. `print_table` gives id columns the width of their longest value
(when they fit beside the other columns; else they fold over lines, never losing a
character), and prints ``(none)`` instead of an empty table.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from rich.console import Console
from rich.table import Table

__all__ = ["NONE", "print_table"]

NONE = "(none)"
"""What an empty list prints."""


def print_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    ids: Collection[str] = ("id",),
    title: str | None = None,
    console: Console | None = None,
    show_header: bool = True,
) -> None:
    """Print `rows` under `headers`; the columns named in `ids` are never truncated."""
    out = console or Console()
    if not rows:
        out.print(f"{title}: {NONE}" if title else NONE, markup=False, highlight=False)
        return
    table = Table(title=title, show_header=show_header)
    widths = {
        index: max(len(header), *(len(str(row[index])) for row in rows))
        for index, header in enumerate(headers)
        if header in ids
    }
    # Each column costs 3 characters of borders and padding; leave the others 4 at least.
    others = len(headers) - len(widths)
    whole = sum(widths.values()) + 3 * len(headers) + 1 + 4 * others <= out.width
    for index, header in enumerate(headers):
        if index in widths:
            # Whole when they fit; else folded over lines, never cut short with an ellipsis.
            table.add_column(header, overflow="fold", min_width=widths[index] if whole else None)
        else:
            table.add_column(header)
    for row in rows:
        table.add_row(*row)
    out.print(table)
