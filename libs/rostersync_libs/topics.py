"""Every topic name, in one place.

One topic per stage (not per entity) keeps the flow easy to see. Names are versioned (``.v1``; the
record topics and their dead letters carry v2 batch events, ``rostersync_libs.events``, and the
change feed batches of changes, ``rostersync_libs.change_events``, so theirs end in ``.v2``) and
can carry a prefix, so several deployments, or several tests, can share one broker.
"""

from __future__ import annotations

from dataclasses import dataclass

FETCHED = "rostersync.records.fetched.v2"
VALIDATED = "rostersync.records.validated.v2"
MAPPED = "rostersync.records.mapped.v2"
VALIDATOR_DLQ = "rostersync.dlq.validator.v2"
MAPPER_DLQ = "rostersync.dlq.mapper.v2"
FINDINGS = "rostersync.findings.v1"
RUNS = "rostersync.runs.v1"
COMMANDS = "rostersync.commands.v1"
# Identity decisions (crosswalk, re-key, match), compacted: the latest decision per record.
IDENTITIES = "rostersync.identities.v1"
# The fetcher's REST sync state (high-water marks, last full sync), compacted: latest per key.
FETCH_STATE = "rostersync.fetch_state.v1"
# The change feed: an event per row the writer changed, in batches (docs/change-feed.md), kept
# forever.
CHANGES = "rostersync.changes.v2"


@dataclass(frozen=True)
class Topics:
    """Topic names with the deployment's prefix applied."""

    prefix: str = ""

    def _name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    @property
    def fetched(self) -> str:
        return self._name(FETCHED)

    @property
    def validated(self) -> str:
        return self._name(VALIDATED)

    @property
    def mapped(self) -> str:
        return self._name(MAPPED)

    @property
    def validator_dlq(self) -> str:
        return self._name(VALIDATOR_DLQ)

    @property
    def mapper_dlq(self) -> str:
        return self._name(MAPPER_DLQ)

    @property
    def findings(self) -> str:
        return self._name(FINDINGS)

    @property
    def runs(self) -> str:
        return self._name(RUNS)

    @property
    def commands(self) -> str:
        return self._name(COMMANDS)

    @property
    def identities(self) -> str:
        return self._name(IDENTITIES)

    @property
    def fetch_state(self) -> str:
        return self._name(FETCH_STATE)

    @property
    def changes(self) -> str:
        return self._name(CHANGES)

    def all(self) -> list[str]:
        return [
            self.fetched,
            self.validated,
            self.mapped,
            self.validator_dlq,
            self.mapper_dlq,
            self.findings,
            self.runs,
            self.commands,
            self.identities,
            self.fetch_state,
            self.changes,
        ]

    def compacted_topics(self) -> list[str]:
        """Topics keyed by what they describe, of which only the latest event per key matters."""
        return [self.identities, self.fetch_state]

    def record_topics(self) -> list[str]:
        """Topics whose every event is kept for replay (all but the compacted ones): records,
        markers, findings, run events and commands (hold decisions a replay must take again)."""
        compacted = set(self.compacted_topics())
        return [t for t in self.all() if t not in compacted]
