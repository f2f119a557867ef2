"""The msgspec candidates of benchmarks/event_codec.py (imported only when msgspec is installed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import msgspec


class RecordV2(msgspec.Struct, frozen=True):
    key: str
    sourced_id: str
    content_hash: str
    file: str
    row: int
    payload: dict[str, str]
    operation: Literal["upsert", "delete", "seen"] = "upsert"


class RecordBatchV2(msgspec.Struct, frozen=True, tag="records", tag_field="kind"):
    tenant: str
    source: str
    run_id: str
    entity: str
    records: list[RecordV2]
    version: Literal["1.1", "1.2"] = "1.1"
    mode: Literal["bulk", "delta", "absent"] = "bulk"


class RunEndV2(msgspec.Struct, frozen=True, tag="run_end", tag_field="kind"):
    tenant: str
    run_id: str


Event = RecordBatchV2 | RunEndV2


def measure(
    dicts: list[dict[str, Any]], n: int, timed: Callable[[str, int, Callable[[], object]], None]
) -> None:
    structs = [msgspec.convert(d, Event) for d in dicts]
    json_decoder = msgspec.json.Decoder(Event)
    json_encoder = msgspec.json.Encoder()
    pack_decoder = msgspec.msgpack.Decoder(Event)
    pack_encoder = msgspec.msgpack.Encoder()
    timed(
        "v2 msgspec json", n, lambda: [json_decoder.decode(json_encoder.encode(s)) for s in structs]
    )
    timed(
        "v2 msgspec msgpack",
        n,
        lambda: [pack_decoder.decode(pack_encoder.encode(s)) for s in structs],
    )
    size_json = sum(len(json_encoder.encode(s)) for s in structs) / n
    size_pack = sum(len(pack_encoder.encode(s)) for s in structs) / n
    print(f"msgspec bytes per record: json {size_json:.0f}, msgpack {size_pack:.0f}")
