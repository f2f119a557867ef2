"""OneRoster CSV files and their columns, in the specification's order (1.1, 1.2.0, 1.2.1).

Each column says whether it must hold a value, what kind of value it holds and, for references,
which entity it points at. The validator checks against these; the fetcher reads with them.
Source: ``oneroster.md`` sections 2 and 3 (the 1EdTech CSV bindings, cross-checked against
Moodle's and meibo's implementations).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache

from rostersync_libs.events import EntityType


class Kind(StrEnum):
    """What a column's value must look like."""

    TEXT = "text"
    ENUM = "enum"
    BOOLEAN = "boolean"
    DATE = "date"  # YYYY-MM-DD
    DATETIME = "datetime"  # ISO 8601 in UTC
    YEAR = "year"  # YYYY
    GRADES = "grades"  # list of CEDS grade codes
    LIST = "list"  # comma-separated strings
    USER_IDS = "userIds"  # list of {type:identifier}
    REF = "ref"  # one sourcedId of ``target``
    REF_LIST = "refList"  # several sourcedIds of ``target``


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind = Kind.TEXT
    required: bool = False
    values: frozenset[str] = frozenset()  # for ENUM
    target: EntityType | None = None  # for REF and REF_LIST
    extensible: bool = False  # ENUM that accepts ``ext:…`` values (1.2)
    # Derived once: read for every value of every record.
    is_list: bool = field(init=False)

    def __post_init__(self) -> None:
        is_list = self.kind in (Kind.GRADES, Kind.LIST, Kind.USER_IDS, Kind.REF_LIST)
        object.__setattr__(self, "is_list", is_list)


@dataclass(frozen=True)
class FileSpec:
    file_name: str
    entity: EntityType
    columns: tuple[Column, ...]
    version: str  # "1.1" or "1.2"
    # The record's own sourcedId is the sourcedId of a record of this entity (demographics →
    # users). It must exist like any reference target, but it is no reference column: it is not
    # in ``references`` (the mapper resolves those into ``…InternalId`` keys; it links a
    # demographics record to its user itself).
    identity_of: EntityType | None = None
    names: tuple[str, ...] = field(init=False)
    by_name: dict[str, Column] = field(init=False)
    required: frozenset[str] = field(init=False)
    references: tuple[Column, ...] = field(init=False)
    # Every column whose values must name existing records, with the entity they name: the
    # reference columns, and sourcedId when ``identity_of`` is set. What bundle facts check.
    checked_references: tuple[tuple[Column, EntityType], ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(c.name for c in self.columns))
        object.__setattr__(self, "by_name", {c.name: c for c in self.columns})
        object.__setattr__(self, "required", frozenset(c.name for c in self.columns if c.required))
        references = tuple(c for c in self.columns if c.target is not None)
        object.__setattr__(self, "references", references)
        checked = [(c, c.target) for c in references if c.target is not None]
        if self.identity_of is not None:
            checked.insert(0, (self.by_name["sourcedId"], self.identity_of))
        object.__setattr__(self, "checked_references", tuple(checked))

    def target_of(self, column_name: str) -> EntityType | None:
        """The entity a column's values name (see ``checked_references``), if any."""
        if column_name == "sourcedId" and self.identity_of is not None:
            return self.identity_of
        column = self.by_name.get(column_name)
        return column.target if column is not None else None


def _enum(name: str, values: str, *, required: bool = True, ext: bool = False) -> Column:
    return Column(name, Kind.ENUM, required, frozenset(values.split()), extensible=ext)


def _ref(name: str, target: EntityType, *, required: bool = False) -> Column:
    return Column(name, Kind.REF, required, target=target)


def _refs(name: str, target: EntityType, *, required: bool = False) -> Column:
    return Column(name, Kind.REF_LIST, required, target=target)


STATUS = ("active", "tobedeleted")
HEAD = (
    Column("sourcedId", required=True),
    _enum("status", " ".join(STATUS), required=False),
    Column("dateLastModified", Kind.DATETIME),
)
E = EntityType
BOOL = Kind.BOOLEAN

ORG_TYPES = "department school district local state national"
SESSION_TYPES = "gradingPeriod semester schoolYear term"
USER_ROLES_1_1 = "administrator aide guardian parent proctor relative student teacher"
ROLES_1_2 = (
    "aide counselor districtAdministrator guardian parent principal proctor relative"
    " siteAdministrator student systemAdministrator teacher"
)
ENROLLMENT_ROLES = "administrator proctor student teacher"
SEX_1_1 = "male female"
SEX_1_2 = "male female unspecified other"
RACE_COLUMNS = (
    "americanIndianOrAlaskaNative",
    "asian",
    "blackOrAfricanAmerican",
    "nativeHawaiianOrOtherPacificIslander",
    "white",
    "demographicRaceTwoOrMoreRaces",
    "hispanicOrLatinoEthnicity",
)

