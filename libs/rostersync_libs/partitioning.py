"""Kafka's default key partitioner, the same partitions as the Java client's and aiokafka's.

A key goes to ``(murmur2(key) & 0x7fffffff) % partitions``, murmur2 being the 32-bit MurmurHash2
with seed ``0x9747b28c`` (``org.apache.kafka.common.utils.Utils.murmur2``); a record without a key
goes to a random partition. aiokafka's own murmur2 reads the key byte by byte in Python; this one
reads all its 4-byte words at once and mixes them with fewer operations (about twice as fast),
with the same result for every key (tests/unit/libs/test_partitioning.py).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Sequence

SEED = 0x9747B28C
M = 0x5BD1E995  # the mixing constant; written out in murmur2's loop, where a literal is fastest
_MASK = 0xFFFFFFFF

# Readers of a key's little-endian 32-bit words, by word count (keys are short: a few dozen).
_WORD_READERS: dict[int, Callable[[bytes | bytearray], tuple[int, ...]]] = {}
_MAX_CACHED_WORDS = 64


def _words(data: bytes | bytearray, count: int) -> tuple[int, ...]:
    reader = _WORD_READERS.get(count)
    if reader is None:
        reader = struct.Struct(f"<{count}I").unpack_from
        if count <= _MAX_CACHED_WORDS:
            _WORD_READERS[count] = reader
    return reader(data)


def murmur2(data: bytes | bytearray) -> int:
    """Kafka's murmur2 of ``data``, as an unsigned 32-bit value (as aiokafka's ``murmur2``)."""
    length = len(data)
    h = SEED ^ length
    count = length >> 2
    if count:
        for k in _words(data, count):
            k = (k * 0x5BD1E995) & 0xFFFFFFFF
            # h = h*m ^ (k ^ k>>>24)*m, masked once: the low 32 bits of a XOR are the XOR of theirs.
            h = ((h * 0x5BD1E995) ^ ((k ^ (k >> 24)) * 0x5BD1E995)) & 0xFFFFFFFF
    rest = length & 3
    if rest:  # the last 1-3 bytes, little-endian, as the Java switch's fall-through reads them
        h = ((h ^ int.from_bytes(data[length - rest :], "little")) * M) & _MASK
    h ^= h >> 13
    h = (h * M) & _MASK
    return h ^ (h >> 15)


def key_partition(
    key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
) -> int:
    """An aiokafka ``partitioner``: the same choice as aiokafka's ``DefaultPartitioner``."""
    if key is None:
        return random.choice(available or all_partitions)  # noqa: S311 (spreads load, no secret)
    return all_partitions[(murmur2(key) & 0x7FFFFFFF) % len(all_partitions)]
