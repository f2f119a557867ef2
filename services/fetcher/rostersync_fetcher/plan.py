"""What a bundle holds: the manifest's word on each file, checked against the files themselves."""

from __future__ import annotations

import csv
from dataclasses import dataclass

from rostersync_libs.envelope import FileFacts
from rostersync_libs.oneroster.columns import NOT_INGESTED, FileSpec, files_for, spec_for

from rostersync_fetcher.csv_bundle import MANIFEST, Bundle, Encoding

PUBLISHED_MODES = frozenset({"bulk", "delta"})


@dataclass(frozen=True)
class PlannedFile:
    spec: FileSpec
    facts: FileFacts
    encoding: Encoding | None

    @property
    def published(self) -> bool:
        return self.facts.present and self.facts.mode in PUBLISHED_MODES


@dataclass(frozen=True)
class BundlePlan:
    version: str
    manifest: dict[str, str]
    files: list[PlannedFile]
    skipped: dict[str, str]  # file → why it is not ingested


def _peek(bundle: Bundle, file_name: str, encoding: Encoding) -> tuple[list[str], bool]:
    """The header and whether at least one data row follows."""
    try:
        with bundle.reader(file_name, encoding) as (header, rows):
            return header, next(rows, None) is not None
    except csv.Error:
        return [], True  # reported with its line when the rows are read


def plan_bundle(bundle: Bundle, profile: str) -> BundlePlan:
    manifest = bundle.manifest()
    version = manifest.get("oneroster.version", "1.1") or "1.1"
    files: list[PlannedFile] = []
    for base_spec in files_for(version):
        name = base_spec.file_name
        mode = manifest.get(f"file.{base_spec.entity.value}", "unlisted").lower() or "unlisted"
        present = bundle.exists(name)
        encoding = bundle.encoding(name) if present else None
        header, has_rows = _peek(bundle, name, encoding) if encoding else ([], False)
        spec = spec_for(version, base_spec.entity, header) if header else base_spec
        facts = FileFacts(
            file=name,
            entity=spec.entity,
            oneroster_version=version,
            mode=mode,
            present=present,
            header=header,
            has_rows=has_rows,
            encoding=encoding.name if encoding else "utf-8",
            encoding_error=encoding.problem if encoding else None,
            profile=profile,
        )
        files.append(PlannedFile(spec, facts, encoding))
    rostering = {f.spec.file_name for f in files}
    skipped = {}
    for name in bundle.files():
        if name == MANIFEST:
            continue
        if name in NOT_INGESTED:
            skipped[name] = "gradebook/resource data: not rostering, not ingested"
        elif name not in rostering:
            skipped[name] = f"not a OneRoster {version} rostering file"
    for planned in files:
        if planned.facts.present and not planned.published:
            skipped[planned.facts.file] = f"manifest declares it {planned.facts.mode}"
    return BundlePlan(version, manifest, files, skipped)