# CEDS Entry Grade Level codes.
GRADE_CODES = frozenset(
    [
        "IT",
        "PR",
        "PK",
        "TK",
        "KG",
        "01",
        "02",
        "03",
        "04",
        "05",
        "06",
        "07",
        "08",
        "09",
        "10",
        "11",
        "12",
        "13",
        "PS",
        "UG",
        "Other",
    ]
)


def _orgs(version: str, ext: bool) -> FileSpec:
    return FileSpec(
        "orgs.csv",
        E.ORG,
        (
            *HEAD,
            Column("name", required=True),
            _enum("type", ORG_TYPES, ext=ext),
            Column("identifier"),
            _ref("parentSourcedId", E.ORG),
        ),
        version,
    )


def _academic_sessions(version: str, ext: bool) -> FileSpec:
    return FileSpec(
        "academicSessions.csv",
        E.ACADEMIC_SESSION,
        (
            *HEAD,
            Column("title", required=True),
            _enum("type", SESSION_TYPES, ext=ext),
            Column("startDate", Kind.DATE, required=True),
            Column("endDate", Kind.DATE, required=True),
            _ref("parentSourcedId", E.ACADEMIC_SESSION),
            Column("schoolYear", Kind.YEAR, required=True),
        ),
        version,
    )


def _courses(version: str) -> FileSpec:
    return FileSpec(
        "courses.csv",
        E.COURSE,
        (
            *HEAD,
            _ref("schoolYearSourcedId", E.ACADEMIC_SESSION),
            Column("title", required=True),
            Column("courseCode"),
            Column("grades", Kind.GRADES),
            _ref("orgSourcedId", E.ORG, required=True),
            Column("subjects", Kind.LIST),
            Column("subjectCodes", Kind.LIST),
        ),
        version,
    )


def _classes(version: str, ext: bool) -> FileSpec:
    return FileSpec(
        "classes.csv",
        E.CLASS,
        (
            *HEAD,
            Column("title", required=True),
            Column("grades", Kind.GRADES),
            _ref("courseSourcedId", E.COURSE, required=True),
            Column("classCode"),
            _enum("classType", "homeroom scheduled", ext=ext),
            Column("location"),
            _ref("schoolSourcedId", E.ORG, required=True),
            _refs("termSourcedIds", E.ACADEMIC_SESSION, required=True),
            Column("subjects", Kind.LIST),
            Column("subjectCodes", Kind.LIST),
            Column("periods", Kind.LIST),
        ),
        version,
    )


def _enrollments(version: str, ext: bool) -> FileSpec:
    return FileSpec(
        "enrollments.csv",
        E.ENROLLMENT,
        (
            *HEAD,
            _ref("classSourcedId", E.CLASS, required=True),
            _ref("schoolSourcedId", E.ORG, required=True),
            _ref("userSourcedId", E.USER, required=True),
            _enum("role", ENROLLMENT_ROLES, ext=ext),
            Column("primary", BOOL),
            Column("beginDate", Kind.DATE),
            Column("endDate", Kind.DATE),
        ),
        version,
    )


def _demographics(version: str, sex: str) -> FileSpec:
    return FileSpec(
        "demographics.csv",
        E.DEMOGRAPHIC,
        (
            *HEAD,
            Column("birthDate", Kind.DATE),
            _enum("sex", sex, required=False),
            *(Column(name, BOOL) for name in RACE_COLUMNS),
            Column("countryOfBirthCode"),
            Column("stateOfBirthAbbreviation"),
            Column("cityOfBirth"),
            Column("publicSchoolResidenceStatus"),
        ),
        version,
        identity_of=E.USER,  # demographics.sourcedId is the user's sourcedId
    )


USERS_1_1 = FileSpec(
    "users.csv",
    E.USER,
    (
        *HEAD,
        Column("enabledUser", BOOL, required=True),
        _refs("orgSourcedIds", E.ORG, required=True),
        _enum("role", USER_ROLES_1_1),
        Column("username", required=True),
        Column("userIds", Kind.USER_IDS),
        Column("givenName", required=True),
        Column("familyName", required=True),
        Column("middleName"),
        Column("identifier"),
        Column("email"),
        Column("sms"),
        Column("phone"),
        _refs("agentSourcedIds", E.USER),
        Column("grades", Kind.GRADES),
        Column("password"),
    ),
    "1.1",
)

