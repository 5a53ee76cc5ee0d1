"""Scraped repositories packed as `.tar.gz` / `.tgz` / `.tar` / `.zip`, read without extracting to disk.

One archive is one repository (named after the archive; a single top-level folder such as
`repo-main/` is stripped from paths). Members are read in memory, one at a time, with the same
rules as folders: `.git/` and vendored folders skipped, NUL byte in the first 8 KB = binary,
over the size cap dropped without being read. A member named `../x` or `/etc/x` is quarantined
(nothing is ever written anywhere); links are dropped, never followed; a corrupt archive keeps
the members read before the damage and quarantines one record for it. The repository's license
comes from its top-level LICENSE/COPYING files (a first pass over the names for zip, over the
stream for tar).
"""
from __future__ import annotations

import os
import tarfile
import zipfile
import zlib
from pathlib import PurePosixPath
from typing import IO, Iterator

import pyarrow as pa

from codecorpus import storage
from codecorpus.stages.decode import decode_text
from codecorpus.stages.license import is_license_file, repository_license
from codecorpus.stages.read_scraped import BINARY_SNIFF_BYTES, skipped_by_path
from codecorpus.stages.records import DROPPED, QUARANTINED, new_record, records_table

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
BATCH_ROWS = 256
_ERRORS = (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError)


def is_archive(path: str) -> bool:
    return path.lower().endswith(ARCHIVE_SUFFIXES)


def repo_name(path: str) -> str:
    name = os.path.basename(path)
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _unsafe(name: str) -> bool:
    return name.startswith(("/", "\\")) or ".." in PurePosixPath(name.replace("\\", "/")).parts or ":" in name.split("/")[0]


def _members(path: str) -> Iterator[tuple[str, str, int, IO[bytes] | None]]:
    """(name, kind: file|link|other, size, stream) for each member, streaming."""
    if path.lower().endswith(".zip"):
        with storage.open_input(path) as raw, zipfile.ZipFile(raw) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
                yield info.filename, "link" if is_link else "file", info.file_size, (None if is_link else zf.open(info))
        return
    with storage.open_input(path) as raw, tarfile.open(fileobj=raw, mode="r|*") as tf:
        for info in tf:
            if info.isdir():
                continue
            kind = "file" if info.isreg() else "link" if info.issym() or info.islnk() else "other"
            yield info.name, kind, info.size, (tf.extractfile(info) if kind == "file" else None)


def _common_prefix(names: list[str]) -> str:
    tops = {n.split("/", 1)[0] for n in names}
    return next(iter(tops)) + "/" if len(tops) == 1 and all("/" in n for n in names) else ""


def scan(path: str) -> tuple[str, str | None]:
    """First pass: the folder prefix to strip and the repository's license."""
    names, licenses = [], {}
    try:
        for name, kind, size, stream in _members(path):
            names.append(name)
            if kind == "file" and is_license_file(PurePosixPath(name).name) and name.count("/") <= 1 and size < 200_000:
                licenses[name] = stream.read().decode("utf-8", "replace")
    except _ERRORS:
        pass
    prefix = _common_prefix([n for n in names if not _unsafe(n)])
    top = {n: t for n, t in licenses.items() if "/" not in n[len(prefix):]} if prefix else licenses
    return prefix, repository_license({n.rsplit("/", 1)[-1]: t for n, t in top.items() if n.startswith(prefix)})


def _read_member(rel: str, kind: str, size: int, stream: IO[bytes] | None, max_bytes: int) -> tuple[str, str | None, str | None, int]:
    if kind == "link":
        return DROPPED, "symlink", None, 0
    if kind != "file":
        return DROPPED, "not_a_regular_file", None, 0
    if reason := skipped_by_path(rel):
        return DROPPED, reason, None, 0
    if size == 0:
        return DROPPED, "empty", None, 0
    if size > max_bytes:
        return DROPPED, "over_size_cap", None, size
    data = stream.read(max_bytes + 1)
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        return DROPPED, "binary", None, size
    text, reason = decode_text(data)
    return (QUARANTINED if reason else "kept"), reason, text, len(data)


def read_archive(source: str, path: str, priority: int, max_file_bytes: int, origin: str = "") -> Iterator[pa.Table]:
    """Records of an archive's members, in archive order; a member's id holds the archive's `origin`
    and the member's ordinal (an archive may hold one name twice)."""
    repo = repo_name(path)
    prefix, license = scan(path)
    rows: list[dict] = []
    seen = 0
    try:
        for name, kind, size, stream in _members(path):
            seen += 1
            if _unsafe(name):
                rows.append(new_record(source, repo, name, priority, license=license, origin=origin, row=seen,
                                       status=QUARANTINED, reason="unsafe_member_path"))
            else:
                rel = name[len(prefix):] if prefix and name.startswith(prefix) else name
                status, reason, text, nbytes = _read_member(rel, kind, size, stream, max_file_bytes)
                rows.append(new_record(source, repo, rel, priority, text=text, size=nbytes, license=license,
                                       origin=origin, row=seen, status=status, reason=reason))
            if len(rows) >= BATCH_ROWS:
                yield records_table(rows)
                rows = []
    except _ERRORS as exc:
        rows.append(new_record(source, repo, None, priority, id_key=f"damaged-after:{seen}", origin=origin, status=QUARANTINED,
                               reason=f"corrupt_archive:{type(exc).__name__}"))
    if rows:
        yield records_table(rows)
