"""What to read for each configured source: folders of repositories (listed file by file, see
read_scraped) and stream units — one archive, one Pile file, one CodeParrot Parquet row group or
json.gz file each — read by `read_unit` as a stream of record tables."""
from __future__ import annotations

import os
from typing import Iterator

import pyarrow as pa
import xxhash

from codecorpus import storage
from codecorpus.stages import read_archive, read_codeparrot, read_pile, read_scraped
from codecorpus.stages.records import QUARANTINED, new_record, records_table

PILE_SUFFIXES = (".jsonl.zst", ".jsonl.gz", ".jsonl", ".json.zst", ".json.gz")
CODEPARROT_JSON_SUFFIXES = (".json.gz", ".jsonl.gz", ".jsonl", ".jsonl.zst")


def _files(path: str, suffixes: tuple[str, ...]) -> list[str]:
    """A file, or the matching files under a folder (sorted, recursively)."""
    if storage.is_remote(path):
        return [e.path for e in storage.walk_files(path) if e.path.lower().endswith(suffixes)] if storage.is_dir(path) else [path]
    if os.path.isdir(path):
        return sorted(os.path.join(d, f) for d, _, names in os.walk(path) for f in names if f.lower().endswith(suffixes))
    return [path]


def anchor_of(paths: list[str]) -> str:
    """The folder the origins of a source's records are relative to: the deepest folder holding all
    its paths (a file's own folder for a single file). Moving the whole input — to another disk or
    into object storage — keeps every id."""
    return storage.common_folder(paths)


def plan(source, paths: list[str]) -> tuple[list[dict], list[dict]]:
    """(repository folders to list, stream units) for one SourceConfig with its resolved paths. Each
    carries its `origin`, its path relative to the source's anchor, which goes into its records' ids."""
    base = dict(source=source.name, priority=source.priority, max_file_bytes=source.max_file_bytes, keep=[])
    anchor = anchor_of(paths)

    def origin(path: str) -> str:
        return storage.relative(path, anchor)

    folders, units = [], []
    for path in paths:
        if source.kind == "scraped":
            if storage.is_dir(path):
                folders += read_scraped.list_repositories(source.name, [path], source.priority, source.max_file_bytes, source.exclude,
                                                          source.layout, origins=[origin(path)])
            else:
                units.append(dict(base, kind="archive", path=path, row_group=0, origin=origin(path)))
        elif source.kind == "pile":
            units += [dict(base, kind="pile", path=f, row_group=0, keep=list(source.pile_set_names), origin=origin(f))
                      for f in _files(path, PILE_SUFFIXES)]
        else:
            for f in _files(path, (".parquet",) + CODEPARROT_JSON_SUFFIXES):
                if f.endswith(".parquet"):
                    units += [dict(base, kind="parquet", path=f, row_group=g, origin=origin(f)) for g in read_codeparrot.row_groups(f)]
                else:
                    units.append(dict(base, kind="json", path=f, row_group=0, origin=origin(f)))
    return folders, units


def unit_fingerprint(unit: dict) -> int:
    """Path, size and modification time of a unit's file (what resume and the manifest compare)."""
    entry = storage.stat(unit["path"])
    key = f"{unit['path']}\0{unit['row_group']}\0{entry.size}\0{entry.mtime_ns}" if entry else f"{unit['path']}\0missing"
    return xxhash.xxh64_intdigest(key.encode())


def read_unit(units: pa.Table) -> Iterator[pa.Table]:
    """Records of the stream units in a batch (usually one), as they are read."""
    for u in units.to_pylist():
        src, path, prio, cap, origin = u["source"], u["path"], u["priority"], u["max_file_bytes"], u.get("origin", "")
        if u["kind"] == "pile":
            yield from read_pile.read_pile_file(src, path, prio, u["keep"], cap, origin=origin)
        elif u["kind"] == "json":
            yield from read_codeparrot.read_json_lines(src, path, prio, cap, origin=origin)
        elif u["kind"] == "parquet" and u["row_group"] >= 0:
            yield from read_codeparrot.read_parquet_row_group(src, path, u["row_group"], prio, cap, origin=origin)
        elif u["kind"] == "parquet":
            yield records_table([new_record(src, os.path.basename(path), None, prio, id_key="file", origin=origin,
                                            status=QUARANTINED, reason="unreadable_parquet")])
        elif read_archive.is_archive(path):
            yield from read_archive.read_archive(src, path, prio, cap, origin=origin)
        else:
            yield records_table([new_record(src, os.path.basename(path), None, prio, id_key="file", origin=origin,
                                            status=QUARANTINED, reason="not_an_archive_or_folder")])
