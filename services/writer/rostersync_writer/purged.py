"""Nothing of a purged tenant is written again: checked in the transaction that writes.

The consumer already skips events it cannot open, but services cache data keys for a while
(``data_keys.py``): an event of a tenant purged a moment ago may still open. So the writer reads
the tenants' key rows in the batch's own transaction, ``FOR SHARE``: a purge (which updates the
row, ``rostersync tenants purge``) waits for a batch writing the tenant to commit, then deletes
what it wrote; a batch that starts after the purge sees it and leaves the tenant's events out.
"""

from __future__ import annotations

import asyncpg
from aiokafka import ConsumerRecord, TopicPartition
from rostersync_libs.data_keys import TABLE
from rostersync_libs.sealing import UNREADABLE, tenant_of_or_none

Batches = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


async def without_purged(conn: asyncpg.Connection, control: str, batches: Batches) -> Batches:
    """The batch without the events of purged tenants (nor those that did not open)."""
    tenants = {
        tenant_of_or_none(m.key)
        for messages in batches.values()
        for m in messages
        if m.value is not UNREADABLE
    }
    # Every row FOR SHARE, not only the purged ones: a purge must wait for this batch to commit.
    rows = await conn.fetch(
        f'SELECT tenant_id, purged_at FROM "{control}".{TABLE} WHERE tenant_id = ANY($1)'
        " ORDER BY tenant_id FOR SHARE",
        sorted(tenants),
    )
    purged = {row["tenant_id"] for row in rows if row["purged_at"] is not None}
    kept: Batches = {}
    for tp, messages in batches.items():
        readable = [m for m in messages if m.value is not UNREADABLE]
        if purged:  # rare: only then is each key's tenant read a second time
            readable = [m for m in readable if tenant_of_or_none(m.key) not in purged]
        if readable:
            kept[tp] = readable
    return kept
