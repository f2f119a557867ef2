"""Tenants (districts) and their roster sources, declared in a TOML file until an admin API exists.

Example::

    [[tenants]]
    id = "springfield"
    name = "Springfield Public Schools"

    [[tenants.sources]]
    id = "sis-csv"
    kind = "csv"
    path = "examples/springfield"
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TENANT_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class CsvSource(BaseModel):
    """A bundle (zip or folder) at a fixed path, read whenever a sync is requested."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=TENANT_ID_PATTERN)
    kind: Literal["csv"] = "csv"
    path: Path


class InboxSource(BaseModel):
    """A drop folder (as an SFTP server fills it): each complete bundle dropped is one run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=TENANT_ID_PATTERN)
    kind: Literal["inbox"]
    path: Path
    # A bundle is taken once nothing in it has changed for this long (uploads are not atomic).
    settle_seconds: float = Field(default=10.0, ge=0)


# No discriminator: `kind` may be left out for a plain CSV source.
Source = CsvSource | InboxSource


RekeyKey = Literal["userMasterIdentifier", "username", "identifier"]


class MatchRules(BaseModel):
    """How the mapper finds the application's existing record for a new OneRoster record.

    Off by default: a match is a guess unless the district confirms it. Ambiguous matches are
    never taken; they are reported for an operator.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    teacher_by_email: bool = False
    user_by_username: bool = False
    user_by_identifier: bool = False
    school_by_nces: bool = False  # orgs.identifier holds the NCES id
    # When a district's SIS issues new sourcedIds (e.g. on a 1.1 → 1.2 upgrade), a person keeps
    # their internal id if one of these keys matches a user the tenant already has.
    rekey_users_by: tuple[RekeyKey, ...] = ("userMasterIdentifier",)


class Tenant(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=TENANT_ID_PATTERN)
    name: str
    # strict: the OneRoster specification; lenient: common real-world slips pass as warnings.
    validation: Literal["strict", "lenient"] = "lenient"
    # A run that would archive more than this share of the tenant's records of one entity is
    # held until an operator approves it (rostersync holds approve …).
    hold_threshold: float = Field(default=0.10, ge=0, le=1)
    # Below this many records of an entity the share is not meaningful: never hold.
    hold_min_records: int = Field(default=20, ge=0)
    matching: MatchRules = Field(default_factory=MatchRules)
    sources: list[Source] = Field(min_length=1)

    def source(self, source_id: str | None = None) -> CsvSource | InboxSource:
        if source_id is None:
            return self.sources[0]
        for source in self.sources:
            if source.id == source_id:
                return source
        raise KeyError(f"tenant {self.id} has no source {source_id!r}")


class TenantsConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tenants: list[Tenant]

    def get(self, tenant_id: str) -> Tenant:
        for tenant in self.tenants:
            if tenant.id == tenant_id:
                return tenant
        known = ", ".join(t.id for t in self.tenants) or "none"
        raise KeyError(f"unknown tenant {tenant_id!r} (configured: {known})")


def load_tenants(path: Path) -> TenantsConfig:
    """Read the tenants file; relative source paths are relative to the file's folder."""
    with path.open("rb") as handle:
        raw = tomllib.load(handle)
    config = TenantsConfig.model_validate(raw)
    base = path.resolve().parent
    return TenantsConfig(
        tenants=[
            tenant.model_copy(
                update={
                    "sources": [
                        s.model_copy(update={"path": (base / s.path).resolve()})
                        for s in tenant.sources
                    ]
                }
            )
            for tenant in config.tenants
        ]
    )
