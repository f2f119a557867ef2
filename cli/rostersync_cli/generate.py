"""A deterministic generator of OneRoster bundles (1.1 or 1.2) for a district of N students.

Realistic shape: elementary (KG-05), middle (06-08) and high (09-12) schools, a school year with
two terms, ~25 students per class, one homeroom class per elementary student and 7 scheduled
classes per secondary student, a teacher per class (a co-teacher for some, primary flag on the
first), guardians for 60% of students, and about 1% of students attending two schools.
Rows are written as they are made: memory holds one grade cohort's ids at a time.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rostersync_libs.events import EntityType
from rostersync_libs.oneroster.columns import files_for, spec_for

BANDS = (("es", ("KG", "01", "02", "03", "04", "05")), ("ms", ("06", "07", "08")),
         ("hs", ("09", "10", "11", "12")))  # fmt: skip
GRADE_YEARS = ("KG", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12")
SUBJECTS = ("Math", "English", "Science", "History", "Art", "PE", "Music")
CLASS_SIZE = 25
GIVEN = [
    "Ada",
    "Ben",
    "Cleo",
    "Dev",
    "Eli",
    "Fay",
    "Gus",
    "Hana",
    "Ivo",
    "Jae",
    "Kai",
    "Lea",
    "Max",
    "Nia",
    "Oli",
    "Pia",
    "Quin",
    "Rae",
    "Sam",
    "Tao",
]
FAMILY = [
    "Abe",
    "Bose",
    "Cruz",
    "Diaz",
    "Eng",
    "Fox",
    "Gray",
    "Hale",
    "Ito",
    "Jain",
    "Khan",
    "Lund",
    "Mora",
    "Ngo",
    "Ortiz",
    "Park",
    "Ruiz",
    "Shah",
]


@dataclass(frozen=True)
class DistrictShape:
    students: int
    seed: int = 1
    version: str = "1.1"
    tenant_prefix: str = ""  # prepended to every sourcedId (several districts in one test)


class Writers:
    """One CSV writer per OneRoster file, with the specification's header."""

    def __init__(self, stack: ExitStack, folder: Path, version: str) -> None:
        self._writers: dict[EntityType, Any] = {}
        self.version = version
        self.counts: dict[EntityType, int] = {}
        for spec in files_for(version):
            handle = stack.enter_context((folder / spec.file_name).open("w", newline=""))
            writer = csv.DictWriter(handle, fieldnames=list(spec.names), extrasaction="ignore")
            writer.writeheader()
            self._writers[spec.entity] = writer
            self.counts[spec.entity] = 0

    def row(self, entity: EntityType, values: dict[str, str]) -> None:
        if entity in self._writers:
            self._writers[entity].writerow(values)
            self.counts[entity] += 1


def write_manifest(folder: Path, version: str) -> None:
    with (folder / "manifest.csv").open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerows([["propertyName", "value"], ["manifest.version", "1.0"],
                       ["oneroster.version", version]])  # fmt: skip
        for spec in files_for(version):
            out.writerow([f"file.{spec.entity.value}", "bulk"])
        out.writerows([["source.systemName", "rostersync generator"], ["source.systemCode", "gen"]])


