"""Tenants (districts) and their roster sources: the models of the tenants file and the admin API.

A tenant is declared in a TOML file (below) or through the admin API (``tenant_configs``, merged
with the file by :mod:`rostersync_libs.tenant_registry`); both are validated by these models.

Example::

    [[tenants]]
    id = "springfield"
    name = "Springfield Public Schools"

    [[tenants.sources]]
    id = "sis-csv"
    kind = "csv"
    path = "examples/springfield"

    [[tenants.sources]]
    id = "sis-api"
    kind = "oneroster-api"
    base_url = "https://sis.example.org"
    version = "1.1"
    auth = { kind = "oauth1", key = "abc", secret_env = "SPRINGFIELD_SIS_SECRET" }
    schedule = { every_seconds = 300, timezone = "America/Chicago", pause = ["07:30-15:30"] }

Secrets are never in the file: a source names the environment variable that holds its secret.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from rostersync_libs.minimisation import Minimisation
from rostersync_libs.notify_config import Notify
from rostersync_libs.settings import env_secret

TENANT_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


MIB = 1 << 20


class FileLimits(BaseModel):
    """How much of a CSV bundle the fetcher reads: beyond these, a file or the run is refused.

    Set for every file source in the tenants file's top-level ``[limits]`` table, and per source
    (``limits = { … }``: the values it names replace the top-level ones). A limit a bundle passes
    is reported: a line, row or file cut is a finding (the file is then not a complete bulk
    snapshot: nothing of its entity is swept); a bundle too large to unpack fails the run.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # One line (or one row spanning several lines in quotes) of a CSV file, as UTF-8: a longer
    # one is never held in memory whole; it is skipped and reported (line_too_long).
    max_line_bytes: int = Field(default=16 * MIB, ge=64)
    # Data rows of one file: rows past the limit are not read (too_many_rows).
    max_rows_per_file: int = Field(default=20_000_000, ge=1)
    # Columns of a header (the file is not read) or fields of a row (the row is not read).
    max_columns: int = Field(default=1000, ge=1)
    # The bundle's files together, unpacked (a zip's declared sizes, a folder's file sizes),
    # checked before anything is read and again while reading: over it, the run fails.
    max_bundle_bytes: int = Field(default=4096 * MIB, ge=1)
    # Unpacked size / packed size of one zip member of 1 MiB or more (zip bombs): over it, the
    # run fails. Real OneRoster exports compress 5-20 times.
    max_zip_ratio: float = Field(default=100.0, gt=1)
    # Entries of a zip, or files and folders at a bundle folder's first two levels.
    max_bundle_entries: int = Field(default=10_000, ge=1)

    def merged(self, override: FileLimits | None) -> FileLimits:
        """These limits with the values ``override`` sets explicitly."""
        if override is None:
            return self
        return self.model_copy(
            update={name: getattr(override, name) for name in override.model_fields_set}
        )


class SourceSelection(BaseModel):
    """The part of a district a source syncs: some schools, some school years (or both).

    ``schools`` match an org's sourcedId or its ``identifier`` (an NCES id, say); ``school_years``
    match an academicSession's sourcedId, or the ``schoolYear`` or ``title`` of a session of type
    ``schoolYear``. What follows from them (classes, courses, enrollments, users, guardians,
    demographics) is decided by the fetcher (``rostersync_fetcher/selection.py``); records outside
    are skipped, not rejected, and a bulk run's sweep archives what left the selection.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schools: tuple[str, ...] = ()  # empty: every school
    school_years: tuple[str, ...] = ()  # empty: every school year

    @field_validator("schools", "school_years")
    @classmethod
    def _plain_values(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        stripped = tuple(v.strip() for v in value)
        if any(not v for v in stripped):
            raise ValueError("a selection value must not be blank")
        duplicates = sorted({v for v in stripped if stripped.count(v) > 1})
        if duplicates:
            raise ValueError(f"listed more than once: {', '.join(duplicates)}")
        return stripped

    @model_validator(mode="after")
    def _selects_something(self) -> SourceSelection:
        if not self.schools and not self.school_years:
            raise ValueError("a selection needs schools, school_years or both")
        return self


class CsvSource(BaseModel):
    """A bundle (zip or folder) at a fixed path, read whenever a sync is requested."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=TENANT_ID_PATTERN)
    kind: Literal["csv"] = "csv"
    path: Path
    limits: FileLimits | None = None  # None: the tenants file's [limits] (or the defaults)
    selection: SourceSelection | None = None  # None: the whole district
    # A run of this source still publishing after this long ends failed (None: the fetcher's
    # ROSTERSYNC_RUN_TIMEOUT_SECONDS, 6 h).
    run_timeout_seconds: float | None = Field(default=None, gt=0)

    @property
    def file_limits(self) -> FileLimits:
        return self.limits or FileLimits()


