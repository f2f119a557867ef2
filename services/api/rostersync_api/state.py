"""What every request shares: settings, the database pool, the data keys and a producer."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaProducer
from fastapi import Request
from rostersync_libs.data_keys import DataKeys

from rostersync_api.settings import ApiSettings


@dataclass
class ApiState:
    settings: ApiSettings
    pool: asyncpg.Pool
    keys: DataKeys
    producer: AIOKafkaProducer


def state_of(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state
