"""Files on a local disk or in S3-compatible object storage (`s3://bucket/key`), read through pyarrow's
filesystems: a build's input files (every source kind), a run folder written there by the build
(`--out s3://…`), and a finished run read where it is by `stats`, `show`, `query` and `serve`, or
copied to a local cache by `train` and `export`.

Credentials come from the standard AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials
and ~/.aws/config, an instance's role). The endpoint of an S3-compatible store (MinIO, Huawei Cloud
OBS, a local test server) is the standard AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL variable, the
region AWS_REGION or AWS_DEFAULT_REGION: Arrow reads neither endpoint variable itself
(apache/arrow#49643), so this module passes them on. Object stores have no folders: a "folder" is a
key prefix, and there are no symlinks or renames. A remote path is kept as its URL everywhere
(records, plans, the run folder's paths).

Writing keeps the run folder's rule on both: a file appears under its name only when complete. On a
disk it is written beside its name and renamed; an object is written to a local spool file first and
uploaded whole when that succeeds (an upload is visible only once complete, so a process killed
mid-write leaves nothing under the name).
"""
from __future__ import annotations

import fnmatch
import functools
import glob as local_glob
import os
import posixpath
import shutil
import stat as stat_module
import tempfile
from typing import IO, NamedTuple

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

SCHEME = "s3://"


class Entry(NamedTuple):
    path: str           # the URL (remote) or the path (local)
    is_dir: bool
    size: int
    mtime_ns: int


def is_remote(path: str) -> bool:
    return str(path).startswith(SCHEME)


