"""Paging a collection with ``limit``/``offset``, pages yielded in order.

Stop conditions: an empty page, or a page shorter than the page size that no hint contradicts.
``X-Total-Count`` and ``Link: rel="next"`` are hints only: they never end the loop (a wrong count
must not cut a bulk snapshot short, which would archive the rest), but they keep it going past a
short page (a server that caps ``limit`` below ours) and, when the total is known, let up to
``window`` pages be fetched at once. Offsets advance by what a page held, not by ``limit``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from rostersync_fetcher.rest.client import OneRosterClient, Page


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
    first = await client.page(collection, offset=0, limit=page_size, filter_=filter_)
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
        batch = await asyncio.gather(
            *(
                client.page(collection, offset=seen + i * step, limit=page_size, filter_=filter_)
                for i in range(ahead)
            )
        )
        for page in batch:
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
