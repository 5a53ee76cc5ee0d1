"""MinHash signatures of a whole batch of files at once, computed on the bytes of an Arrow text column.

Shingles are n-grams of code tokens: runs of word bytes (ASCII letters, digits, `_` and every
non-ASCII byte) and single punctuation bytes; whitespace only separates, so two files that differ
only in whitespace have the same shingles. Each shingle gets one 64-bit hash, and the signature is
one-permutation MinHash with optimal densification (Shrivastava, ICML 2017): the hash picks one of
`num_perm` bins, each bin keeps its smallest value, and an empty bin takes the value of the first
filled bin along a fixed pseudo-random probe sequence. Two signatures agree in a bin with probability
equal to the files' Jaccard similarity, as with `num_perm` independent MinHashes, but each shingle
costs one hash instead of `num_perm` — no Python runs per file or per token: everything is numpy over
the batch's UTF-8 buffer.
"""
from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

CHUNK_BYTES = 8 << 20          # bytes of text handled at once (bounds the per-byte work arrays)
_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_EMPTY = np.uint64(1 << 32)    # a bin no shingle fell into (values are 32-bit)

_CLASS = np.full(256, 2, dtype=np.uint8)                      # 2: punctuation, a token of its own
_CLASS[[ord(c) for c in " \t\n\r\x0b\x0c"]] = 0               # 0: whitespace
for _lo, _hi in ((ord("0"), ord("9")), (ord("A"), ord("Z")), (ord("a"), ord("z")), (0x80, 0xFF)):
    _CLASS[_lo:_hi + 1] = 1                                   # 1: word byte
