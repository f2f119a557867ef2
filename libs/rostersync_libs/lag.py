"""Consumer lag per partition, sampled from a consumer's own fetch state.

``highwater - position`` for each assigned partition: both come with the consumer's fetches, so
a sample costs no request. Sampled at most every ``every`` seconds, after a batch or an empty
poll, so a busy loop pays one clock read per batch.
"""

from __future__ import annotations

import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError

from rostersync_libs.metrics import CONSUMER_LAG


class LagSampler:
    def __init__(self, service: str, consumer: AIOKafkaConsumer, every: float = 5.0) -> None:
        self._service = service
        self._consumer = consumer
        self._every = every
        self._next = 0.0
        self._shown: set[TopicPartition] = set()

    async def sample(self) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        assigned = set(self._consumer.assignment())
        for tp in self._shown - assigned:  # revoked: another instance reports it now
            CONSUMER_LAG.remove(self._service, tp.topic, str(tp.partition))
        self._shown &= assigned
        for tp in assigned:
            try:
                highwater = self._consumer.highwater(tp)
                if highwater is None:
                    continue  # not fetched from yet
                position = await self._consumer.position(tp)
            except (IllegalStateError, AssertionError):
                continue  # revoked meanwhile
            lag = max(0, highwater - position)
            CONSUMER_LAG.labels(self._service, tp.topic, str(tp.partition)).set(lag)
            self._shown.add(tp)
        # Until a fetch has told a partition's high watermark, ask again at the next poll.
        self._next = now + self._every if self._shown >= assigned else now
