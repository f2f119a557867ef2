"""The generated district is valid OneRoster: the fetcher and validator find nothing wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast
from uuid import uuid4

import pytest
from rostersync_cli.generate import DistrictShape, generate
from rostersync_fetcher.csv.run import CsvRun
from rostersync_libs.events import FileEvent
from rostersync_libs.runs import RunPhase
from rostersync_libs.tenants import CsvSource, Tenant
from rostersync_libs.topics import Topics
from rostersync_validator.handler import ValidatorHandler

from tests.fakes import FakeKnown, RecordingProducer


@pytest.mark.parametrize("version", ["1.1", "1.2"])
async def test_a_generated_district_is_clean_and_deterministic(
    tmp_path: Path, version: str
) -> None:
    counts = generate(tmp_path / "a", DistrictShape(students=400, version=version))
    again = generate(tmp_path / "b", DistrictShape(students=400, version=version))
    assert counts == again
    for name in counts:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()

    producer = RecordingProducer()
    tenant = Tenant(id="t", name="T", sources=[CsvSource(id="csv", path=tmp_path / "a")])
    outcome = await CsvRun(
        producer=cast(Any, producer), topics=Topics(), tenant=tenant,
        source=CsvSource(id="csv", path=tmp_path / "a"), run_id=uuid4(),
    ).run()  # fmt: skip
    assert outcome.phase is RunPhase.FETCHED
    assert outcome.file_counts == {name: n for name, n in counts.items() if n}
    handler = ValidatorHandler(FakeKnown())
    events = producer.events(Topics().fetched)
    file_findings = [f for e in events if isinstance(e, FileEvent) for f in handler.on_file(e, 0)]
    assert file_findings == [] or {f.code for f in file_findings} == {"empty_file"}
    records = producer.records(Topics().fetched)
    outcomes = await handler.handle(records)
    assert [f for o in outcomes for f in o.findings] == []

    students = sum(
        1 for e in records if e.entity and e.payload.get("grades") and e.entity.value == "users"
    )
    assert 390 <= students <= 400
