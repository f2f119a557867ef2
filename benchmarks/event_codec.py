"""What encoding and decoding one record costs, per event shape and codec (issue 10's choice).

The record topics carried one pydantic envelope per record (v1: 18.0 µs per record, encode +
decode, measured at b7abd0b — docs/benchmarks.md); issue 10 moved them to typed batch events
(``rostersync_libs.events``: the run's common fields once per message, the records of one
partition inside). This script measures, on a generated district's users and enrollments (the
bulk of every run), the codec work per record — encode once, decode once, as one hop does:

- ``v2 events.py``: the contract as the services use it — records (``RecordEvent``) to framed
  batches and back (``batches_of`` + ``framed``; ``decode`` + ``records_of``);
- ``v2 orjson+pydantic``: a batch as a pydantic model, ``orjson`` for bytes and a
  ``TypeAdapter`` of the tagged union for decoding;
- ``v2 orjson dicts``: the same bytes decoded to plain dicts (no validation: the lower bound);
- ``v2 msgspec json`` / ``v2 msgspec msgpack``: a bare ``msgspec.Struct`` tagged union, typed
  decoding, no conversion to the services' per-record type (the codec's lower bound).

    python -m benchmarks.event_codec [STUDENTS] [BATCH]
"""

from __future__ import annotations

import csv
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from rostersync_cli.generate import DistrictShape, generate
from rostersync_libs import events as v2
from rostersync_libs.events import EntityType, Origin, RecordEvent, record_event
from rostersync_libs.ids import new_run_id


class RecordV2(BaseModel):
    model_config = ConfigDict(frozen=True)
    key: str
    sourced_id: str
    operation: Literal["upsert", "delete", "seen"] = "upsert"
    content_hash: str
    file: str
    row: int
    payload: dict[str, Any]


class RecordBatchV2(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["records"] = "records"
    tenant: str
    source: str
    run_id: str
    entity: str
    version: Literal["1.1", "1.2"] = "1.1"
    mode: Literal["bulk", "delta", "absent"] = "bulk"
    records: list[RecordV2] = Field(default_factory=list)


class RunEndV2(BaseModel):
    kind: Literal["run_end"] = "run_end"
    tenant: str
    run_id: str


EVENT_V2: TypeAdapter[RecordBatchV2 | RunEndV2] = TypeAdapter(RecordBatchV2 | RunEndV2)


def read_events(folder: Path) -> list[RecordEvent]:
    run_id = new_run_id()
    found = []
    for name, entity in (("users.csv", EntityType.USER), ("enrollments.csv", EntityType.ENROLLMENT)):  # fmt: skip
        with (folder / name).open(newline="", encoding="utf-8") as f:
            for row_no, row in enumerate(csv.DictReader(f), start=2):
                found.append(
                    record_event(
                        tenant="bench",
                        source="csv",
                        run_id=run_id,
                        entity=entity,
                        sourced_id=row["sourcedId"],
                        payload=row,
                        origin=Origin(file=name, row=row_no),
                    )
                )
    return found


def batches(events: list[RecordEvent], size: int) -> list[list[RecordEvent]]:
    by_entity: dict[str, list[RecordEvent]] = {}
    for event in events:
        by_entity.setdefault(str(event.entity), []).append(event)
    return [chunk[i : i + size] for chunk in by_entity.values() for i in range(0, len(chunk), size)]


def as_batch_dict(chunk: list[RecordEvent]) -> dict[str, Any]:
    first = chunk[0]
    return {
        "kind": "records", "tenant": first.tenant, "source": first.source,
        "run_id": str(first.run_id), "entity": str(first.entity), "version": "1.1",
        "mode": "bulk",
        "records": [
            {"key": e.key().decode(), "sourced_id": e.sourced_id, "operation": "upsert",
             "content_hash": e.content_hash, "file": e.origin.file if e.origin else "",
             "row": e.origin.row if e.origin else 0, "payload": e.payload}
            for e in chunk
        ],
    }  # fmt: skip


def timed(label: str, records: int, fn: Callable[[], object]) -> None:
    fn()  # warm
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    print(f"{label:<28} {best / records * 1e6:8.2f} µs per record (encode + decode)")


def main() -> None:
    students = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        generate(folder, DistrictShape(students=students))
        events = read_events(folder)
    chunks = batches(events, size)
    dicts = [as_batch_dict(c) for c in chunks]
    n = len(events)
    print(f"{n} records (users + enrollments of {students} students), batches of {size}")
    framed = [data for b in v2.batches_of(events) for _, data in v2.framed(b)]
    print(f"v2 events.py bytes per record {sum(len(d) for d in framed) / n:.0f}, "
          f"bare batch bytes per record {sum(len(orjson.dumps(d)) for d in dicts) / n:.0f}")  # fmt: skip

    def contract() -> list[RecordEvent]:
        sent = [data for b in v2.batches_of(events) for _, data in v2.framed(b)]
        return [r for d in sent for r in v2.records_of(v2.decode(d))]  # type: ignore[arg-type]

    timed("v2 events.py", n, contract)
    models = [RecordBatchV2.model_validate(d) for d in dicts]
    timed("v2 orjson+pydantic", n,
          lambda: [EVENT_V2.validate_python(orjson.loads(orjson.dumps(m.model_dump()))) for m in models])  # fmt: skip
    timed("v2 orjson+pydantic json", n,
          lambda: [EVENT_V2.validate_json(m.model_dump_json()) for m in models])  # fmt: skip
    timed("v2 orjson dicts", n, lambda: [orjson.loads(orjson.dumps(d)) for d in dicts])
    try:
        from benchmarks.event_codec_msgspec import measure
    except ImportError:
        print("msgspec not installed: `uv pip install msgspec` to measure it")
        return
    measure(dicts, n, timed)


if __name__ == "__main__":
    main()