class DistrictGenerator:
    def __init__(self, shape: DistrictShape, out: Writers) -> None:
        self.shape = shape
        self.out = out
        self.rand = random.Random(shape.seed)  # noqa: S311  (synthetic data, not secrets)
        self.p = shape.tenant_prefix
        self.is_1_2 = shape.version.startswith("1.2")
        self.next_user = 0

    def new_id(self) -> str:
        self.next_user += 1
        return f"{self.p}usr-{self.next_user:07d}"

    def user(self, role: str, orgs: list[str], sid: str | None = None, **extra: str) -> str:
        sid = sid or self.new_id()
        n = sid.rsplit("-", 1)[-1]
        given, family = self.rand.choice(GIVEN), self.rand.choice(FAMILY)
        row = {"sourcedId": sid, "enabledUser": "true", "username": f"{given}.{family}{n}".lower(),
               "givenName": given, "familyName": family, "identifier": f"ID{n}", **extra}  # fmt: skip
        if self.is_1_2:
            self.out.row(EntityType.USER, row | {"userMasterIdentifier": f"M{n}"})
            for k, org in enumerate(orgs):
                self.out.row(EntityType.ROLE, {"sourcedId": f"{sid}-r{k}", "userSourcedId": sid,
                             "roleType": "primary", "role": role, "orgSourcedId": org})  # fmt: skip
            if role == "teacher":
                self.out.row(EntityType.USER_PROFILE, {"sourcedId": f"{sid}-p", "userSourcedId": sid,
                             "profileType": "lms", "vendorId": "rostersync", "credentialType": "login",
                             "username": row["username"]})  # fmt: skip
        else:
            self.out.row(EntityType.USER, row | {"role": role, "orgSourcedIds": ",".join(orgs)})
        return sid

    def run(self) -> None:
        p, out = self.p, self.out
        district = f"{p}org-district"
        out.row(
            EntityType.ORG,
            {"sourcedId": district, "name": "Generated District", "type": "district"},
        )
        year, terms = f"{p}as-2026", [f"{p}as-2026-fall", f"{p}as-2026-spring"]
        out.row(EntityType.ACADEMIC_SESSION, {"sourcedId": year, "title": "2025-2026", "type": "schoolYear",
                "startDate": "2025-08-15", "endDate": "2026-06-20", "schoolYear": "2026"})  # fmt: skip
        for term, (start, end) in zip(
            terms, (("2025-08-15", "2026-01-10"), ("2026-01-10", "2026-06-20")), strict=True
        ):
            out.row(EntityType.ACADEMIC_SESSION, {"sourcedId": term, "title": term.rsplit("-", 1)[-1].title(),
                    "type": "semester", "startDate": start, "endDate": end, "parentSourcedId": year,
                    "schoolYear": "2026"})  # fmt: skip
        per_grade = max(1, self.shape.students // 13)
        for band, grades in BANDS:
            schools = max(1, (per_grade * len(grades)) // 600)
            for s in range(schools):
                school = f"{p}org-{band}{s + 1}"
                out.row(EntityType.ORG, {"sourcedId": school, "name": f"{band.upper()} School {s + 1}",
                        "type": "school", "parentSourcedId": district, "identifier": f"NCES{band}{s + 1}"})  # fmt: skip
                for grade in grades:
                    cohort = per_grade // schools + (1 if s < per_grade % schools else 0)
                    self.cohort(school, grade, cohort, band, year, terms)

    def cohort(
        self, school: str, grade: str, size: int, band: str, year: str, terms: list[str]
    ) -> None:
        out, rand = self.out, self.rand
        students = []
        for _ in range(size):
            # ~1% also attend the district's high school (a course taken ahead of their grade).
            orgs = [school] + (
                [f"{self.p}org-hs1"] if rand.random() < 0.01 and band != "hs" else []
            )
            student = self.new_id()
            guardian = self.new_id() if rand.random() < 0.6 else None
            self.user("student", orgs, student, grades=grade, agentSourcedIds=guardian or "")
            if guardian is not None:
                role = "parent" if rand.random() < 0.9 else "guardian"
                self.user(role, [school], guardian, agentSourcedIds=student)
            students.append(student)
            birth = f"{2020 - GRADE_YEARS.index(grade)}-{rand.randint(1, 12):02d}-{rand.randint(1, 28):02d}"
            out.row(EntityType.DEMOGRAPHIC, {"sourcedId": student, "birthDate": birth,
                    "sex": rand.choice(("male", "female"))})  # fmt: skip
        subjects = ("Homeroom", "Specials") if band == "es" else SUBJECTS
        for subject in subjects:
            course = f"{school}-crs-{grade}-{subject.lower()}"
            out.row(EntityType.COURSE, {"sourcedId": course, "title": f"{subject} {grade}", "grades": grade,
                    "orgSourcedId": school, "schoolYearSourcedId": year, "subjects": subject})  # fmt: skip
            rand.shuffle(students)
            for k, roster in enumerate(_chunks(students, CLASS_SIZE)):
                klass = f"{course}-{k + 1}"
                out.row(EntityType.CLASS, {"sourcedId": klass, "title": f"{subject} {grade} ({k + 1})",
                        "courseSourcedId": course, "classType": "homeroom" if subject == "Homeroom" else "scheduled",
                        "schoolSourcedId": school, "termSourcedIds": ",".join(terms), "grades": grade})  # fmt: skip
                teachers = [self.user("teacher", [school])]
                if rand.random() < 0.1:
                    teachers.append(self.user("teacher", [school]))
                for n, person in enumerate([*teachers, *roster]):
                    role = "teacher" if n < len(teachers) else "student"
                    out.row(EntityType.ENROLLMENT, {"sourcedId": f"{klass}-e{n}", "classSourcedId": klass,
                            "schoolSourcedId": school, "userSourcedId": person, "role": role,
                            "primary": "true" if n == 0 else "false"})  # fmt: skip


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def generate(folder: Path, shape: DistrictShape) -> dict[str, int]:
    """Write the bundle into ``folder``; returns rows per file."""
    folder.mkdir(parents=True, exist_ok=True)
    write_manifest(folder, shape.version)
    with ExitStack() as stack:
        writers = Writers(stack, folder, shape.version)
        DistrictGenerator(shape, writers).run()
    return {spec_for(shape.version, e).file_name: n for e, n in writers.counts.items()}
