"""A tenant's field policy: what of its records never leaves the fetcher (data minimisation).

Districts share less than the standard allows — demographics withheld, no phone numbers, emails
only as a pseudonym. A tenant's ``[tenants.minimise]`` table says, per entity, which columns are
dropped and which are replaced by a keyed hash (HMAC-SHA256 with a key from the environment, so
the same value always gives the same pseudonym and nobody without the key can test a guess):

    [tenants.minimise]
    hash_key_env = "D1_PSEUDONYM_KEY"
    users = { email = "hash", phone = "drop", sms = "drop" }
    demographics = { birthDate = "drop", sex = "drop" }

The fetcher applies it before anything reaches a topic (and before the content hash), so the
topics, the findings and the application's tables never hold what was dropped.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from rostersync_libs.events import EntityType
from rostersync_libs.oneroster.columns import Kind, spec_for
from rostersync_libs.settings import env_secret

Treatment = Literal["drop", "hash"]
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
# What identifies a record or says what happens to it: never minimised.
KEPT = frozenset({"sourcedId", "status", "dateLastModified"})


def column_problem(entity: EntityType, column: str, treatment: Treatment) -> str | None:
    """Why this treatment cannot apply to this column of this entity (None: it can)."""
    if column.startswith("metadata."):
        return None  # extensions carry anything; either treatment is fine
    if column in KEPT:
        return f"{entity.value}.{column} identifies the record and cannot be minimised"
    known = [
        spec.by_name[column]
        for v in ("1.1", "1.2")
        if column in (spec := spec_for(v, entity)).by_name
    ]
    if not known:
        return f"{entity.value} has no column {column!r}"
    if any(c.target is not None for c in known):
        return f"{entity.value}.{column} names other records and cannot be minimised"
    if treatment == "drop" and any(c.required for c in known):
        return f"{entity.value}.{column} is required: it can be hashed, not dropped"
    if treatment == "hash" and any(c.kind is not Kind.TEXT for c in known):
        return f"{entity.value}.{column} is not free text: it can be dropped, not hashed"
    return None


class Minimisation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    hash_key_env: str | None = Field(default=None, pattern=ENV_NAME_PATTERN)
    users: dict[str, Treatment] = Field(default_factory=dict)
    demographics: dict[str, Treatment] = Field(default_factory=dict)
    orgs: dict[str, Treatment] = Field(default_factory=dict)
    classes: dict[str, Treatment] = Field(default_factory=dict)
    courses: dict[str, Treatment] = Field(default_factory=dict)
    enrollments: dict[str, Treatment] = Field(default_factory=dict)
    academicSessions: dict[str, Treatment] = Field(default_factory=dict)  # noqa: N815 (the entity)

    @model_validator(mode="after")
    def _valid(self) -> Minimisation:
        problems = [
            problem
            for entity, columns in self.policies().items()
            for column, treatment in columns.items()
            if (problem := column_problem(entity, column, treatment)) is not None
        ]
        if problems:
            raise ValueError("; ".join(problems))
        if self.hashes() and self.hash_key_env is None:
            raise ValueError("hashing a column needs hash_key_env (the key's environment variable)")
        return self

    def policies(self) -> dict[EntityType, dict[str, Treatment]]:
        return {
            entity: columns
            for entity in EntityType
            if (columns := getattr(self, entity.value, None))
        }

    def hashes(self) -> bool:
        return any("hash" in columns.values() for columns in self.policies().values())

    def key(self) -> SecretStr:
        """The hashing key, read from the environment now; KeyError when it is not set."""
        return env_secret(self.hash_key_env, "the tenant's pseudonym key")