def s3_settings() -> tuple[str, str]:
    """(endpoint, region) from the standard AWS variables ('' where unset)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
    return endpoint, os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""


# what the driver passes on to the Ray workers (credentials stay with each node's own AWS configuration)
SETTINGS_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION")


@functools.lru_cache(maxsize=4)
def _s3(endpoint: str, region: str, _credentials: tuple) -> pafs.S3FileSystem:
    # allow_delayed_open: an object smaller than one upload part is written by one PUT when closed,
    # not a multipart upload's three requests
    return pafs.S3FileSystem(endpoint_override=endpoint or None, region=region or None, connect_timeout=5,
                             request_timeout=60, retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=3),
                             allow_delayed_open=True)


def _split(url: str) -> tuple[pafs.S3FileSystem, str]:
    credentials = tuple(os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"))
    return _s3(*s3_settings(), credentials), url[len(SCHEME):].rstrip("/")


def _url(key: str) -> str:
    return SCHEME + key


def _entry(info: pafs.FileInfo) -> Entry:
    mtime = info.mtime_ns or 0
    return Entry(_url(info.path), info.type == pafs.FileType.Directory, info.size or 0, mtime)


def stat(path: str) -> Entry | None:
    """The entry at `path`, or None where nothing is. A remote path that cannot be asked about (wrong
    credentials, an endpoint that does not answer) raises OSError."""
    if not is_remote(path):
        try:
            st = os.stat(path)
        except OSError:
            return None
        return Entry(path, stat_module.S_ISDIR(st.st_mode), st.st_size, st.st_mtime_ns)
    fs, key = _split(path)
    info = fs.get_file_info(key)
    return None if info.type == pafs.FileType.NotFound else _entry(info)


def is_dir(path: str) -> bool:
    if is_remote(path):
        entry = stat(path)
        return bool(entry and entry.is_dir)
    return os.path.isdir(path)


def list_dir(url: str) -> list[Entry]:
    """The entries directly under a remote folder, sorted by name (none where there is no folder)."""
    fs, key = _split(url)
    infos = fs.get_file_info(pafs.FileSelector(key, allow_not_found=True))
    return sorted((_entry(i) for i in infos), key=lambda e: e.path)


def walk_files(url: str) -> list[Entry]:
    """Every object under a remote folder, sorted by key."""
    fs, key = _split(url)
    infos = fs.get_file_info(pafs.FileSelector(key, recursive=True, allow_not_found=True))
    return sorted((_entry(i) for i in infos if i.type == pafs.FileType.File), key=lambda e: e.path)


def glob(pattern: str) -> list[str]:
    """Sorted matches of a glob (`**` included); remote: every key under the pattern's fixed prefix
    matched by fnmatch, folders matched as well as objects."""
    if not is_remote(pattern):
        return sorted(local_glob.glob(pattern, recursive=True))
    fixed = []
    for part in pattern[len(SCHEME):].split("/"):
        if local_glob.has_magic(part):
            break
        fixed.append(part)
    fs, _ = _split(pattern)
    infos = fs.get_file_info(pafs.FileSelector("/".join(fixed), recursive=True, allow_not_found=True))
    return sorted(_url(i.path) for i in infos if fnmatch.fnmatchcase(_url(i.path), pattern.rstrip("/")))


def open_input(path: str) -> IO[bytes]:
    """A seekable binary file: an object read with ranged requests, or a local file."""
    if not is_remote(path):
        return open(path, "rb")
    fs, key = _split(path)
    return fs.open_input_file(key)


def read_bytes(url: str) -> bytes:
    if not is_remote(url):
        with open(url, "rb") as fh:
            return fh.read()
    fs, key = _split(url)
    with fs.open_input_stream(key) as fh:
        return fh.read()


def download(url: str, dest: str) -> None:
    """An object copied to a local file (written under a temporary name, renamed when whole)."""
    fs, key = _split(url)
    tmp = f"{dest}.part"
    pafs.copy_files(key, tmp, source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())
    os.replace(tmp, dest)


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8")


def is_file(path: str) -> bool:
    entry = stat(path)
    return bool(entry and not entry.is_dir)


def join(folder: str, *names: str) -> str:
    return posixpath.join(folder, *names) if is_remote(folder) else os.path.join(folder, *names)


def parquet_files(folder: str) -> list[str]:
    """The Parquet files directly in a folder (none where there is no folder), sorted."""
    if is_remote(folder):
        return [e.path for e in list_dir(folder) if e.path.endswith(".parquet")]
    return sorted(local_glob.glob(os.path.join(local_glob.escape(folder), "*.parquet"))) if os.path.isdir(folder) else []


def dataset(paths: list[str]) -> pads.Dataset:
    """Parquet files (all local or all remote) as one Arrow dataset, read in place."""
    if paths and is_remote(paths[0]):
        fs, _ = _split(paths[0])
        return pads.dataset([_split(p)[1] for p in paths], filesystem=fs, format="parquet")
    return pads.dataset(paths, format="parquet")


def read_parquet(path: str, columns: list[str] | None = None) -> pa.Table:
    """A whole Parquet file as a table: a remote object fetched in one read (not a ranged read per column chunk)."""
    if not is_remote(path):
        return pq.read_table(path, columns=columns)
    return pq.read_table(pa.BufferReader(read_bytes(path)), columns=columns)


def parquet_source(path: str):
    """What pq.ParquetFile reads: a local path as it is (Arrow's own local reads), a remote object opened."""
    return open_input(path) if is_remote(path) else path


def common_folder(paths: list[str]) -> str:
    """The deepest folder holding all `paths` (a file's own folder for a single file)."""
    if not paths:
        return ""
    if all(is_remote(p) for p in paths):
        folders = [p.rstrip("/") if is_dir(p) else posixpath.dirname(p) for p in paths]
        return SCHEME + posixpath.commonpath([f[len(SCHEME):] for f in folders])
    folders = [os.path.abspath(p if os.path.isdir(p) else os.path.dirname(p) or ".") for p in paths]
    return os.path.commonpath(folders)


def relative(path: str, folder: str) -> str:
    """`path` relative to `folder` (both remote, or both local)."""
    if is_remote(path):
        return posixpath.relpath(path[len(SCHEME):], folder[len(SCHEME):]) if is_remote(folder) else path
    return os.path.relpath(os.path.abspath(path), folder)


def describe_error(exc: OSError) -> str:
    """Arrow's S3 error as one short line ("AWS Error ACCESS_DENIED during HeadObject operation: …")."""
    text = " ".join(str(exc).split()).split(" (Request ID")[0].replace(": No response body.", "")
    return text[text.find("AWS Error"):][:200] if "AWS Error" in text else text[:200]


# -- writing ----------------------------------------------------------------------------------------
def exists(path: str) -> bool:
    """Whether a file or folder is at `path` (a remote folder: any object under the prefix)."""
    return stat(path) is not None if is_remote(path) else os.path.exists(path)


def make_dirs(path: str) -> None:
    """A folder and its parents (nothing to do in object storage, where a folder is a key prefix that
    exists once an object is under it)."""
    if not is_remote(path):
        os.makedirs(path, exist_ok=True)


def remove(path: str) -> None:
    """A file, or a folder with everything in it; nothing where nothing is."""
    if not is_remote(path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.unlink(path)
        return
    fs, key = _split(path)
    info = fs.get_file_info(key)
    if info.type == pafs.FileType.File:
        fs.delete_file(key)
    elif info.type == pafs.FileType.Directory:
        fs.delete_dir(key)


def empty_folder(path: str) -> None:
    """An empty folder at `path`, whatever was there removed."""
    remove(path)
    make_dirs(path)


def keep_folder(path: str) -> None:
    """Make a folder exist even with nothing in it: on a disk, the folder; in object storage, an empty
    marker object (`prefix/`) where no object is under the prefix."""
    if not is_remote(path):
        make_dirs(path)
    elif not exists(path):
        fs, key = _split(path)
        fs.create_dir(key, recursive=True)


def move(src: str, dst: str) -> None:
    """A file put under another name, replacing what was there: on a disk one rename, in object
    storage a copy and a delete."""
    if not is_remote(src):
        os.replace(src, dst)
        return
    fs, key = _split(src)
    fs.move(key, _split(dst)[1])


class Output:
    """A file to write through a local path (`local`), appearing under `path` only by `commit()`: on
    a disk a temporary name beside it (`path.tmp`) renamed, in object storage a spool file uploaded.
    `discard()` (or leaving the `with` block by an exception) leaves nothing under `path`."""

    def __init__(self, path: str):
        self.path = path
        if is_remote(path):
            fd, self.local = tempfile.mkstemp(prefix="codecorpus-", suffix="-" + posixpath.basename(path))
            os.close(fd)
        else:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            self.local = path + ".tmp"

    def commit(self) -> None:
        if not is_remote(self.path):
            os.replace(self.local, self.path)
            return
        fs, key = _split(self.path)
        try:
            with open(self.local, "rb") as src, fs.open_output_stream(key) as dst:
                shutil.copyfileobj(src, dst, 8 << 20)
        finally:
            os.unlink(self.local)

    def discard(self) -> None:
        try:
            os.unlink(self.local)
        except OSError:
            pass

    def __enter__(self) -> str:
        return self.local

    def __exit__(self, kind, exc, tb) -> None:
        self.commit() if kind is None else self.discard()


def write_bytes(path: str, data: bytes) -> None:
    """A whole file written (it appears complete or not at all)."""
    with Output(path) as local, open(local, "wb") as fh:
        fh.write(data)


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def basename(path: str) -> str:
    return posixpath.basename(path.rstrip("/")) if is_remote(path) else os.path.basename(path)
