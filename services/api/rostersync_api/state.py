"""What every request shares: settings, the database pool, the data keys, a producer and the
tokens' request buckets."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaProducer
from fastapi import Request
from rostersync_libs.data_keys import DataKeys

from rostersync_api.rate_limit import RateLimiter
from rostersync_api.settings import ApiSettings


@dataclass
class ApiState:
    settings: ApiSettings
    pool: asyncpg.Pool
    keys: DataKeys
    producer: AIOKafkaProducer
    limiter: RateLimiter  # requests per token (rate_limit.py)


def state_of(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state
