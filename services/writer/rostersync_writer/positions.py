"""The writer's consumer positions, kept in Postgres beside the rows they produced.

On assignment the consumer seeks to the stored positions, so a crash between the database commit
and a Kafka commit can never apply a batch twice or skip one. Partitions change hands between two
batch transactions, never during one (``Handover``), so a rebalance cannot either: consumers
sharing the partitions (writer instances) never apply one batch twice.
"""

from __future__ import annotations

import asyncio

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

SAVE_SQL = (
    "INSERT INTO consumer_positions (consumer_group, topic, partition, next_offset)"
    " VALUES ($1, $2, $3, $4) ON CONFLICT (consumer_group, topic, partition)"
    " DO UPDATE SET next_offset = excluded.next_offset"
)


async def save_positions(
    conn: asyncpg.Connection, group: str, positions: dict[TopicPartition, int]
) -> None:
    await conn.executemany(
        SAVE_SQL, [(group, tp.topic, tp.partition, offset) for tp, offset in positions.items()]
    )


class Handover:
    """One consumer's batches against its rebalances.

    Kafka runs every member's revocation before any member's assignment, and aiokafka awaits
    ``on_partitions_revoked``: holding ``applying`` while a batch's transaction runs makes the
    revocation wait for its commit. A batch fetched before a revocation but not yet applied is
    dropped (``generation`` moved): the partitions' next owner, maybe this consumer again, reads
    it from the stored positions.
    """

    def __init__(self) -> None:
        self.applying = asyncio.Lock()
        self.generation = 0

    async def revoke(self) -> None:
        async with self.applying:
            self.generation += 1


class SeekToStoredPositions(ConsumerRebalanceListener):  # type: ignore[misc]
    """Seek each newly assigned partition to the position stored in Postgres; hand partitions
    over only between batches."""

    def __init__(
        self, consumer: AIOKafkaConsumer, pool: asyncpg.Pool, group: str, handover: Handover
    ) -> None:
        self._consumer = consumer
        self._pool = pool
        self._group = group
        self._handover = handover

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._handover.revoke()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        rows = await self._pool.fetch(
            "SELECT topic, partition, next_offset FROM consumer_positions WHERE consumer_group = $1",
            self._group,
        )
        stored = {TopicPartition(r["topic"], r["partition"]): r["next_offset"] for r in rows}
        # A partition never written from starts at its first offset. An explicit seek, not
        # seek_to_beginning(): that one resets lazily, and records fetched before the reset were
        # delivered a second time after the first batch (seen in replays: a redelivered upsert
        # restored a record its run had archived in between).
        fresh = [tp for tp in assigned if tp not in stored]
        first = await self._consumer.beginning_offsets(fresh) if fresh else {}
        for tp in assigned:
            self._consumer.seek(tp, stored[tp] if tp in stored else first[tp])