class InboxSource(BaseModel):
    """A drop folder (as an SFTP server fills it): each complete bundle dropped is one run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=TENANT_ID_PATTERN)
    kind: Literal["inbox"]
    path: Path
    # A bundle is taken once nothing in it has changed for this long (uploads are not atomic).
    settle_seconds: float = Field(default=10.0, ge=0)
    limits: FileLimits | None = None  # None: the tenants file's [limits] (or the defaults)
    # Runs of one claimed bundle that may start: a bundle the fetcher stopped in the middle of
    # (a crash, a kill) this many times is moved to failed/ instead of being read again.
    max_claim_attempts: int = Field(default=3, ge=1)
    selection: SourceSelection | None = None  # None: the whole district
    run_timeout_seconds: float | None = Field(default=None, gt=0)  # as CsvSource's

    @property
    def file_limits(self) -> FileLimits:
        return self.limits or FileLimits()


ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
PAUSE_PATTERN = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")


def _secret_from_env(name: str | None) -> SecretStr:
    if name is None:  # the admin API's store holds it (source_secrets.py)
        raise KeyError("the source names no secret_env: its secret is stored through the API")
    return env_secret(name, "the source's secret")


class OAuth1Auth(BaseModel):
    """OAuth 1.0a request signing, as ClassLink's OneRoster clients do it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["oauth1"]
    key: str = Field(min_length=1)
    # The environment variable holding the secret; unset: the secret stored through the admin
    # API (PUT …/sources/{id}/secret), sealed in PostgreSQL (source_secrets.py).
    secret_env: str | None = Field(default=None, pattern=ENV_NAME_PATTERN)
    # HMAC-SHA256 is what OneRoster 1.1 asks for; some servers accept only HMAC-SHA1.
    signature_method: Literal["HMAC-SHA256", "HMAC-SHA1"] = "HMAC-SHA256"

    def secret(self) -> SecretStr:
        return _secret_from_env(self.secret_env)


