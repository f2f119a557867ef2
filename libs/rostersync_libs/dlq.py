"""Dead-letter records, in the style of Kafka Connect's DLQ.

The value is the original event, byte for byte, or, for one record of a record batch, that record
with its run's context (``RecordEvent.to_bytes``); headers say where it came from (topic,
partition, offset and the record's index inside the batch) and why it was rejected, so an operator
can read the reasons and replay the record after fixing its cause.
"""

from __future__ import annotations

from dataclasses import dataclass

from rostersync_libs.findings import Finding, findings_from_json, findings_to_json

HEADER_PREFIX = "rostersync.errors."


@dataclass(frozen=True)
class DeadLetter:
    """A rejected event and its reasons."""

    stage: str
    topic: str
    partition: int
    offset: int
    findings: list[Finding]
    index: int = 0  # the record's place in its batch (0: the whole message)

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            (HEADER_PREFIX + "stage", self.stage.encode()),
            (HEADER_PREFIX + "topic", self.topic.encode()),
            (HEADER_PREFIX + "partition", str(self.partition).encode()),
            (HEADER_PREFIX + "offset", str(self.offset).encode()),
            (HEADER_PREFIX + "index", str(self.index).encode()),
            (HEADER_PREFIX + "findings", findings_to_json(self.findings)),
        ]

    @classmethod
    def from_headers(
        cls, headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]
    ) -> DeadLetter:
        values = {
            k.removeprefix(HEADER_PREFIX): v for k, v in headers if k.startswith(HEADER_PREFIX)
        }
        return cls(
            stage=values["stage"].decode(),
            topic=values["topic"].decode(),
            partition=int(values["partition"]),
            offset=int(values["offset"]),
            findings=findings_from_json(values["findings"]),
            index=int(values.get("index", b"0")),
        )
