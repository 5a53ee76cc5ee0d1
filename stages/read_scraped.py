"""Scraped GitHub: a folder of repositories read into records, nothing outside the roots ever read.

Each top-level folder of a root is one repository; loose files at the top level form a repository
named after the root. Files are listed first (paths and sizes only), then read in parallel.
Binary, vendored, minified, empty and oversized files are dropped with their reason; unreadable
files, invalid UTF-8 and symlinks leaving the repository are quarantined with theirs.
"""
from __future__ import annotations

import fnmatch
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import xxhash

from codecorpus import storage
from codecorpus.stages.decode import decode_text
from codecorpus.stages.license import is_license_file, repository_license
from codecorpus.stages.records import DROPPED, QUARANTINED, new_record, records_table

VENDORED_DIRS = frozenset({"node_modules", "vendor", "third_party", "bower_components"})
VCS_DIRS = frozenset({".git", ".hg", ".svn"})
MINIFIED_SUFFIXES = (".min.js", ".min.css")
BINARY_SNIFF_BYTES = 8192
OBJECT_READS = 16               # objects of a batch fetched at once from object storage



def list_repositories(source: str, roots: list[str], priority: int, max_file_bytes: int,
                      exclude: list[str] = (), layout: str = "repo", origins: list[str] | None = None) -> list[dict]:
    """One row per repository folder (and one for the loose files of each root). `layout`: "repo" —
    each top-level folder is a repository (`repo/`, `owner__repo/`); "owner/repo" — each folder one
    level down is a repository named `owner/repo` (loose files of an owner folder form `owner`).
    `origins`: each root's name in its records' ids (default: the root's own name)."""
    repos = []
    base = dict(source=source, priority=priority, max_file_bytes=max_file_bytes, exclude=list(exclude))

    def add(name: str, folder: str, top_level_only: bool) -> None:
        repos.append(dict(base, repo=name, repo_root=folder, top_level_only=top_level_only, license=folder_license(folder),
                          origin=origin))

    for root, origin in zip(roots, origins or [Path(r).name for r in roots]):
        add(Path(root).name, str(root), True)
        for name, path in _subfolders(root):
            if layout == "owner/repo":
                add(name, path, True)
                for sub, sub_path in _subfolders(path):
                    add(f"{name}/{sub}", sub_path, False)
            else:
                add(name, path, False)
    return repos


def _subfolders(folder: str) -> list[tuple[str, str]]:
    """(name, path) of the folders directly in `folder` (symlinks to folders are not followed), by name."""
    if storage.is_remote(folder):
        return [(e.path.rsplit("/", 1)[-1], e.path) for e in storage.list_dir(folder) if e.is_dir]
    return [(e.name, e.path) for e in sorted(os.scandir(folder), key=lambda e: e.name) if e.is_dir(follow_symlinks=False)]


def folder_license(folder: str) -> str | None:
    """The SPDX id from the LICENSE/COPYING files at the top of a repository folder (regular files only)."""
    if storage.is_remote(folder):
        top = [(e.path.rsplit("/", 1)[-1], e.path, e.size) for e in storage.list_dir(folder) if not e.is_dir]
    else:
        top = [(e.name, e.path, e.stat().st_size) for e in os.scandir(folder) if e.is_file(follow_symlinks=False)]
    texts = {}
    for name, path, size in top:
        if is_license_file(name) and size < 200_000:
            try:
                with storage.open_input(path) as fh:
                    texts[name] = fh.read().decode("utf-8", "replace")
            except OSError:
                continue
    return repository_license(texts)


def _walk(repo_root: str, top_level_only: bool):
    if storage.is_remote(repo_root):
        yield from (e for e in (storage.list_dir(repo_root) if top_level_only else storage.walk_files(repo_root)) if not e.is_dir)
        return
    if top_level_only:
        for entry in sorted(os.scandir(repo_root), key=lambda e: e.name):
            if not entry.is_dir(follow_symlinks=False):
                yield entry.path
        return
    for dirpath, dirnames, filenames in os.walk(repo_root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames) + sorted(d for d in dirnames if os.path.islink(os.path.join(dirpath, d))):
            yield os.path.join(dirpath, name)


def list_files(repo: dict) -> list[dict]:
    """Every file of one repository: paths, no contents. The fingerprint hashes path, size and mtime;
    `bytes` is the size (up to the cap) of a file that will be read."""
    rows = []
    for abs_path in _walk(repo["repo_root"], repo["top_level_only"]):
        extra = {}
        if isinstance(abs_path, storage.Entry):   # an object: its size and time come with the listing
            fp = xxhash.xxh64_intdigest(f"{abs_path.path}\0{abs_path.size}\0{abs_path.mtime_ns}".encode()) - (1 << 63)
            extra = {"object_size": abs_path.size}  # read_one needs no request of its own for it
            abs_path, size = abs_path.path, min(abs_path.size, repo["max_file_bytes"])
        else:
            try:
                st = os.lstat(abs_path)
                fp = xxhash.xxh64_intdigest(os.fsencode(abs_path) + f"\0{st.st_size}\0{st.st_mtime_ns}".encode()) - (1 << 63)
                size = min(st.st_size, repo["max_file_bytes"])
            except OSError:
                fp, size = 0, 0
        try:
            abs_path.encode("utf-8")
        except UnicodeEncodeError:  # a file name that is not UTF-8: kept visible, quarantined at read
            abs_path = os.fsencode(abs_path).decode("utf-8", "replace")
        path = storage.relative(abs_path, repo["repo_root"])
        excluded = _excluded(repo["repo"], path, repo["exclude"])
        rows.append(dict(
            source=repo["source"], repo=repo["repo"], repo_root=repo["repo_root"], abs_path=abs_path, path=path,
            priority=repo["priority"], max_file_bytes=repo["max_file_bytes"], fingerprint=fp, license=repo.get("license"),
            origin=repo.get("origin", ""), excluded=excluded, bytes=0 if excluded else size,   # bytes: what plan orders by
            **extra))
    return rows