_CLASS[ord("_")] = 1
_TOKEN_POSITIONS = 32
_BYTE_TABLE_FLAT = np.random.default_rng(0x5EED).integers(0, 2**63, size=_TOKEN_POSITIONS * 256, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


def _mix(h: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser (wrapping uint64 arithmetic)."""
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint64(30))
        h = h * np.uint64(0xBF58476D1CE4E5B9)
        h = h ^ (h >> np.uint64(27))
        h = h * np.uint64(0x94D049BB133111EB)
        return h ^ (h >> np.uint64(31))


def _utf8(texts: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(bytes, offsets) of a string column: numpy views of its Arrow buffers (nulls as empty strings)."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks != 1 else texts.chunk(0)
    texts = pc.fill_null(texts.cast(pa.large_string()), "")
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int64)[texts.offset: texts.offset + len(texts) + 1]
    data = texts.buffers()[2]
    return (np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)), offsets


def _chunks(offsets: np.ndarray):
    """Ranges of files [i, j) whose text totals about CHUNK_BYTES (a larger file alone)."""
    i, n = 0, len(offsets) - 1
    while i < n:
        j = int(np.searchsorted(offsets, offsets[i] + CHUNK_BYTES, side="right")) - 1
        j = min(max(j, i + 1), n)
        yield i, j
        i = j


_LOWER = np.arange(256, dtype=np.uint8)
_LOWER[ord("A"): ord("Z") + 1] += 32
_FOLDED_TABLE_FLAT = _BYTE_TABLE_FLAT.reshape(_TOKEN_POSITIONS, 256)[:, _LOWER].reshape(-1)


def _token_hashes(data: np.ndarray, starts: np.ndarray, lower: bool = False):
    """Each code token's 64-bit hash and the index (within `starts`) of the file it belongs to; with
    `lower`, also each token's hash with ASCII letters folded to lower case: (hashes, owner, folded)."""
    lo = int(starts[0])
    b = data[lo: int(starts[-1])]
    cls = _CLASS[b]
    keep = np.flatnonzero(cls)                       # the bytes of tokens (not whitespace), in order
    if len(keep) == 0:
        empty = np.zeros(0, np.uint64)
        return (empty, np.zeros(0, np.int64), empty) if lower else (empty, np.zeros(0, np.int64))
    kept_bytes, kept_class = b[keep], cls[keep]
    file_starts = (starts[:-1] - lo).astype(np.int32)
    # a token starts at punctuation, at a word byte after a non-word byte (or a gap), or at a file's start
    word = kept_class == 1
    new_token = np.ones(len(keep), dtype=bool)
    new_token[1:] = ~(word[1:] & word[:-1] & (keep[1:] == keep[:-1] + 1))
    first = np.zeros(len(b) + 1, dtype=bool)
    first[file_starts] = True
    new_token |= first[keep]
    token_start = np.flatnonzero(new_token).astype(np.int32)
    index = np.arange(len(keep), dtype=np.int32)
    position = index - np.maximum.accumulate(np.where(new_token, index, 0))
    np.minimum(position, _TOKEN_POSITIONS - 1, out=position)
    slot = position * 256 + kept_bytes
    with np.errstate(over="ignore"):
        hashes = _mix(np.add.reduceat(_BYTE_TABLE_FLAT[slot], token_start))
        folded = _mix(np.add.reduceat(_FOLDED_TABLE_FLAT[slot], token_start)) if lower else None
    owner = np.searchsorted(file_starts, keep[token_start], side="right") - 1
    return (hashes, owner, folded) if lower else (hashes, owner)


def _shingle_hashes(tokens: np.ndarray, owner: np.ndarray, files: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of the n-grams of consecutive tokens of one file, and their file (a file with fewer
    than n tokens has one shingle of them all)."""
    counts = np.bincount(owner, minlength=files)
    with np.errstate(over="ignore"):
        if len(tokens) >= n:
            m = len(tokens) - n + 1
            h = np.zeros(m, dtype=np.uint64)
            for j in range(n):
                h = h * np.uint64(0x9E3779B97F4A7C15) + tokens[j: j + m]
            same_file = owner[:m] == owner[n - 1:]
            hashes, where = h[same_file], owner[:m][same_file]
        else:
            hashes, where = np.zeros(0, np.uint64), np.zeros(0, np.int64)
        short = np.flatnonzero((counts > 0) & (counts < n))
        if len(short):
            first = np.r_[0, np.cumsum(counts)[:-1]]
            extra = []
            for f in short:
                h = np.uint64(0)
                for t in tokens[first[f]: first[f] + counts[f]]:
                    h = h * np.uint64(0x9E3779B97F4A7C15) + t
                extra.append(h)
            hashes, where = np.r_[hashes, np.array(extra, np.uint64)], np.r_[where, short]
        return _mix(hashes ^ np.uint64(seed * 0x632BE59BD9B4E019 % 2**64)), where


@functools.lru_cache(maxsize=8)
def _probes(num_perm: int, seed: int, length: int) -> np.ndarray:
    """For each bin, the bins an empty one borrows from, in order (the same for every file)."""
    grid = np.arange(num_perm, dtype=np.uint64)[:, None] * np.uint64(1 << 24) + np.arange(length, dtype=np.uint64)[None, :]
    return (_mix(grid + np.uint64(seed * 0xD6E8FEB86659FD93 % 2**64)) % np.uint64(num_perm)).astype(np.int64)


def _densify(sig: np.ndarray, seed: int) -> None:
    filled = sig != _EMPTY
    rows, bins = np.nonzero(~filled & filled.any(axis=1)[:, None])
    length = 64
    while len(rows):
        probes = _probes(sig.shape[1], seed, length)
        for t in range(length):
            if not len(rows):
                break
            cand = probes[bins, t]
            ok = filled[rows, cand]
            sig[rows[ok], bins[ok]] = sig[rows[ok], cand[ok]]
            rows, bins = rows[~ok], bins[~ok]
        length *= 8   # very few filled bins: a longer probe sequence (the first ones are the same)


def signatures(texts: pa.Array | pa.ChunkedArray | list[str], num_perm: int, ngram: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(signatures as a (files, num_perm) uint32 array, which files have any shingle at all)."""
    if isinstance(texts, list):
        texts = pa.array(texts, pa.large_string())
    data, offsets = _utf8(texts)
    files = len(offsets) - 1
    sig = np.full((files, num_perm), _EMPTY, dtype=np.uint64)
    for i, j in _chunks(offsets):
        if offsets[j] == offsets[i]:
            continue
        tokens, owner = _token_hashes(data, offsets[i: j + 1])
        hashes, where = _shingle_hashes(tokens, owner, j - i, ngram, seed)
        flat = sig[i:j].reshape(-1)
        np.minimum.at(flat, (where + 0) * num_perm + (hashes >> np.uint64(32)).astype(np.int64) % num_perm,
                      hashes & np.uint64(0xFFFFFFFF))
        sig[i:j] = flat.reshape(j - i, num_perm)
    present = (sig != _EMPTY).any(axis=1)
    _densify(sig, seed)
    return sig.astype(np.uint32), present


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(files, bands) int64 bucket keys: a hash of each band's `rows` values and the band's number."""
    with np.errstate(over="ignore"):
        keys = np.broadcast_to(_mix(np.arange(bands, dtype=np.uint64) + np.uint64(1)), (len(sig), bands)).copy()
        for r in range(rows):
            keys = _mix(keys * np.uint64(0x9E3779B97F4A7C15) + sig[:, r: bands * rows: rows].astype(np.uint64))
    return keys.view(np.int64)


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> float | np.ndarray:
    """The share of bins in which two signatures (or rows of two arrays) agree."""
    return np.mean(a == b, axis=-1)


def shingle_sets(texts: pa.Array | pa.ChunkedArray | list[str], ngram: int, seed: int = 0) -> list[np.ndarray]:
    """Each file's distinct shingle hashes, sorted: what exact Jaccard is computed on."""
    if isinstance(texts, list):
        texts = pa.array(texts, pa.large_string())
    data, offsets = _utf8(texts)
    out: list[np.ndarray] = []
    for i, j in _chunks(offsets):
        if offsets[j] == offsets[i]:
            out += [np.zeros(0, np.uint64)] * (j - i)
            continue
        tokens, owner = _token_hashes(data, offsets[i: j + 1])
        hashes, where = _shingle_hashes(tokens, owner, j - i, ngram, seed)
        order = np.lexsort((hashes, where))
        hashes, where = hashes[order], where[order]
        bounds = np.searchsorted(where, np.arange(j - i + 1))
        out += [np.unique(hashes[bounds[k]: bounds[k + 1]]) for k in range(j - i)]
    return out


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter) if len(a) + len(b) else 1.0
