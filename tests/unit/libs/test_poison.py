"""Poison never loops (unit): findings are bounded by construction, and a middle stage
dead-letters what it cannot read (a whole message) or handle (one record of a batch) and never
sends a message over Kafka's limit (the real-stack tests are in tests/integration/test_poison.py;
the writer's reading of the mapped topic is tested with the writer)."""

from __future__ import annotations

from uuid import uuid4

import msgspec
import orjson
from rostersync_libs import events
from rostersync_libs.dlq import DeadLetter
from rostersync_libs.events import EntityType, FileFacts, Operation, RecordEvent
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
from rostersync_libs.stage import MAX_MESSAGE_BYTES, Outcome, PerRecord
from rostersync_validator.files import file_findings

from tests.unit.libs.stage_fakes import (
    TOPICS,
    batch_message,
    make_stage,
    message,
    process,
    record,
)


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


async def test_null_undecodable_and_incomplete_messages_are_dead_lettered_whole() -> None:
    good = record("good")
    good_message = batch_message(4, [good])
    run_id = str(uuid4()).encode()
    keyless = b'{"type": "records", "tenant": "d1", "source": "csv", "run_id": "%s",' \
        b' "records": [{"type": "record", "entity": "users"}]}' % run_id  # fmt: skip
    no_facts = b'{"type": "file", "tenant": "d1", "source": "csv", "run_id": "%s"}' % run_id
    secret = keyless.replace(b'"entity": "users"', b'"entity": "Ann Smith", "sourced_id": "x"')
    producer = await process(
        make_stage(PerRecord(Outcome)),
        [
            message(0, None, b"d1:k"),
            message(1, b"{not json"),
            message(2, keyless),
            message(3, no_facts),
            good_message,
            message(5, good_message.value, b"other:run:x:records:0"),  # another tenant's key
            message(6, secret),
        ],
    )
    assert producer.records() == [good]
    letters = producer.letters()
    assert [(d.offset, d.index, [f.code for f in d.findings]) for d in letters] == [
        (0, 0, ["empty_message"]),
        (1, 0, ["envelope_undecodable"]),
        (2, 0, ["envelope_incomplete"]),
        (3, 0, ["envelope_incomplete"]),
        (5, 0, ["envelope_tenant_mismatch"]),
        (6, 0, ["envelope_undecodable"]),
    ]
    assert "`sourced_id`" in letters[2].findings[0].message
    assert "$.records[0]" in letters[2].findings[0].message
    assert "`facts`" in letters[3].findings[0].message
    assert "$.records[0].entity" in letters[5].findings[0].message
    assert "Ann Smith" not in letters[5].findings[0].message  # a value is never quoted
    # Whole messages go to the dead-letter topic as they came: the tombstone without a value.
    dlq = producer.on(TOPICS.validator_dlq)
    assert (dlq[0].key, dlq[0].value) == (b"d1:k", None)
    assert [d.value for d in dlq[1:4]] == [b"{not json", keyless, no_facts]


async def test_a_record_the_handler_cannot_handle_is_rejected_and_the_rest_go_on() -> None:
    def judge(event: RecordEvent) -> Outcome:
        return Outcome(msgspec.structs.replace(event, mode=event.payload["mode"].lower()))

    run_id = uuid4()
    batch = [record(f"u{n}", {"mode": "BULK"}, run_id=run_id) for n in range(7)]
    batch[4] = record("u4", {"mode": 5}, run_id=run_id)
    producer = await process(make_stage(PerRecord(judge)), [batch_message(0, batch)])
    out = producer.records()
    assert [(e.sourced_id, e.operation) for e in out] == [
        *[(f"u{n}", Operation.UPSERT) for n in range(4)],
        ("u4", Operation.SEEN),  # rejected, still seen in its run, in its place
        *[(f"u{n}", Operation.UPSERT) for n in range(5, 7)],
    ]
    assert out[4].rejected_codes == ["validator_apply_failed"]
    (letter,) = producer.letters()
    assert (letter.offset, letter.index) == (0, 4)
    assert letter.findings[0].code == "validator_apply_failed"
    assert letter.findings[0].message.startswith("AttributeError")
    assert producer.on(TOPICS.validator_dlq)[0].value == batch[4].to_bytes()


