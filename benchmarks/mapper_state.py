"""The mapper's identity state: a faust-streaming table vs a dict rebuilt from a compacted topic.

The same work both ways: a keyed table of ENTRIES identity decisions (100,000 by default) sits on
a compacted Kafka topic; a worker starts, rebuilds the table from the topic, then consumes RECORDS
records (200,000) from an input topic and looks LOOKUPS keys (4) up per record (its own key and
its references; about a quarter of them hit). Each way runs in a process of its own and reports

- rebuild: from start to the table holding every entry (faust: recovery; plain: read to the end);
- startup: from start to the first record processed (faust includes its worker's boot);
- records/s over the records, and the process's RSS at the end and its peak (VmHWM).

    .venv/bin/python benchmarks/mapper_state.py [--entries N] [--records N] [--lookups N]

faust-streaming is not a dependency of the project: the script runs its faust half with a Python
that has it (``FAUST_PYTHON``, default ``/tmp/faustbench/bin/python``; make one with
``python3 -m uv venv /tmp/faustbench && python3 -m uv pip install --python
/tmp/faustbench/bin/python faust-streaming``). Uses KAFKA_BOOTSTRAP_SERVERS, else the local stack.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

PARTITIONS = 3
FAUST_WAYS = ("faust", "faust-table")  # GlobalTable, Table: each its own app id and changelog
DEFAULT_KAFKA = "127.0.0.1:19092"


def _rss() -> dict[str, float]:
    """Resident and peak resident memory of this process, in MiB (Linux)."""
    found: dict[str, float] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) / 1024
    return {"rss_mib": round(found["VmRSS"], 1), "peak_rss_mib": round(found["VmHWM"], 1)}


def _decision_key(n: int) -> bytes:
    return f"bench:users:sid-{n:08d}".encode()


def _decision_value(n: int) -> bytes:
    return json.dumps(
        {"tenant": "bench", "entity": "users", "sourced_id": f"sid-{n:08d}",
         "internal_id": str(uuid.UUID(int=n)), "reason": "crosswalk",
         "decided_at": "2026-01-01T00:00:00Z"}
    ).encode()  # fmt: skip


def _record(n: int, entries: int, lookups: int) -> bytes:
    # Keys spread over four times the table's size: about a quarter of lookups hit.
    keys = [_decision_key((n * 7919 + i * 104729) % (entries * 4)).decode() for i in range(lookups)]
    return json.dumps({"n": n, "k": keys}).encode()


async def _setup(bootstrap: str, tag: str, entries: int, records: int, lookups: int) -> None:
    """The decisions on a compacted topic (and on faust's changelog), and the input records."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    compact = {"cleanup.policy": "compact"}
    await admin.create_topics(
        [
            NewTopic(f"{tag}.identities", PARTITIONS, 1, topic_configs=compact),
            *(
                NewTopic(f"{tag}-{way}-identities-changelog", PARTITIONS, 1, topic_configs=compact)
                for way in FAUST_WAYS
            ),
            NewTopic(f"{tag}.records", PARTITIONS, 1),
        ]
    )
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks=1)
    await producer.start()
    try:
        futures = [
            await producer.send(f"{tag}.identities", _decision_value(n), key=_decision_key(n))
            for n in range(entries)
        ]
        # faust's changelog holds the table's keys and values as its serializer (json) writes them.
        futures += [
            await producer.send(
                f"{tag}-{way}-identities-changelog",
                json.dumps(str(uuid.UUID(int=n))).encode(),
                key=json.dumps(_decision_key(n).decode()).encode(),
            )
            for way in FAUST_WAYS
            for n in range(entries)
        ]
        await asyncio.gather(*futures)
        futures = [
            await producer.send(f"{tag}.records", _record(n, entries, lookups), key=str(n).encode())
            for n in range(records)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _cleanup(bootstrap: str, tag: str) -> None:
    """Delete every topic of this run (faust's own included)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(tag)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


async def _plain(bootstrap: str, tag: str, records: int) -> dict[str, Any]:
    """aiokafka: the dict rebuilt from the compacted topic, then the records consumed."""
    started = time.perf_counter()
    topic = f"{tag}.identities"
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, max_poll_records=5000)
    await reader.start()
    await reader.topics()  # metadata
    parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    reader.assign(parts)
    await reader.seek_to_beginning(*parts)
    ends = await reader.end_offsets(parts)
    table: dict[bytes, str] = {}
    pending = [tp for tp in parts if await reader.position(tp) < ends[tp]]
    while pending:
        for messages in (await reader.getmany(*pending, timeout_ms=500)).values():
            for m in messages:
                assert m.key is not None
                assert m.value is not None
                table[m.key] = json.loads(m.value)["internal_id"]
        pending = [tp for tp in pending if await reader.position(tp) < ends[tp]]
    rebuilt = time.perf_counter() - started
    consumer = AIOKafkaConsumer(
        f"{tag}.records",
        bootstrap_servers=bootstrap,
        group_id=f"{tag}-plain",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=2000,
    )
    await consumer.start()
    done = hits = 0
    first = began = 0.0
    while done < records:
        batches = await consumer.getmany(timeout_ms=500)
        for messages in batches.values():
            if not first:
                first = time.perf_counter()
                began = first
            for m in messages:
                assert m.value is not None
                for key in json.loads(m.value)["k"]:
                    if table.get(key.encode()) is not None:
                        hits += 1
                done += 1
        if batches:
            await consumer.commit()
    elapsed = time.perf_counter() - began
    await consumer.stop()
    await reader.stop()
    return {
        "way": "aiokafka + dict",
        "entries": len(table),
        "rebuild_s": round(rebuilt, 2),
        "startup_s": round(first - started, 2),
        "records_per_s": round(done / elapsed),
        "hits": hits,
        **_rss(),
    }


def _faust(
    bootstrap: str, tag: str, entries: int, records: int, global_table: bool
) -> dict[str, Any]:
    """faust-streaming: a table recovered from its changelog, and an agent over the records. A
    GlobalTable holds every decision in every worker (as every mapper instance must); a Table only
    its worker's partitions (the same here: one worker has them all)."""
    faust: Any = importlib.import_module("faust")
    started = time.perf_counter()
    app = faust.App(
        f"{tag}-{'faust' if global_table else 'faust-table'}",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        topic_partitions=PARTITIONS,
        web_enabled=False,
    )
    kind = app.GlobalTable if global_table else app.Table
    table = kind("identities", partitions=PARTITIONS)
    source = app.topic(f"{tag}.records", key_serializer="raw", value_serializer="raw")
    state: dict[str, Any] = {"done": 0, "hits": 0, "first": 0.0, "rebuilt": 0.0}

    @app.task  # type: ignore[untyped-decorator]
    async def watch_recovery() -> None:
        while len(table) < entries:  # noqa: ASYNC110 - recovery fills the table, nothing signals
            await asyncio.sleep(0.01)
        state["rebuilt"] = time.perf_counter()

    @app.agent(source)  # type: ignore[untyped-decorator]
    async def process(stream: Any) -> None:
        async for value in stream:
            if not state["first"]:
                state["first"] = time.perf_counter()
                state["entries_at_first"] = len(table)
            for key in json.loads(value)["k"]:
                if table.get(key) is not None:
                    state["hits"] += 1
            state["done"] += 1
            if state["done"] == records:
                elapsed = time.perf_counter() - state["first"]
                print(
                    json.dumps(
                        {
                            "way": f"faust-streaming {'GlobalTable' if global_table else 'Table'}",
                            "entries": state["entries_at_first"],
                            "rebuild_s": round(state["rebuilt"] - started, 2)
                            if state["rebuilt"]
                            else None,
                            "startup_s": round(state["first"] - started, 2),
                            "records_per_s": round(records / elapsed),
                            "hits": state["hits"],
                            **_rss(),
                        }
                    ),
                    flush=True,
                )
                os._exit(0)

    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    worker.execute_from_commandline()
    raise RuntimeError("the faust worker stopped before the records were processed")


def _child(way: str, python: str, args: argparse.Namespace, tag: str) -> dict[str, Any]:
    command = [python, __file__, "--child", way, "--tag", tag, "--bootstrap", args.bootstrap,
               "--entries", str(args.entries), "--records", str(args.records)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent)}
    try:
        out = subprocess.run(
            command, capture_output=True, text=True, timeout=args.timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return {"way": way, "error": f"no result within {args.timeout}s"}
    # faust's worker sends stdout through its logging: the result may follow a log prefix.
    for line in reversed((out.stdout + "\n" + out.stderr).splitlines()):
        if '{"way"' in line:
            result: dict[str, Any] = json.loads(line[line.index('{"way"') :])
            return result
    return {"way": way, "error": f"exit {out.returncode}: {out.stderr.strip()[-2000:]}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--lookups", type=int, default=4)
    parser.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_KAFKA)
    )
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--child", choices=["plain", "faust", "faust-table"], default=None)
    parser.add_argument("--tag", default=None)
    args = parser.parse_args()
    if args.child == "plain":
        print(json.dumps(asyncio.run(_plain(args.bootstrap, args.tag, args.records))))
        return
    if args.child in ("faust", "faust-table"):
        _faust(args.bootstrap, args.tag, args.entries, args.records, args.child == "faust")
        return
    tag = f"mapperbench-{uuid.uuid4().hex[:8]}"
    print(f"setting up: {args.entries:,} decisions, {args.records:,} records ({tag})", flush=True)
    began = time.perf_counter()
    asyncio.run(_setup(args.bootstrap, tag, args.entries, args.records, args.lookups))
    print(f"set up in {time.perf_counter() - began:.1f}s", flush=True)
    faust_python = os.environ.get("FAUST_PYTHON", "/tmp/faustbench/bin/python")  # noqa: S108
    ways = (("plain", sys.executable), ("faust", faust_python), ("faust-table", faust_python))
    try:
        for way, python in ways:
            result = _child(way, python, args, tag)
            print(json.dumps(result), flush=True)
    finally:
        asyncio.run(_cleanup(args.bootstrap, tag))


if __name__ == "__main__":
    main()
