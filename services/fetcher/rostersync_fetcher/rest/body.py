"""Reading an answer's body as a stream, never more than a limit (a page, a token answer)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from rostersync_fetcher.rest.errors import LimitError


@dataclass
class Received:
    """Bytes read so far (what a time-out reports)."""

    bytes: int = 0


async def read_body(
    response: httpx.Response, limit: int, received: Received, setting: str = "max_page_bytes"
) -> bytes:
    """The whole body (decoded), read as a stream; more than ``limit`` bytes is refused."""
    declared = response.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise LimitError(
            f"the answer is {int(declared)} bytes (Content-Length), more than {setting}"
            f" ({limit}); not read"
        )
    chunks: list[bytes] = []
    async for chunk in response.aiter_bytes():
        received.bytes += len(chunk)
        if received.bytes > limit:
            raise LimitError(f"the answer passed {setting} ({limit} bytes); reading stopped there")
        chunks.append(chunk)
    return b"".join(chunks)
