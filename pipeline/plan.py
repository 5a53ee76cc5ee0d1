"""Planning a build: the ingest partitions and the fingerprint of the input, made on the driver.

Repository folders are listed file by file (paths, sizes and modification times, no contents), and
a source's files, repository after repository, are cut into partitions of `ray.files_per_partition` files; archives, Pile files, CodeParrot row groups and
json.gz files are one partition each. The fingerprint hashes every file's path, size and mtime,
so a changed input re-runs the build. Listing is plain `os.scandir` work (one listing request per
1,000 objects in object storage): seconds for 100k files.
"""
from __future__ import annotations

import json

import xxhash

from codecorpus import storage
from codecorpus.stages import read_scraped, sources

def plan_inputs(cfg) -> tuple[list[dict], str]:
    """([{part, payload, bytes}], input fingerprint) for a BuildConfig; `bytes`: about what the part
    reads (the per-file pass runs the largest parts first)."""
    fingerprint = 0
    parts: list[dict] = []
    for source in cfg.sources:
        folders, units = sources.plan(source, source.resolved_paths())
        # listed files of a source, repository after repository, in partitions of files_per_partition
        files = [f for folder in folders for f in read_scraped.list_files(folder)]
        size = cfg.ray.files_per_partition
        for k in range(0, len(files), size):
            chunk = files[k:k + size]
            fingerprint += sum(f["fingerprint"] for f in chunk)
            name = xxhash.xxh64_hexdigest(f"{source.name}\0{chunk[0]['repo']}\0{chunk[0]['abs_path']}\0{len(chunk)}".encode())
            parts.append({"part": f"f-{name}", "payload": json.dumps({"files": chunk}), "bytes": sum(f["bytes"] for f in chunk)})
        for unit in units:
            fingerprint += sources.unit_fingerprint(unit)
            name = xxhash.xxh64_hexdigest(f"{unit['source']}\0{unit['path']}\0{unit['row_group']}".encode())
            parts.append({"part": f"u-{name}", "payload": json.dumps({"unit": unit}), "bytes": _size(unit["path"])})
    return parts, f"{fingerprint % (1 << 64):016x}"


def _size(path: str) -> int:
    entry = storage.stat(path)
    return entry.size if entry else 0
