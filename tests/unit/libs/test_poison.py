"""Poison never loops (unit): findings are bounded by construction, a middle stage dead-letters
what it cannot read or handle and never sends a message over Kafka's limit, and the writer reads
the mapped topic without ever stopping on a message (the real-stack tests are in
tests/integration/test_poison.py)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast
from uuid import uuid4

import asyncpg
import orjson
from aiokafka import TopicPartition
from rostersync_libs.data_keys import DataKeys
from rostersync_libs.dlq import DeadLetter
from rostersync_libs.envelope import (
    EntityType,
    Envelope,
    EventKind,
    FileFacts,
    Operation,
    record_event,
)
from rostersync_libs.findings import (
    MAX_CHARS,
    MAX_FINDINGS,
    TRUNCATED,
    Finding,
    FindingsEvent,
    Severity,
    bounded,
    findings_from_json,
)
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.stage import MAX_MESSAGE_BYTES, Outcome, PerRecord, Stage, StageHandler
from rostersync_validator.files import file_findings
from rostersync_writer.poison import halves, read_mapped, seen_version
from rostersync_writer.rejections import event_json, own_row

SETTINGS = ServiceSettings()
TOPICS = SETTINGS.topics


def _unknown_columns(count: int) -> list[Finding]:
    return [
        Finding(
            code="unknown_column",
            severity=Severity.WARNING,
            message=f"'x{n}' is not a OneRoster column",
            file="users.csv",
            row=1,
            column=f"x{n}",
        )
        for n in range(count)
    ]


def test_a_few_findings_pass_untouched() -> None:
    found = _unknown_columns(3)
    assert bounded(found) == found


def test_many_findings_are_capped_with_a_count_of_the_rest() -> None:
    found = _unknown_columns(10_000)
    kept = bounded(found)
    assert len(kept) == MAX_FINDINGS + 1
    assert kept[:MAX_FINDINGS] == found[:MAX_FINDINGS]
    more = kept[-1]
    assert more.code == TRUNCATED
    assert more.message.startswith("… and 9,900 more (unknown_column: 9,900)")
    assert (more.file, more.row, more.severity) == ("users.csv", 1, Severity.WARNING)
    assert bounded(kept) == kept  # idempotent: a bounded list stays as it is


def test_errors_are_kept_first_and_the_count_says_which_codes() -> None:
    errors = [Finding(code=f"e{n % 7}", severity=Severity.ERROR, message="m") for n in range(50)]
    found = _unknown_columns(200) + errors
    kept = bounded(found, limit=60)
    assert kept[:50] == errors
    assert kept[-1].severity is Severity.WARNING  # what was left out: warnings only
    assert "… and 190 more (unknown_column: 190)" in kept[-1].message
    assert bounded(errors, limit=3)[-1].severity is Severity.ERROR
    summary = bounded(errors, limit=0)
    assert len(summary) == 1
    assert "e0: 8" in summary[0].message
    assert "2 more codes" in summary[0].message


def test_long_texts_are_cut_and_marked() -> None:
    long = Finding(
        code="c" * 500,
        severity=Severity.ERROR,
        message="m" * 10_000,
        file="f" * 10_000,
        column="k" * 10_000,
        value="v" * 1_000_000,
    )
    (cut,) = bounded([long])
    for name, limit in MAX_CHARS.items():
        text = getattr(cut, name)
        assert len(text) == limit
        assert text.endswith("…")


def test_the_worst_findings_event_fits_in_a_kafka_message() -> None:
    """Every field at its limit, every character escaped in JSON: still under the limit."""
    worst = Finding(
        code="\x01" * 1000,
        severity=Severity.ERROR,
        message="\x01" * 10_000,
        file="\x01" * 10_000,
        row=2**31,
        column="\x01" * 10_000,
        value="\x01" * 10_000,
    )
    event = FindingsEvent(
        tenant="t", run_id=str(uuid4()), stage="validator", entity="users",
        sourced_id="s" * 1000, rejected=True, findings=bounded([worst] * 10_000),
    )  # fmt: skip
    assert len(event.model_dump_json(exclude_none=True).encode()) < MAX_MESSAGE_BYTES


def test_a_header_of_10000_unknown_columns_is_reported_within_the_limit() -> None:
    header = ["sourcedId", "status", "dateLastModified", *[f"extra{n}" for n in range(10_000)]]
    facts = FileFacts(file="users.csv", entity=EntityType.USER, mode="bulk", header=header)
    found = file_findings(facts)
    event = FindingsEvent(tenant="t", run_id=str(uuid4()), stage="validator", findings=found)
    assert len(event.model_dump_json().encode()) > 2_000_000  # what crashed the validator
    kept = event.model_copy(update={"findings": bounded(found)})
    assert len(kept.model_dump_json().encode()) < 100_000


# --- the middle stage ----------------------------------------------------------------------


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]] = []

    async def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Any = None,
    ) -> asyncio.Future[None]:
        size = len(value or b"") + len(key or b"") + sum(len(k) + len(v) for k, v in headers or [])
        assert size <= MAX_MESSAGE_BYTES, f"a message of {size} bytes was sent"
        self.sent.append((topic, key, value, list(headers or [])))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def on(self, topic: str) -> list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]:
        return [(k, v, h) for t, k, v, h in self.sent if t == topic]

    def letters(self) -> list[DeadLetter]:
        return [DeadLetter.from_headers(h) for _, _, h in self.on(TOPICS.validator_dlq)]


class FakeConsumer:
    def __init__(self) -> None:
        self.committed: dict[TopicPartition, int] = {}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0, 1, 2}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.committed.update(offsets)


def _message(offset: int, value: bytes | None, key: bytes | None = b"d1:k") -> Any:
    return SimpleNamespace(
        topic=TOPICS.fetched, partition=0, offset=offset, key=key, value=value, headers=[]
    )


def _record(sourced_id: str, payload: dict[str, Any] | None = None) -> Envelope:
    return record_event(
        tenant="d1", source="csv", run_id=uuid4(), entity=EntityType.USER,
        sourced_id=sourced_id, payload=payload or {"sourcedId": sourced_id},
    )  # fmt: skip


def _stage(handler: StageHandler, **kwargs: Any) -> Stage:
    return Stage(
        name="validator",
        settings=SETTINGS,
        input_topic=TOPICS.fetched,
        output_topic=TOPICS.validated,
        dlq_topic=TOPICS.validator_dlq,
        keys=DataKeys(cast(asyncpg.Pool, None), SETTINGS),  # used only by run(), not here
        handler=handler,
        **kwargs,
    )


async def _process(stage: Stage, messages: list[Any]) -> tuple[FakeProducer, FakeConsumer]:
    producer, consumer = FakeProducer(), FakeConsumer()
    tp = TopicPartition(TOPICS.fetched, 0)
    await stage._process(cast(Any, consumer), cast(Any, producer), {tp: messages})
    assert consumer.committed == {tp: messages[-1].offset + 1}  # the stage went on past them
    return producer, consumer


async def test_null_undecodable_and_incomplete_messages_are_dead_lettered() -> None:
    good = _record("good")
    keyless = Envelope(tenant="d1", source="csv", run_id=uuid4(), entity=EntityType.USER)
    no_facts = Envelope(tenant="d1", source="csv", run_id=uuid4(), kind=EventKind.FILE)
    producer, _ = await _process(
        _stage(PerRecord(Outcome)),
        [
            _message(0, None),
            _message(1, b"{not json"),
            _message(2, keyless.to_bytes()),
            _message(3, no_facts.to_bytes()),
            _message(4, good.to_bytes(), good.key()),
            _message(5, good.to_bytes(), b"other:users:good"),  # another tenant's key
        ],
    )
    assert [v for _, v, _ in producer.on(TOPICS.validated)] == [good.to_bytes()]
    letters = producer.letters()
    assert [(d.offset, [f.code for f in d.findings]) for d in letters] == [
        (0, ["empty_message"]),
        (1, ["envelope_undecodable"]),
        (2, ["envelope_incomplete"]),
        (3, ["envelope_incomplete"]),
        (5, ["envelope_tenant_mismatch"]),
    ]
    assert "without sourced_id" in letters[2].findings[0].message
    assert "without file" in letters[3].findings[0].message
    # The tombstone goes to the dead-letter topic as it came: no value, its key.
    assert producer.on(TOPICS.validator_dlq)[0][:2] == (b"d1:k", None)


async def test_a_record_the_handler_cannot_handle_is_rejected_and_the_rest_go_on() -> None:
    def judge(event: Envelope) -> Outcome:
        return Outcome(event.model_copy(update={"mode": event.payload["mode"].lower()}))

    events = [_record(f"u{n}", {"mode": "BULK"}) for n in range(7)]
    events[4] = _record("u4", {"mode": 5})
    messages = [_message(n, e.to_bytes(), e.key()) for n, e in enumerate(events)]
    producer, _ = await _process(_stage(PerRecord(judge)), messages)
    out = [Envelope.from_bytes(v or b"") for _, v, _ in producer.on(TOPICS.validated)]
    assert [(e.sourced_id, e.operation) for e in out] == [
        *[(f"u{n}", Operation.UPSERT) for n in range(4)],
        ("u4", Operation.SEEN),  # rejected, still seen in its run
        *[(f"u{n}", Operation.UPSERT) for n in range(5, 7)],
    ]
    assert out[4].rejected_codes == ["validator_apply_failed"]
    (letter,) = producer.letters()
    assert letter.offset == 4
    assert letter.findings[0].code == "validator_apply_failed"
    assert letter.findings[0].message.startswith("AttributeError")


async def test_a_record_whose_output_is_too_large_is_rejected_instead() -> None:
    def inflate(event: Envelope) -> Outcome:
        return Outcome(event.model_copy(update={"payload": {"big": "x" * 5000}}))

    event = _record("u1")
    producer, _ = await _process(
        _stage(PerRecord(inflate), max_message_bytes=4000), [_message(0, event.to_bytes())]
    )
    (seen,) = [Envelope.from_bytes(v or b"") for _, v, _ in producer.on(TOPICS.validated)]
    assert (seen.operation, seen.rejected_codes) == (Operation.SEEN, ["message_too_large"])
    (letter,) = producer.letters()
    assert letter.findings[0].code == "message_too_large"
    assert producer.on(TOPICS.validator_dlq)[0][1] == event.to_bytes()  # the original, whole


async def test_findings_and_dead_letters_never_exceed_the_limit() -> None:
    many = _unknown_columns(10_000)

    def reject(event: Envelope) -> Outcome:
        return Outcome(None, many)

    event = _record("u1", {"sourcedId": "u1", "filler": "y" * 110_000})
    producer, _ = await _process(
        _stage(PerRecord(reject), max_message_bytes=120_000), [_message(0, event.to_bytes())]
    )
    (report,) = [orjson.loads(v or b"") for _, v, _ in producer.on(TOPICS.findings)]
    assert len(report["findings"]) == MAX_FINDINGS + 1
    assert report["findings"][-1]["code"] == TRUNCATED
    # The original and the reasons together are too large: the reasons, and where to read it.
    ((_key, value, headers),) = producer.on(TOPICS.validator_dlq)
    assert value is None
    letter = DeadLetter.from_headers(headers)
    assert letter.findings[0].code == "message_too_large"
    assert f"{TOPICS.fetched}[0]@0" in letter.findings[0].message
    assert len(letter.findings) == MAX_FINDINGS + 1


# --- the writer's reading of the mapped topic ----------------------------------------------


def _mapped(value: bytes | None, offset: int = 0, partition: int = 0) -> Any:
    return SimpleNamespace(
        topic=TOPICS.mapped, partition=partition, offset=offset, key=b"d1:users:u1", value=value,
        headers=[],
    )  # fmt: skip


def test_the_writer_sets_aside_what_it_cannot_write_before_its_transaction() -> None:
    good = _record("u1").model_copy(update={"internal_id": uuid4()})
    assert read_mapped(_mapped(good.to_bytes())) == (good, None)
    cases = {
        None: "empty_message",
        b"[]": "envelope_undecodable",
        good.model_copy(update={"content_hash": None}).to_bytes(): "writer_apply_failed",
        good.model_copy(update={"internal_id": None}).to_bytes(): "writer_apply_failed",
        good.model_copy(update={"sourced_id": "u\x001"}).to_bytes(): "writer_apply_failed",
        good.model_copy(update={"kind": EventKind.RUN_END}).to_bytes(): "envelope_incomplete",
    }
    for value, code in cases.items():
        _, problem = read_mapped(_mapped(value))
        assert (problem.code if problem else None) == code, value


def test_a_rejected_record_with_a_key_counts_as_seen() -> None:
    event = _record("u1").model_copy(update={"content_hash": None, "internal_id": uuid4()})
    seen = seen_version(event, ["writer_apply_failed"])
    assert seen is not None
    assert (seen.operation, seen.payload, seen.rejected_codes, seen.internal_id) == (
        Operation.SEEN, {}, ["writer_apply_failed"], event.internal_id,
    )  # fmt: skip
    assert seen_version(None, ["x"]) is None
    assert seen_version(event.model_copy(update={"sourced_id": "x" * 5000}), ["x"]) is None


def test_a_rejection_row_holds_nothing_postgres_refuses() -> None:
    event = _record("s\x00" + "x" * 5000, {"name": "a\x00b"}).model_copy(
        update={"tenant": "t\x00" * 1000}
    )
    row = own_row(
        _mapped(event.to_bytes()), event, [Finding(code="c", severity="error", message="m")]
    )
    tenant, _, stage, _, sourced_id, *_ = row
    assert "\x00" not in tenant
    assert len(tenant) <= 200
    assert "\x00" not in sourced_id
    assert len(sourced_id) <= 400
    assert stage == "writer"
    assert "\\u0000" not in event_json(event)
    assert orjson.loads(event_json(event))["payload"] == {"name": "ab"}


def test_halves_keep_each_partitions_order() -> None:
    tp0, tp1 = TopicPartition(TOPICS.mapped, 0), TopicPartition(TOPICS.mapped, 1)
    batches = {tp0: [_mapped(b"", n) for n in range(5)], tp1: [_mapped(b"", 9, 1)]}
    first, second = halves(cast(Any, batches))
    assert [m.offset for m in first[tp0]] == [0, 1]
    assert [m.offset for m in second[tp0]] == [2, 3, 4]
    assert tp1 not in first
    assert [m.offset for m in second[tp1]] == [9]
    first, second = halves(cast(Any, {tp0: batches[tp0][:1], tp1: batches[tp1]}))
    assert len(first) == len(second) == 1


def test_dead_letter_findings_round_trip() -> None:
    found = bounded(_unknown_columns(300))
    letter = DeadLetter(stage="validator", topic="t", partition=0, offset=1, findings=found)
    assert DeadLetter.from_headers(letter.headers()).findings == found
    assert findings_from_json(dict(letter.headers())["rostersync.errors.findings"]) == found


async def test_a_rejected_record_whose_key_holds_a_nul_is_dead_lettered_but_sends_no_seen() -> None:
    def reject(event: Envelope) -> Outcome:
        return Outcome(None, [Finding(code="nul_character_in_id", severity=Severity.ERROR,
                                      message="a NUL in the sourcedId")])  # fmt: skip

    event = _record("u\x001")
    producer, _ = await _process(_stage(PerRecord(reject)), [_message(0, event.to_bytes())])
    assert producer.on(TOPICS.validated) == []  # no key anyone can hold: nothing to mark seen
    (letter,) = producer.letters()
    assert letter.findings[0].code == "nul_character_in_id"