async def test_a_bad_record_of_a_batch_is_dead_lettered_alone_with_its_index() -> None:
    """One record rejected among others: exactly it is a dead letter (the record with its run's
    context, its index in its own input batch, its reasons), the rest go on, its seen in its
    place; a finding says why."""
    reason = Finding(code="missing_required_data", severity=Severity.ERROR, message="no name",
                     file="users.csv", row=9)  # fmt: skip
    warning = Finding(code="boolean_case", severity=Severity.WARNING, message="TRUE")

    def judge(event: RecordEvent) -> Outcome:
        if event.sourced_id == "bad":
            return Outcome(None, [reason, warning])
        return Outcome(event)

    run_id = uuid4()
    first = [record(f"a{n}", run_id=run_id) for n in range(3)]
    second = [record("b0", run_id=run_id), record("b1", run_id=run_id),
              record("bad", {"sourcedId": "bad", "secret": "x"}, run_id=run_id),
              record("b3", run_id=run_id)]  # fmt: skip
    producer = await process(
        make_stage(PerRecord(judge)), [batch_message(10, first), batch_message(11, second)]
    )
    assert [(e.sourced_id, e.operation) for e in producer.records()] == [
        *[(e.sourced_id, Operation.UPSERT) for e in first],
        ("b0", Operation.UPSERT), ("b1", Operation.UPSERT), ("bad", Operation.SEEN),
        ("b3", Operation.UPSERT),
    ]  # fmt: skip
    seen = producer.records()[5]
    assert (seen.payload, seen.rejected_codes) == ({}, ["missing_required_data"])
    ((letter, sent),) = zip(producer.letters(), producer.on(TOPICS.validator_dlq), strict=True)
    assert (letter.topic, letter.partition, letter.offset, letter.index) == (
        TOPICS.fetched, 0, 11, 2,
    )  # fmt: skip
    assert letter.findings == [reason, warning]
    assert sent.value is not None
    assert RecordEvent.from_bytes(sent.value) == second[2]  # the original record, whole
    assert sent.key is not None
    assert sent.key.startswith(b"d1:")  # sealed with its tenant's key
    (report,) = [orjson.loads(s.value or b"") for s in producer.on(TOPICS.findings)]
    assert (report["sourced_id"], report["rejected"]) == ("bad", True)
    assert [f["code"] for f in report["findings"]] == ["missing_required_data", "boolean_case"]


async def test_a_record_whose_output_is_too_large_is_rejected_instead() -> None:
    def inflate(event: RecordEvent) -> Outcome:
        if event.sourced_id != "u1":
            return Outcome(event)
        return Outcome(msgspec.structs.replace(event, payload={"big": "x" * 5000}))

    run_id = uuid4()
    batch = [record(f"u{n}", run_id=run_id) for n in range(3)]
    producer = await process(
        make_stage(PerRecord(inflate), max_message_bytes=4000), [batch_message(0, batch)]
    )
    out = producer.records()
    assert [(e.sourced_id, e.operation) for e in out] == [
        ("u0", Operation.UPSERT), ("u1", Operation.SEEN), ("u2", Operation.UPSERT),
    ]  # fmt: skip
    assert out[1].rejected_codes == ["message_too_large"]
    (letter,) = producer.letters()
    assert (letter.index, letter.findings[0].code) == (1, "message_too_large")
    assert producer.on(TOPICS.validator_dlq)[0].value == batch[1].to_bytes()  # the original
    assert all(len(s.value or b"") + len(s.key or b"") <= 4000 for s in producer.sent)


async def test_findings_and_dead_letters_never_exceed_the_limit() -> None:
    many = _unknown_columns(10_000)

    def reject(event: RecordEvent) -> Outcome:
        return Outcome(None, many)

    event = record("u1", {"sourcedId": "u1", "filler": "y" * 110_000})
    producer = await process(
        make_stage(PerRecord(reject), max_message_bytes=120_000), [batch_message(0, [event])]
    )
    (report,) = [orjson.loads(s.value or b"") for s in producer.on(TOPICS.findings)]
    assert len(report["findings"]) == MAX_FINDINGS + 1
    assert report["findings"][-1]["code"] == TRUNCATED
    # The original and the reasons together are too large: the reasons, and where to read it.
    (sent,) = producer.on(TOPICS.validator_dlq)
    assert sent.value is None
    letter = DeadLetter.from_headers(sent.headers)
    assert letter.findings[0].code == "message_too_large"
    assert f"{TOPICS.fetched}[0]@0, record 0 of its batch" in letter.findings[0].message
    assert len(letter.findings) == MAX_FINDINGS + 1


def test_dead_letter_findings_round_trip() -> None:
    found = bounded(_unknown_columns(300))
    letter = DeadLetter(stage="validator", topic="t", partition=0, offset=1, findings=found)
    assert DeadLetter.from_headers(letter.headers()).findings == found
    assert findings_from_json(dict(letter.headers())["rostersync.errors.findings"]) == found


async def test_a_rejected_record_whose_key_holds_a_nul_is_dead_lettered_but_sends_no_seen() -> None:
    def reject(event: RecordEvent) -> Outcome:
        return Outcome(None, [Finding(code="nul_character_in_id", severity=Severity.ERROR,
                                      message="a NUL in the sourcedId")])  # fmt: skip

    producer = await process(make_stage(PerRecord(reject)), [batch_message(0, [record("u\x001")])])
    assert producer.on(TOPICS.validated) == []  # no key anyone can hold: nothing to mark seen
    (letter,) = producer.letters()
    assert letter.findings[0].code == "nul_character_in_id"


async def test_a_file_event_its_handler_cannot_judge_is_dead_lettered_whole() -> None:
    class Failing(PerRecord):
        def on_file(self, event: events.FileEvent, partition: int) -> list[Finding]:
            raise KeyError(event.facts.file)

    file = events.FileEvent(tenant="d1", source="csv", run_id=uuid4(),
                            facts=FileFacts(file="users.csv", entity=EntityType.USER))  # fmt: skip
    value = events.encode(file)
    producer = await process(make_stage(Failing(Outcome)), [message(0, value, file.key())])
    (letter,) = producer.letters()
    assert (letter.index, letter.findings[0].code) == (0, "validator_apply_failed")
    assert producer.on(TOPICS.validator_dlq)[0].value == value
