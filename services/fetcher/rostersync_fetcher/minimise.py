"""Applying a tenant's field policy (rostersync_libs/minimisation.py) to its records."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from rostersync_libs.events import EntityType
from rostersync_libs.minimisation import Minimisation, Treatment


class FieldPolicy:
    """Drops and pseudonymises a tenant's columns in records' payloads, before they are hashed."""

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

    def treat(self, entity: EntityType, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload with the policy's columns dropped or pseudonymised (``payload`` itself
        when the policy names none of its columns). Applied before a record's hash is computed,
        so the hash is computed once, of what is sent."""
        columns = self._policies.get(entity.value)
        if not columns or not payload or not columns.keys() & payload.keys():
            return payload
        treated = dict(payload)
        for column, treatment in columns.items():
            if column in treated:
                self._treat(treated, column, treatment)
        return treated

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
