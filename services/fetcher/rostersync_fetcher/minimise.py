"""Applying a tenant's field policy (rostersync_libs/minimisation.py) to its records."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import msgspec
from rostersync_libs.events import RecordEvent, content_hash
from rostersync_libs.minimisation import Minimisation, Treatment


class FieldPolicy:
    """Drops and pseudonymises a tenant's columns in record events, before they are sent."""

    def __init__(self, minimisation: Minimisation) -> None:
        self._policies = {e.value: cols for e, cols in minimisation.policies().items()}
        self._minimisation = minimisation
        self._key: bytes | None = None

    def problem(self) -> str | None:
        """Why the policy cannot be applied (its key is not set); checked when a run starts."""
        if not self._minimisation.hashes():
            return None
        try:
            self._key = self._minimisation.key().get_secret_value().encode()
        except KeyError as exc:
            return str(exc.args[0])
        return None

    def apply(self, event: RecordEvent) -> RecordEvent:
        """The event with the policy's columns dropped or pseudonymised, and its hash again."""
        columns = self._policies.get(event.entity.value)
        if not columns or not event.payload or not columns.keys() & event.payload.keys():
            return event
        payload = dict(event.payload)
        for column, treatment in columns.items():
            if column in payload:
                self._treat(payload, column, treatment)
        return msgspec.structs.replace(event, payload=payload, content_hash=content_hash(payload))

    def _treat(self, payload: dict[str, Any], column: str, treatment: Treatment) -> None:
        value = payload[column]
        if treatment == "drop":
            del payload[column]
            return
        if value in (None, ""):
            return  # nothing to hide
        assert self._key is not None, "problem() is checked before a run publishes"
        digest = hmac.new(self._key, str(value).encode(), hashlib.sha256).hexdigest()
        payload[column] = f"hmac-sha256:{digest[:32]}"
