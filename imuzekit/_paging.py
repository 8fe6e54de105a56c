"""One async paginator for every paged endpoint, driven by pure functions.

A provider supplies the first request, a parser from a response to a `Page`, and a pure
``next_request(previous_request, page)`` that returns the request of the following page or None
(Mureka follows ``last_id`` while ``more``; MuseScore counts pages and stops on a short one).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Generic, TypeVar

import attrs

from imuzekit._http import Request, Response, Sender

__all__ = ["Page", "Paginator"]

T = TypeVar("T")


@attrs.frozen
class Page(Generic[T]):
    """One page: its items, the total the provider reports (if any), and a cursor."""

    items: Sequence[T]
    total: int | None = None
    cursor: object = None
    more: bool | None = None


class Paginator(Generic[T]):
    """An async iterator over the items of every page, fetched one page at a time.

    ``total`` holds the provider's total once the first page has arrived; ``pages`` counts the
    requests made. Iterating twice starts over.
    """

    def __init__(
        self,
        sender: Sender,
        first: Request,
        parse: Callable[[Response], Page[T]],
        next_request: Callable[[Request, Page[T]], Request | None],
        *,
        limit: int | None = None,
    ) -> None:
        self._sender = sender
        self._first = first
        self._parse = parse
        self._next = next_request
        self._limit = limit
        self.total: int | None = None
        """The provider's total item count (after the first page), if it reports one."""
        self.pages = 0
        """How many page requests were sent."""

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        request: Request | None = self._first
        yielded = 0
        while request is not None:
            response = await self._sender.send(request)
            self.pages += 1
            page = self._parse(response)
            if page.total is not None:
                self.total = page.total
            for item in page.items:
                if self._limit is not None and yielded >= self._limit:
                    return
                yield item
                yielded += 1
            if self._limit is not None and yielded >= self._limit:
                return
            request = self._next(request, page)

    async def collect(self) -> list[T]:
        """Every item of every page, as a list."""
        return [item async for item in self]
