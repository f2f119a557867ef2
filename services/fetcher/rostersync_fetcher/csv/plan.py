"""What a bundle holds: the manifest's word on each file, checked against the files themselves."""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace

import msgspec
from rostersync_libs.events import EntityType, FileFacts, ManifestMode, Profile, RecordMode
from rostersync_libs.oneroster.bundle import MANIFEST, Bundle, Encoding, ManifestEntry
from rostersync_libs.oneroster.columns import NOT_INGESTED, FileSpec, files_for, spec_for
from rostersync_libs.oneroster.cuts import UNSAFE_FILE, Cut

from rostersync_fetcher.csv.index import filled_columns

PUBLISHED_MODES = frozenset({"bulk", "delta"})
MANIFEST_MODES = ("bulk", "delta", "absent")


def read_mode(entry: ManifestEntry | None) -> ManifestMode:
    """How a file's ``file.*`` manifest value is read.

    ``bulk``, ``delta`` and ``absent`` in any case (a case slip is reported, not guessed at); no
    line at all is ``unlisted``. A blank or unknown value is read as ``absent``: the file is not
    read. Guessing ``bulk`` could archive every record missing from a file that was meant as a
    delta, and guessing ``delta`` would apply status rules the producer may not have followed;
    not reading the file keeps the tenant's records as they are, and the validator reports the
    line (``manifest_invalid_value``) so the producer can fix it.
    """
    if entry is None:
        return "unlisted"
    value = entry.value.lower()
    if value == "bulk":
        return "bulk"
    if value == "delta":
        return "delta"
    return "absent"  # "absent" itself, blank or unknown


@dataclass(frozen=True)
class PlannedFile:
    spec: FileSpec
    facts: FileFacts
    encoding: Encoding | None
    # Present, yet never read: a symbolic link or special file, or a header past a limit.
    unread: Cut | None = None

    @property
    def published(self) -> bool:
        return self.facts.present and self.facts.mode in PUBLISHED_MODES and self.unread is None

    @property
    def record_mode(self) -> RecordMode:
        """The mode of the file's records (only a published file has records)."""
        mode = self.facts.mode
        assert mode == "bulk" or mode == "delta", f"{self.facts.file} is not published"
        return mode


@dataclass(frozen=True)
class BundlePlan:
    version: str
    manifest: dict[str, str]
    files: list[PlannedFile]
    skipped: dict[str, str]  # file → why it is not ingested


def _peek(bundle: Bundle, file_name: str, encoding: Encoding) -> tuple[list[str], bool, Cut | None]:
    """The header, whether at least one data row follows, and a limit the header passes."""
    try:
        with bundle.reading(file_name, encoding) as reading:
            return reading.header, next(reading.rows(), None) is not None, reading.cuts.header
    except csv.Error:
        return [], True, None  # reported with its line when the rows are read


def plan_bundle(bundle: Bundle, profile: Profile) -> BundlePlan:
    entries = bundle.manifest_entries()
    manifest = {name: entry.value for name, entry in entries.items()}
    version = manifest.get("oneroster.version", "1.1") or "1.1"
    files: list[PlannedFile] = []
    for base_spec in files_for(version):
        name = base_spec.file_name
        entry = entries.get(f"file.{base_spec.entity.value}")
        mode = read_mode(entry)
        present = bundle.exists(name)
        refused = bundle.refusal(name) if present else None
        unread: Cut | None = None
        encoding: Encoding | None = None
        header: list[str] = []
        has_rows = False
        if refused is not None:
            unread = Cut(
                UNSAFE_FILE,
                f"{refused}: a bundle's files must be regular files inside it; not read",
            )
        elif present:
            encoding = bundle.encoding(name)
            header, has_rows, unread = _peek(bundle, name, encoding)
        spec = spec_for(version, base_spec.entity, header) if header else base_spec
        facts = FileFacts(
            file=name,
            entity=spec.entity,
            oneroster_version=version,
            mode=mode,
            manifest_line=entry.line if entry else None,
            manifest_value=entry.value if entry else None,
            present=present,
            header=header,
            has_rows=has_rows,
            encoding=encoding.name if encoding else "utf-8",
            encoding_error=encoding.problem if encoding else None,
            parse_error=unread.fact() if unread else None,
            profile=profile,
        )
        files.append(PlannedFile(spec, facts, encoding, unread))
    rostering = {f.spec.file_name for f in files}
    skipped = {}
    for name in bundle.files():
        if name in (MANIFEST, bundle.manifest_name):
            continue
        refused = bundle.refusal(name)
        if refused is not None:
            skipped[name] = f"{refused}: not read"
        elif name in NOT_INGESTED:
            skipped[name] = "gradebook/resource data: not rostering, not ingested"
        elif name not in rostering:
            skipped[name] = f"not a OneRoster {version} rostering file"
    for planned in files:
        facts = planned.facts
        if planned.unread is not None:
            skipped[facts.file] = planned.unread.message
        elif facts.present and not planned.published:
            value = facts.manifest_value
            if value is not None and value.lower() not in MANIFEST_MODES:
                skipped[facts.file] = (
                    f"manifest.csv:{facts.manifest_line} file.{facts.file[:-4]}={value!r} is not"
                    " bulk, delta or absent; read as absent"
                )
            else:
                skipped[facts.file] = f"manifest declares it {facts.mode}"
    return BundlePlan(version, manifest, files, skipped)


def absent_but_referenced(bundle: Bundle, plan: BundlePlan) -> BundlePlan:
    """The plan with, on each file the manifest declares ``absent``, the bulk files of the bundle
    whose records reference its entity (``FileFacts.referenced_by``).

    A bulk bundle must hold every record it references (OneRoster CSV, section 2); a delta file
    may point at records sent before, so only bulk files count. A file counts when one of its
    reference columns holds a value on some row: each such file is read until every column in
    question has shown one (usually its first row; the whole file only when a column is blank
    throughout), so bundles without absent targets read nothing more. Files whose ``file.*`` value is blank or unknown are read as absent too, but
    already have their own finding: only an explicit ``absent`` is checked here.
    """
    absent = {
        f.spec.entity
        for f in plan.files
        if f.facts.mode == "absent" and (f.facts.manifest_value or "").lower() == "absent"
    }
    if not absent:
        return plan
    referenced: dict[EntityType, dict[str, list[str]]] = {}
    for planned in plan.files:
        if not planned.published or planned.facts.mode != "bulk" or planned.encoding is None:
            continue
        wanted = {c.name: t for c, t in planned.spec.checked_references if t in absent}
        if not wanted:
            continue
        filled = filled_columns(bundle, planned.facts.file, planned.encoding, set(wanted))
        for column in planned.spec.names:  # in the specification's order
            if column in filled:
                by_file = referenced.setdefault(wanted[column], {})
                by_file.setdefault(planned.facts.file, []).append(column)
    if not referenced:
        return plan
    files = [
        replace(f, facts=msgspec.structs.replace(f.facts, referenced_by=referenced[f.spec.entity]))
        if f.spec.entity in referenced
        else f
        for f in plan.files
    ]
    return BundlePlan(plan.version, plan.manifest, files, plan.skipped)
