"""The validator's handler: file facts, record checks, and the verdict on each record."""

from __future__ import annotations

from collections import OrderedDict
from uuid import UUID

import msgspec
from rostersync_libs.events import FileEvent, RecordEvent, content_hash, flagged_hash
from rostersync_libs.finding_codes import Code
from rostersync_libs.findings import Finding, Severity
from rostersync_libs.oneroster.columns import spec_for
from rostersync_libs.stage import Outcome, StageHandler
from rostersync_libs.timestamps import parse_utc_datetime

from rostersync_validator.files import file_findings, rejects_rows
from rostersync_validator.known import Key, KnownKeys
from rostersync_validator.records import RecordCheck

# File facts are tiny; keep those of recent runs (a run's files arrive before its records).
MAX_FILES = 10_000


class ValidatorHandler(StageHandler):
    def __init__(self, known: KnownKeys) -> None:
        self._known = known
        # (run, file) → (profile, codes of the file-level errors that reject its rows). Codes only:
        # a finding's text can be as long as the header it names (and 10,000 files are kept).
        self._files: OrderedDict[tuple[UUID, str], tuple[str, list[str]]] = OrderedDict()

    def on_file(self, event: FileEvent, partition: int) -> list[Finding]:
        facts = event.facts
        found = file_findings(facts)
        codes = sorted({f.code for f in rejects_rows(found)})
        self._files[(event.run_id, facts.file)] = (facts.profile, codes)
        while len(self._files) > MAX_FILES:
            self._files.popitem(last=False)
        # Every partition receives the file's facts; report them once.
        return found if partition == 0 else []

    async def handle(self, events: list[RecordEvent]) -> list[Outcome]:
        known = await self._known.known(self._wanted(events))
        # Per tenant once per batch, not per record (a delta can look up thousands of ids).
        by_tenant: dict[str, set[tuple[str, str]]] = {}
        for tenant, entity, sourced_id in known:
            by_tenant.setdefault(tenant, set()).add((entity, sourced_id))
        return [self._judge(event, by_tenant.get(event.tenant, set())) for event in events]

    @staticmethod
    def _wanted(events: list[RecordEvent]) -> set[Key]:
        """The references the batch's records make to records of earlier runs: looked up in
        one query per batch (per tenant and entity)."""
        wanted: set[Key] = set()
        for event in events:
            if event.facts is None or not event.facts.unresolved:
                continue
            spec = spec_for(event.oneroster_version or "1.1", event.entity)
            for column_name, ids in event.facts.unresolved.items():
                target = spec.target_of(column_name)
                if target is not None:
                    wanted.update((event.tenant, target.value, i) for i in ids)
        return wanted

    def _judge(self, event: RecordEvent, known: set[tuple[str, str]]) -> Outcome:
        file_name = event.origin.file if event.origin and event.origin.file else ""
        profile, file_errors = self._files.get((event.run_id, file_name), ("lenient", []))
        check = RecordCheck(event, profile)
        check.run()
        check.bundle_facts(known)
        if file_errors:
            codes = ", ".join(file_errors)
            check.add(
                Code.FILE_REJECTED,
                f"the strict profile rejects every row of a file with file-level errors ({codes})",
            )
        if any(f.severity is Severity.ERROR for f in check.findings):
            return Outcome(None, check.findings)
        if check.payload == event.payload and check.operation is event.operation:
            return Outcome(self._flagged(event, check.findings), check.findings)
        return Outcome(self._corrected(event, check), check.findings)

    @staticmethod
    def _flagged(event: RecordEvent, found: list[Finding]) -> RecordEvent:
        """A record kept with warnings is stored under another hash (see ``flagged_hash``)."""
        if not found or event.content_hash is None:
            return event
        flagged = flagged_hash(event.content_hash, [f.code for f in found])
        return msgspec.structs.replace(event, content_hash=flagged)

    @staticmethod
    def _corrected(event: RecordEvent, check: RecordCheck) -> RecordEvent:
        """The record as the lenient profile reads it, with its hash recomputed."""
        return msgspec.structs.replace(
            event,
            payload=check.payload,
            operation=check.operation,
            content_hash=content_hash(check.payload),
            date_last_modified=parse_utc_datetime(check.payload.get("dateLastModified")),
        )
