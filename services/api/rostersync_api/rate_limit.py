"""Requests per API token: a token bucket per token, kept in this process.

Each token may make ``burst`` requests at once and ``rate`` a second after that; past it the API
answers 429 ``rate_limited`` with ``Retry-After`` (seconds until a request is allowed again). In
this process only: behind several API processes each keeps its own buckets (a client can reach
the sum), which bounds a runaway script, not a determined client. Requests without a valid
token are not counted (they are refused anyway, and a token cannot be guessed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

MAX_BUCKETS = 10_000  # tokens seen; full buckets are forgotten past it (they hold nothing)


@dataclass
class Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._buckets: dict[UUID, Bucket] = {}

    def wait(self, token_id: UUID) -> float:
        """Takes one request from the token's bucket: 0 when allowed, else the seconds until
        one would be (nothing taken). ``rate`` 0: no limit."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        bucket = self._buckets.get(token_id)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._forget_full(now)
            bucket = self._buckets[token_id] = Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        full = self.burst / self.rate  # seconds after which any bucket is full again
        self._buckets = {k: b for k, b in self._buckets.items() if now - b.updated < full}
