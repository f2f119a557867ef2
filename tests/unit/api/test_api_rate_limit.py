"""The API's per-token request buckets (rostersync_api/rate_limit.py)."""

from __future__ import annotations

from uuid import uuid4

import pytest
from rostersync_api.rate_limit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_token_has_its_burst_then_its_rate_and_others_are_not_affected() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    one, two = uuid4(), uuid4()
    assert [limiter.wait(one) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.wait(one) == pytest.approx(0.5)  # one request every half second
    assert limiter.wait(one) == pytest.approx(0.5)  # a refused request takes nothing
    assert limiter.wait(two) == 0.0
    clock.now += 0.5
    assert limiter.wait(one) == 0.0
    assert limiter.wait(one) > 0
    clock.now += 60  # idle: the bucket fills up to its burst, not beyond
    assert [limiter.wait(one) for _ in range(4)][-1] > 0


def test_no_limit_at_rate_zero() -> None:
    limiter = RateLimiter(rate=0, burst=1)
    token = uuid4()
    assert all(limiter.wait(token) == 0 for _ in range(1000))
