"""Paging a collection with ``limit``/``offset``, pages yielded in order.

Stop conditions: an empty page, or a page shorter than the page size that no hint contradicts.
``X-Total-Count`` and ``Link: rel="next"`` are hints only: they never end the loop (a wrong count
must not cut a bulk snapshot short, which would archive the rest), but they keep it going past a
short page (a server that caps ``limit`` below ours) and, when the total is known, let up to
``window`` pages be fetched at once. Offsets advance by what a page held, not by ``limit``.

A server that pages forever is stopped: more than the source's ``max_pages_per_collection``
pages, or the same full page served three times in a row (a server ignoring ``offset``; once
again could be records shifting under offset paging), fails the run with the reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from rostersync_fetcher.rest.client import OneRosterClient, Page
from rostersync_fetcher.rest.errors import FetchError

REPEATS = 2  # a page served again this many times in a row ends the run


def _ids(page: Page) -> list[object]:
    return [item.get("sourcedId") for item in page.items]


class _Pages:
    """Counts a collection's pages against the limit, and spots a page served twice."""

    def __init__(self, collection: str, limit: int) -> None:
        self._collection = collection
        self._limit = limit
        self.count = 0
        self._last: list[object] | None = None
        self._repeats = 0

    def asking(self, more: int, offset: int) -> None:
        if self.count + more > self._limit:
            raise FetchError(
                f"GET /{self._collection}: more than {self._limit} pages"
                f" (max_pages_per_collection); the server was still paging at offset {offset}"
            )
        self.count += more

    def received(self, page: Page, offset: int) -> None:
        ids = _ids(page)
        self._repeats = self._repeats + 1 if len(ids) > 1 and ids == self._last else 0
        if self._repeats >= REPEATS:
            raise FetchError(
                f"GET /{self._collection}: the same {len(ids)} records came back on"
                f" {REPEATS + 1} pages in a row (up to offset {offset}); the server ignores offset?"
            )
        self._last = ids


def _more(page: Page, seen: int, step: int) -> bool:
    """After ``page`` (``seen`` items so far, pages of ``step``): is there another page?"""
    if not page.items:
        return False
    if len(page.items) >= step:
        return True
    return page.has_next or (page.total is not None and seen < page.total)


async def pages(
    client: OneRosterClient,
    collection: str,
    *,
    page_size: int,
    filter_: str | None = None,
    window: int = 1,
) -> AsyncIterator[list[dict[str, Any]]]:
    counted = _Pages(collection, client.source.max_pages_per_collection)
    counted.asking(1, 0)
    first = await client.page(collection, offset=0, limit=page_size, filter_=filter_)
    counted.received(first, 0)
    if first.items:
        yield first.items
    seen = len(first.items)
    if not _more(first, seen, page_size):
        return
    step = min(page_size, len(first.items))  # the server's own cap, if it has one
    total = first.total
    while True:
        ahead = 1
        if total is not None and window > 1 and seen < total:
            ahead = max(1, min(window, -(-(total - seen) // step)))
        counted.asking(ahead, seen)
        batch = await asyncio.gather(
            *(
                client.page(collection, offset=seen + i * step, limit=page_size, filter_=filter_)
                for i in range(ahead)
            )
        )
        for page in batch:
            counted.received(page, seen)
            if page.items:
                yield page.items
            seen += len(page.items)
            if page.total is not None:
                total = page.total
            if not _more(page, seen, step):
                return
            if len(page.items) < step:
                # Short, yet the server says there is more: the pages fetched after this one
                # assumed full pages; drop them and go on from here with the smaller size.
                step = len(page.items)
                break