class OAuth2Auth(BaseModel):
    """OAuth 2.0 client credentials (the only scheme of OneRoster 1.2; many 1.1 servers too)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["oauth2"]
    token_url: str = Field(pattern=r"^https?://")
    client_id: str = Field(min_length=1)
    secret_env: str | None = Field(default=None, pattern=ENV_NAME_PATTERN)  # as OAuth1Auth's
    scopes: tuple[str, ...] = ()

    def secret(self) -> SecretStr:
        return _secret_from_env(self.secret_env)


ApiAuth = Annotated[OAuth1Auth | OAuth2Auth, Field(discriminator="kind")]


class ApiSchedule(BaseModel):
    """When a REST source is synced: every N seconds, or daily at a local time; never in a pause."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    every_seconds: float | None = Field(default=None, gt=0)
    daily_at: time | None = None  # "02:30", in ``timezone``
    timezone: str = "UTC"
    # Local time windows ("07:30-15:30"; "22:00-06:00" wraps midnight) in which no scheduled run
    # starts (school hours, when a SIS asks for quiet).
    pause: tuple[str, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("pause")
    @classmethod
    def _windows(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for window in value:
            if not PAUSE_PATTERN.match(window):
                raise ValueError(f"pause window {window!r} is not HH:MM-HH:MM")
        return value

    @model_validator(mode="after")
    def _one_trigger(self) -> ApiSchedule:
        if (self.every_seconds is None) == (self.daily_at is None):
            raise ValueError("a schedule needs exactly one of every_seconds and daily_at")
        return self


CollectionName = Literal[
    "orgs", "academicSessions", "courses", "classes", "users", "enrollments", "demographics"
]


class ApiSource(BaseModel):
    """A OneRoster REST API (1.1 or 1.2 rostering), polled on a schedule and on request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=TENANT_ID_PATTERN)
    kind: Literal["oneroster-api"]
    # ``https://host`` (the version's path is appended) or a full base path ending in
    # ``/ims/oneroster/v1p1`` or ``/ims/oneroster/rostering/v1p2`` (or any other path, kept as is
    # when it already contains ``/ims/oneroster``).
    base_url: str = Field(pattern=r"^https?://")
    version: Literal["1.1", "1.2"] = "1.1"
    auth: ApiAuth
    page_size: int = Field(default=1000, ge=1, le=100_000)
    max_concurrency: int = Field(default=2, ge=1, le=5)  # requests in flight for this tenant
    timeout_seconds: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=6, ge=1, le=20)  # per request, retries included
    schedule: ApiSchedule | None = None  # None: only on request (rostersync sync)
    full_reconcile_every_hours: float = Field(default=168.0, gt=0)
    delta_overlap_seconds: float = Field(default=300.0, ge=0)
    # Limits: each ends the run failed, with the reason.
    # The body of one answer (decoded): read as a stream and cut at this size.
    max_page_bytes: int = Field(default=64 * MIB, ge=1024)
    # Pages of one collection in one run (a server paging forever).
    max_pages_per_collection: int = Field(default=50_000, ge=1)
    # All of one request: connection, headers and the whole body, retries and their waits
    # included (``timeout_seconds`` bounds each read only: a server trickling bytes passes it).
    request_deadline_seconds: float = Field(default=600.0, gt=0)
    # The collections the district shares (None: all the version has); orgs and users always.
    collections: tuple[CollectionName, ...] | None = None
    selection: SourceSelection | None = None  # None: the whole district
    run_timeout_seconds: float | None = Field(default=None, gt=0)  # as CsvSource's

    @field_validator("collections")
    @classmethod
    def _core_collections(
        cls, value: tuple[CollectionName, ...] | None
    ) -> tuple[CollectionName, ...] | None:
        if value is not None and not {"orgs", "users"} <= set(value):
            raise ValueError("collections must include orgs and users (everything refers to them)")
        return value

    def reads(self, collection: str) -> bool:
        return self.collections is None or collection in self.collections

    @property
    def api_root(self) -> str:
        """The base URL the collection paths are appended to."""
        base = self.base_url.rstrip("/")
        if "/ims/oneroster" in base:
            return base
        return base + (
            "/ims/oneroster/v1p1" if self.version == "1.1" else "/ims/oneroster/rostering/v1p2"
        )


FileSource = CsvSource | InboxSource
# Every source kind's config model. No discriminator: `kind` may be left out for a plain CSV
# source. A new kind is a model here and its name in this union; the fetcher's driver for it is
# services/fetcher/rostersync_fetcher/sources/<kind>.py (docs/architecture.md, "Fetcher: sources").
Source = CsvSource | InboxSource | ApiSource


def _kind_of(model: type[BaseModel]) -> str:
    (kind,) = get_args(model.model_fields["kind"].annotation)
    return str(kind)


# The config model of each ``kind``, for what validates or edits one source (the admin API's
# console, the CLI's tenants check) without importing the fetcher.
SOURCE_MODELS: Mapping[str, type[Source]] = MappingProxyType(
    {_kind_of(model): model for model in get_args(Source)}
)


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
    # What of its records never leaves the fetcher (minimisation.py).
    minimise: Minimisation = Field(default_factory=Minimisation)
    # Who hears about failed, held, cancelled or rejection-heavy runs (notify_config.py).
    notify: Notify = Field(default_factory=Notify)
    sources: list[Source] = Field(min_length=1)

    def source(self, source_id: str | None = None) -> FileSource:
        """A file source (CSV or inbox): the named one, or the first."""
        for source in self.sources:
            if not isinstance(source, CsvSource | InboxSource):
                continue
            if source_id is None or source.id == source_id:
                return source
        raise KeyError(f"tenant {self.id} has no file source {source_id or ''!r}")

    def find_source(self, source_id: str | None = None) -> Source:
        """Any source: the named one, or the first."""
        if source_id is None:
            return self.sources[0]
        for source in self.sources:
            if source.id == source_id:
                return source
        raise KeyError(f"tenant {self.id} has no source {source_id!r}")

    @property
    def api_sources(self) -> list[ApiSource]:
        return [s for s in self.sources if isinstance(s, ApiSource)]


class TenantsConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Limits of every file source; a source's own ``limits`` replace the values they name.
    limits: FileLimits = Field(default_factory=FileLimits)
    tenants: list[Tenant]

    def get(self, tenant_id: str) -> Tenant:
        for tenant in self.tenants:
            if tenant.id == tenant_id:
                return tenant
        known = ", ".join(t.id for t in self.tenants) or "none"
        raise KeyError(f"unknown tenant {tenant_id!r} (configured: {known})")


def load_tenants(path: Path) -> TenantsConfig:
    """Read the tenants file; relative source paths are relative to the file's folder, and each
    file source gets its limits (the file's ``[limits]`` with the source's own on top)."""
    with path.open("rb") as handle:
        raw = tomllib.load(handle)
    config = TenantsConfig.model_validate(raw)
    base = path.resolve().parent
    return TenantsConfig(
        limits=config.limits,
        tenants=[
            tenant.model_copy(
                update={
                    "sources": [
                        s.model_copy(
                            update={
                                "path": (base / s.path).resolve(),
                                "limits": config.limits.merged(s.limits),
                            }
                        )
                        if isinstance(s, CsvSource | InboxSource)
                        else s
                        for s in tenant.sources
                    ]
                }
            )
            for tenant in config.tenants
        ],
    )
