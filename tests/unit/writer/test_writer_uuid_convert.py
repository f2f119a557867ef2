"""The writer's fast UUID converters read exactly what uuid.UUID reads, and nothing else."""

from __future__ import annotations

import random
from typing import Any
from uuid import UUID, uuid4

from rostersync_writer import convert


def reference_uuid(value: Any) -> UUID | None:
    """The converter as it was: uuid.UUID, else NULL."""
    if isinstance(value, UUID):
        return value
    if not isinstance(value, str):
        return None
    try:
        return UUID(value)
    except ValueError:
        return None


def reference_uuid_list(value: Any) -> list[UUID]:
    items = value if isinstance(value, list) else [] if value is None else [value]
    found = (reference_uuid(item) for item in items)
    return list(dict.fromkeys(item for item in found if item is not None))


def _values() -> list[Any]:
    rng = random.Random(7)
    some = str(uuid4())
    odd = [
        some, some.upper(), some.replace("-", ""), "{" + some + "}", "urn:uuid:" + some,
        " " + some.replace("-", "")[1:], "+" + some.replace("-", "")[1:], some[:-1] + "g",
        some[:-1], some + "0", some.replace("-", "_"), "-" * 4 + some.replace("-", ""),
        "é" * 32, "\ud800" * 32, "\x00" * 36, "", "x", 12, 1.5, None, True, [some], {"a": some},
        UUID(some),
    ]  # fmt: skip
    mutated = []
    for _ in range(3000):
        chars = list(str(uuid4()))
        for _ in range(rng.randrange(0, 3)):
            chars[rng.randrange(len(chars))] = rng.choice("0aF-g_ {}:é")
        mutated.append("".join(chars))
    return odd + mutated


def test_uuid_reads_what_uuid_uuid_reads() -> None:
    for value in _values():
        got = convert.uuid(value)
        expected = reference_uuid(value)
        assert got == expected, value
        if got is not None:
            assert isinstance(got, UUID)
            assert str(got) == str(expected)
            assert hash(got) == hash(expected)


def test_uuid_list_keeps_order_and_drops_repeats_and_junk() -> None:
    values = _values()
    rng = random.Random(11)
    some = str(uuid4())
    lists: list[Any] = [None, [], some, [some], [some, some.upper(), "x", some.replace("-", "")]]
    lists += [rng.sample(values, rng.randrange(0, 6)) for _ in range(500)]
    for value in lists:
        assert convert.uuid_list(value) == reference_uuid_list(value), value
