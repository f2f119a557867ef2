"""The fast key partitioner chooses exactly the partitions of Kafka's (and aiokafka's) default one."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from rostersync_libs.partitioning import key_partition, murmur2


def _keys() -> list[bytes]:
    rng = random.Random(20240607)
    shaped = [
        f"district-{rng.randrange(50)}:{rng.choice(['users', 'enrollments', 'classes'])}:"
        f"{rng.choice(['usr-', 'org-es1-crs-KG-homeroom-', 'é漢-', ''])}{rng.randrange(10**9)}".encode()
        for _ in range(3000)
    ]
    raw = [rng.randbytes(rng.randrange(0, 300)) for _ in range(3000)]
    edges = [b"", b"\x00", b"\xff" * 3, b"\xff" * 4, b"\xff" * 257, bytes(range(256))]
    return edges + shaped + raw


def test_murmur2_equals_aiokafkas_on_random_keys() -> None:
    for key in _keys():
        assert murmur2(key) == aiokafka_murmur2(key), key
        assert murmur2(bytearray(key)) == aiokafka_murmur2(key), key


def test_known_java_values() -> None:
    # From Kafka's UtilsTest.testMurmur2 (the Java client's signed ints, here as unsigned).
    cases = {
        b"21": -973932308,
        b"foobar": -790332482,
        b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        b"abc": 479470107,
    }
    for key, signed in cases.items():
        assert murmur2(key) == signed & 0xFFFFFFFF, key


def test_partitions_equal_the_default_partitioners() -> None:
    default = DefaultPartitioner()
    for count in (1, 2, 3, 6, 12, 50):
        everything = list(range(count))
        for key in _keys()[:2000]:
            assert key_partition(key, everything, everything) == default(
                key, everything, everything
            )


def test_no_key_goes_to_an_available_partition() -> None:
    for _ in range(200):
        assert key_partition(None, [0, 1, 2, 3], [1, 3]) in (1, 3)
        assert key_partition(None, [0, 1, 2, 3], []) in (0, 1, 2, 3)
