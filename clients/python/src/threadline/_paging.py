"""Cursor paging as iterators: `for s in client.sessions.list(user_id="u")` fetches page after page."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Generic, TypeVar

from pydantic import BaseModel

T = TypeVar("T")
P = TypeVar("P", bound=BaseModel)

__all__ = ["AsyncCursorPage", "CursorPage"]


class CursorPage(Generic[T, P]):
    """The items of a paged list, fetched lazily: iterate it for every item across pages
    (`next_cursor` followed until `None`), or call `first_page()` for the first page's answer.
    Each page is one request; errors raise `ThreadlineError` while iterating."""

    def __init__(self, fetch: Callable[[str | None], P], field: str) -> None:
        self._fetch = fetch
        self._field = field

    def first_page(self) -> P:
        """The first page as the API answered it (with `next_cursor`, and `total` for sessions)."""
        return self._fetch(None)

    def pages(self) -> Iterator[P]:
        """Every page, in order."""
        cursor: str | None = None
        while True:
            page = self._fetch(cursor)
            yield page
            cursor = getattr(page, "next_cursor", None)
            if cursor is None:
                return

    def __iter__(self) -> Iterator[T]:
        for page in self.pages():
            yield from getattr(page, self._field)

    def to_list(self) -> list[T]:
        """Every item of every page."""
        return list(self)


class AsyncCursorPage(Generic[T, P]):
    """`CursorPage` for `AsyncThreadline`: `async for item in client.sessions.list(user_id="u")`."""

    def __init__(self, fetch: Callable[[str | None], Awaitable[P]], field: str) -> None:
        self._fetch = fetch
        self._field = field

    async def first_page(self) -> P:
        return await self._fetch(None)

    async def pages(self) -> AsyncIterator[P]:
        cursor: str | None = None
        while True:
            page = await self._fetch(cursor)
            yield page
            cursor = getattr(page, "next_cursor", None)
            if cursor is None:
                return

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in getattr(page, self._field):
                yield item

    async def to_list(self) -> list[T]:
        return [item async for item in self]