def _excluded(repo: str, path: str, patterns: list[str]) -> bool:
    full = f"{repo}/{path}"
    return any(fnmatch.fnmatchcase(full, p) for p in patterns)


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def skipped_by_path(path: str) -> str | None:
    """Why a file is dropped from its path alone (VCS metadata, vendored folder, minified), or None."""
    parts = Path(path).parts
    if any(p in VCS_DIRS for p in parts):
        return "vcs_metadata"
    if any(p in VENDORED_DIRS for p in parts[:-1]):
        return "vendored"
    if path.lower().endswith(MINIFIED_SUFFIXES):
        return "minified"
    return None


def read_one(abs_path: str, path: str, repo_root: str, max_file_bytes: int,
             object_size: int | None = None) -> tuple[str, str | None, str | None, int]:
    """(status, reason, text, size) for one listed file (`object_size`: an object's size from its listing)."""
    if "\ufffd" in abs_path and not os.path.lexists(abs_path):
        return QUARANTINED, "undecodable_file_name", None, 0
    if reason := skipped_by_path(path):
        return DROPPED, reason, None, 0
    if storage.is_remote(abs_path):
        return _read_object(abs_path, object_size, max_file_bytes)
    try:
        st = os.lstat(abs_path)
        if stat.S_ISLNK(st.st_mode):
            try:
                target = os.path.realpath(abs_path, strict=True)
            except (OSError, RuntimeError):
                return QUARANTINED, "broken_or_looping_symlink", None, 0
            if not _inside(target, os.path.realpath(repo_root)):
                return QUARANTINED, "symlink_outside_repository", None, 0
            return DROPPED, "symlink", None, 0
        if not stat.S_ISREG(st.st_mode):
            return DROPPED, "not_a_regular_file", None, 0
        if st.st_size == 0:
            return DROPPED, "empty", None, 0
        if st.st_size > max_file_bytes:
            return DROPPED, "over_size_cap", None, st.st_size
        with open(abs_path, "rb") as fh:
            head = fh.read(BINARY_SNIFF_BYTES)
            if b"\0" in head:
                return DROPPED, "binary", None, st.st_size
            data = head + fh.read(max_file_bytes + 1 - len(head))
    except OSError as exc:
        return QUARANTINED, f"unreadable:{type(exc).__name__}", None, 0
    return _judge(data, st.st_size)


def _judge(data: bytes, size: int) -> tuple[str, str | None, str | None, int]:
    """A read file's bytes: binary (a NUL early on), undecodable, or its text."""
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        return DROPPED, "binary", None, size
    text, reason = decode_text(data)
    return (QUARANTINED if reason else "kept"), reason, text, len(data)


def _read_object(url: str, size: int | None, max_file_bytes: int) -> tuple[str, str | None, str | None, int]:
    """read_one for an object in object storage: no symlinks there; its size from the listing (asked
    where not given), then one GET for its bytes (none for an empty or oversized object)."""
    try:
        if size is None:
            entry = storage.stat(url)
            if entry is None:
                raise FileNotFoundError(url)
            size = entry.size
        if size == 0:
            return DROPPED, "empty", None, 0
        if size > max_file_bytes:
            return DROPPED, "over_size_cap", None, size
        data = storage.read_bytes(url)
    except OSError as exc:
        return QUARANTINED, f"unreadable:{type(exc).__name__}", None, 0
    return _judge(data, size)


def read_files(listing: pa.Table) -> pa.Table:
    """Turn a batch of listed files into records (see RECORD_SCHEMA). Objects in object storage are
    fetched OBJECT_READS at a time (each read waits on the network, not on this CPU)."""
    listed = listing.to_pylist()

    def judged(row: dict) -> tuple[str, str | None, str | None, int]:
        if row["excluded"]:
            return DROPPED, "excluded_path", None, 0
        return read_one(row["abs_path"], row["path"], row["repo_root"], row["max_file_bytes"], row.get("object_size"))

    if any(storage.is_remote(row["abs_path"]) for row in listed):
        with ThreadPoolExecutor(OBJECT_READS) as pool:
            results = list(pool.map(judged, listed))
    else:
        results = [judged(row) for row in listed]
    return records_table([new_record(row["source"], row["repo"], row["path"], row["priority"], text=text, size=size,
                                     license=row.get("license"), status=status, reason=reason, origin=row.get("origin", ""))
                          for row, (status, reason, text, size) in zip(listed, results)])
