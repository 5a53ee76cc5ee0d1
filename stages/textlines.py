"""Lines of a `.jsonl`, `.jsonl.gz` or `.jsonl.zst` (also `.json.gz`) file, local or in object storage, decompressed as a stream:
memory stays flat however large the file is (one chunk and one line at a time)."""
from __future__ import annotations

import gzip
import zlib
from typing import Iterator

import zstandard

from codecorpus import storage

READ_CHUNK = 1 << 20


class TruncatedInput(EOFError):
    """The compressed stream ended before its last frame did, or its bytes are corrupt."""


def _zstd_chunks(fh) -> Iterator[bytes]:
    # max_window_size: the Pile's shards were written with long-distance matching windows
    dctx = zstandard.ZstdDecompressor(max_window_size=1 << 31)
    dobj, pending = dctx.decompressobj(), False
    while raw := fh.read(READ_CHUNK):
        while raw:
            try:
                out = dobj.decompress(raw)
            except zstandard.ZstdError as exc:
                raise TruncatedInput(f"corrupt zstd data: {exc}") from None
            pending = not dobj.eof
            if out:
                yield out
            raw = dobj.unused_data if dobj.eof else b""
            if dobj.eof:                                  # several frames, one after another
                dobj, pending = dctx.decompressobj(), bool(raw)
    if pending:
        raise TruncatedInput("the zstd stream ends inside a frame")


def _gzip_chunks(fh) -> Iterator[bytes]:
    try:
        with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
            while chunk := gz.read(READ_CHUNK):
                yield chunk
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise TruncatedInput(f"corrupt or truncated gzip data: {exc}") from None


def _plain_chunks(fh) -> Iterator[bytes]:
    while chunk := fh.read(READ_CHUNK):
        yield chunk


def iter_lines(path: str) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, line) for each non-empty line. A truncated or corrupt stream raises
    TruncatedInput after the complete lines before the damage (a partial last line is not yielded)."""
    chunks = _zstd_chunks if path.endswith(".zst") else _gzip_chunks if path.endswith(".gz") else _plain_chunks
    number, tail = 0, b""
    with storage.open_input(path) as fh:
        for chunk in chunks(fh):
            lines = (tail + chunk).split(b"\n")
            tail = lines.pop()
            for line in lines:
                number += 1
                if line.strip():
                    yield number, line
    if tail.strip():
        yield number + 1, tail
