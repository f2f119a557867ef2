"""A delta bundle against a generated district: a given share of realistic changes.

Of the users: renames, moves to another school, and students who leave (``tobedeleted``); of the
enrollments: dropped ones (``tobedeleted``) and new ones (students joining existing classes).
Deterministic for a seed; the base bundle is streamed, never loaded whole.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

from rostersync_libs.oneroster.columns import files_for

DELTA_TIME = "2026-02-01T12:00:00Z"


def generate_delta(base: Path, out: Path, share: float = 0.02, seed: int = 7) -> dict[str, int]:
    """Write the delta bundle; returns rows per file."""
    rand = random.Random(seed)  # noqa: S311  (synthetic data, not secrets)
    out.mkdir(parents=True, exist_ok=True)
    counts = {
        "users.csv": _users(base, out, share, rand),
        "enrollments.csv": _enrollments(base, out, share, rand),
    }
    with (out / "manifest.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerows(
            [["propertyName", "value"], ["manifest.version", "1.0"], ["oneroster.version", "1.1"]]
        )
        for spec in files_for("1.1"):
            mode = "delta" if spec.file_name in counts else "absent"
            writer.writerow([f"file.{spec.entity.value}", mode])
    return counts


def _users(base: Path, out: Path, share: float, rand: random.Random) -> int:
    schools: list[str] = []
    with (base / "orgs.csv").open(newline="") as handle:
        schools = [r["sourcedId"] for r in csv.DictReader(handle) if r["type"] == "school"]
    written = 0
    with (
        (base / "users.csv").open(newline="") as src,
        (out / "users.csv").open("w", newline="") as dst,
    ):
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, fieldnames=list(reader.fieldnames or []))
        writer.writeheader()
        for row in reader:
            roll = rand.random()
            if roll >= share:
                continue
            row = row | {"status": "active", "dateLastModified": DELTA_TIME}
            if roll < share * 0.4:
                row["givenName"] = row["givenName"] + "e"  # a rename
            elif roll < share * 0.8 and row["role"] == "student":
                row["orgSourcedIds"] = rand.choice(schools)  # moved school
            elif row["role"] == "student":
                row["status"] = "tobedeleted"  # left the district
            writer.writerow(row)
            written += 1
    return written


def _enrollments(base: Path, out: Path, share: float, rand: random.Random) -> int:
    with (base / "classes.csv").open(newline="") as handle:
        classes = {r["sourcedId"] for r in csv.DictReader(handle)}  # small: ~1 per 25 students
    written = 0
    with (
        (base / "enrollments.csv").open(newline="") as src,
        (out / "enrollments.csv").open("w", newline="") as dst,
    ):
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, fieldnames=list(reader.fieldnames or []))
        writer.writeheader()
        for n, row in enumerate(reader):
            roll = rand.random()
            if roll < share / 2:
                writer.writerow(row | {"status": "tobedeleted", "dateLastModified": DELTA_TIME})
                written += 1
            elif roll < share and row["role"] == "student":
                # The same student joins the next class of the same course.
                klass = row["classSourcedId"]
                stem, _, number = klass.rpartition("-")
                joined = f"{stem}-{int(number) + 1}" if number.isdigit() else klass
                if joined not in classes:
                    continue
                writer.writerow(row | {"sourcedId": f"{row['sourcedId']}-new{n}", "classSourcedId": joined,
                                       "status": "active", "dateLastModified": DELTA_TIME})  # fmt: skip
                written += 1
    return written