_USERS_1_2_HEAD = (
    *HEAD,
    Column("enabledUser", BOOL, required=True),
    Column("username", required=True),
    Column("userIds", Kind.USER_IDS),
    Column("givenName", required=True),
    Column("familyName", required=True),
    Column("middleName"),
    Column("identifier"),
    Column("email"),
    Column("sms"),
    Column("phone"),
    _refs("agentSourcedIds", E.USER),
    Column("grades", Kind.GRADES),
    Column("password"),
    Column("userMasterIdentifier"),
)
_USERS_1_2_TAIL = (
    Column("preferredGivenName"),
    Column("preferredMiddleName"),
    Column("preferredFamilyName"),
    _ref("primaryOrgSourcedId", E.ORG),
    Column("pronouns"),
)
USERS_1_2_1 = FileSpec("users.csv", E.USER, (*_USERS_1_2_HEAD, *_USERS_1_2_TAIL), "1.2")
# 1.2.0 has resourceSourcedIds between userMasterIdentifier and preferredGivenName.
USERS_1_2_0 = FileSpec(
    "users.csv",
    E.USER,
    (*_USERS_1_2_HEAD, Column("resourceSourcedIds", Kind.LIST), *_USERS_1_2_TAIL),
    "1.2",
)

ROLES_1_2_SPEC = FileSpec(
    "roles.csv",
    E.ROLE,
    (
        *HEAD,
        _ref("userSourcedId", E.USER, required=True),
        _enum("roleType", "primary secondary"),
        _enum("role", ROLES_1_2, ext=True),
        Column("beginDate", Kind.DATE),
        Column("endDate", Kind.DATE),
        _ref("orgSourcedId", E.ORG, required=True),
        _ref("userProfileSourcedId", E.USER_PROFILE),
    ),
    "1.2",
)

USER_PROFILES_1_2 = FileSpec(
    "userProfiles.csv",
    E.USER_PROFILE,
    (
        *HEAD,
        _ref("userSourcedId", E.USER, required=True),
        Column("profileType", required=True),
        Column("vendorId", required=True),
        Column("applicationId"),
        Column("description"),
        Column("credentialType", required=True),
        Column("username", required=True),
        Column("password"),
    ),
    "1.2",
)

# Files in the order the fetcher publishes them: referenced entities before the ones that refer.
FILES_1_1: tuple[FileSpec, ...] = (
    _orgs("1.1", False),
    _academic_sessions("1.1", False),
    _courses("1.1"),
    _classes("1.1", False),
    USERS_1_1,
    _enrollments("1.1", False),
    _demographics("1.1", SEX_1_1),
)
FILES_1_2: tuple[FileSpec, ...] = (
    _orgs("1.2", True),
    _academic_sessions("1.2", True),
    _courses("1.2"),
    _classes("1.2", True),
    USERS_1_2_1,
    USER_PROFILES_1_2,
    ROLES_1_2_SPEC,
    _enrollments("1.2", True),
    _demographics("1.2", SEX_1_2),
)

# Files that are part of OneRoster but not of rostering: read past and named in the run report.
NOT_INGESTED = (
    "categories.csv",
    "classResources.csv",
    "courseResources.csv",
    "lineItems.csv",
    "resources.csv",
    "results.csv",
    "userResources.csv",
    "scoreScales.csv",
    "lineItemLearningObjectiveIds.csv",
    "lineItemScoreScales.csv",
    "resultLearningObjectiveIds.csv",
    "resultScoreScales.csv",
)


def files_for(version: str) -> tuple[FileSpec, ...]:
    """The rostering files of a OneRoster version ("1.1", "1.2", "1.2.1"…)."""
    return FILES_1_2 if version.startswith("1.2") else FILES_1_1


def spec_for(version: str, entity: EntityType, header: list[str] | None = None) -> FileSpec:
    """The spec of one file; for 1.2 users.csv the header decides between 1.2.0 and 1.2.1."""
    if entity is E.USER and version.startswith("1.2") and header is not None:
        lowered = {h.lower() for h in header}
        return USERS_1_2_0 if "resourcesourcedids" in lowered else USERS_1_2_1
    return _spec_for(version, entity)


@cache  # asked for every record by the validator and the mapper
def _spec_for(version: str, entity: EntityType) -> FileSpec:
    for spec in files_for(version):
        if spec.entity is entity:
            return spec
    raise KeyError(f"OneRoster {version} has no {entity.value} file")


# Never copied into events: a password has no business travelling through the pipeline.
DROPPED_COLUMNS = frozenset({"password"})


def resolved_key(column: str) -> str:
    """Where the mapper puts a reference's internal id(s): ``orgSourcedIds`` → ``orgInternalIds``,
    ``parentSourcedId`` → ``parentInternalId`` (the writer reads them back from there)."""
    return column.replace("SourcedId", "InternalId")
