"""Pack token ids into rows and write them as Arrow shards (CodeGeeX: 2,048-token rows, EOD between documents).

Documents (a file, its ids ending with EOD; or a repository document: header, files, EOD — made
by stages.encode) are packed back to back into rows of seq_length + 1 ids (inputs and labels
shifted by one); a long document continues into the next row. Documents are spread over pack
groups by a seeded hash of their key (a file's id) and ordered inside a group by another, so the
shards are the same bytes whatever the number of workers or blocks. Each group's
last row is the only one padded (with EOD). A shard is an Arrow IPC stream with one column,
`input_ids`, a fixed-size list of uint16 (int32 when the vocabulary exceeds 65,536 ids).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

ROWS_PER_BATCH = 1024


def token_dtype(vocab_size: int) -> pa.DataType:
    return pa.uint16() if vocab_size <= 65_536 else pa.int32()


def shard_schema(row_length: int, vocab_size: int) -> pa.Schema:
    return pa.schema([("input_ids", pa.list_(token_dtype(vocab_size), row_length))])


def group_count(total_tokens: int, vocab_size: int, target_bytes: int) -> int:
    """How many pack groups (shards, when none is empty) `total_tokens` make at `target_bytes` a shard."""
    bytes_per_id = 2 if vocab_size <= 65_536 else 4
    return max(1, -(-total_tokens * bytes_per_id // target_bytes))


def seeded_hash(seed: int, key: str) -> int:
    return xxhash.xxh64_intdigest(key.encode(), seed=seed)


def add_pack_keys(batch: pa.Table, seed: int, num_groups: int, key: str = "id") -> pa.Table:
    """`pack_group`: which group (and so shard) a document goes to; `order`: its place within it.
    `key` names the document (a file's id, or a repository document's key)."""
    keys = batch.column(key).to_pylist()
    groups = [seeded_hash(seed, i) % num_groups for i in keys]
    order = [seeded_hash(seed + 1, i) - (1 << 63) for i in keys]
    return batch.append_column("pack_group", pa.array(groups, pa.int64())).append_column("order", pa.array(order, pa.int64()))


def document_ids(group: pa.Table, eod_id: int) -> tuple[list[np.ndarray], np.ndarray]:
    """A sorted group's documents as id arrays, and the ids each file put into them: a repository
    document's first file brings its header, its last the EOD (a file document's ids end with EOD)."""
    tokens = group.column("tokens").to_numpy(zero_copy_only=False)
    headers = group.column("header").to_numpy(zero_copy_only=False)
    first, last = (group.column(c).to_numpy(zero_copy_only=False) for c in ("first", "last"))
    keys = group.column("doc_key").to_pylist()
    eod = np.array([eod_id], np.int32)
    docs, pieces, per_file = [], [], np.zeros(len(tokens), np.int64)
    for i, ids in enumerate(tokens):
        parts = ([headers[i]] if first[i] else []) + [ids] + ([eod] if last[i] else [])
        pieces += parts
        per_file[i] = sum(len(p) for p in parts)
        if i + 1 == len(tokens) or keys[i + 1] != keys[i]:
            docs.append(np.concatenate(pieces).astype(np.int32))
            pieces = []
    return docs, per_file


def pack_rows(flat: np.ndarray, row_length: int, eod_id: int) -> tuple[np.ndarray, int]:
    """Cut the files' ids, back to back, into rows of `row_length`; returns (rows, padding ids in the last row)."""
    padding = (-len(flat)) % row_length
    flat = np.concatenate([flat, np.full(padding, eod_id, dtype=flat.dtype)])
    return flat.reshape(-1, row_length), padding


def file_rows(tokens: np.ndarray, row_length: int, stride: int, eod_id: int) -> tuple[np.ndarray, int]:
    """One file in rows of its own (CodeGeeX's PyTorch path): windows of `row_length` ids every
    `stride` ids, the last one padded with EOD. Returns (rows, padding ids)."""
    starts = list(range(0, max(1, len(tokens) - row_length + stride), stride)) or [0]
    rows = np.full((len(starts), row_length), eod_id, dtype=tokens.dtype)
    for i, start in enumerate(starts):
        window = tokens[start : start + row_length]
        rows[i, : len(window)] = window
    return rows, int(rows.size - sum(len(tokens[s : s + row_length]) for s in starts))


def write_shard(path: Path, rows: np.ndarray, schema: pa.Schema) -> str:
    """Write rows as an Arrow IPC stream; returns the file's sha256."""
    value_type = schema.field("input_ids").type.value_type
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for start in range(0, len(rows), ROWS_PER_BATCH):
            chunk = rows[start : start + ROWS_PER_BATCH]
            values = pa.array(chunk.reshape(-1), type=value_type)
            column = pa.FixedSizeListArray.from_arrays(values, rows.shape[1])
            writer.write_batch(pa.record_batch([column], schema=schema))
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pack_group(group: pa.Table, out_dir: str, row_length: int, vocab_size: int, eod_id: int,
               pack: bool = True, stride: int | None = None) -> pa.Table:
    """Pack one group's documents, in their seeded order, into one shard; returns its manifest entry.
    A group of file documents has one row per file; repository documents (`doc_key`, `position`,
    `first`, `last`, `header`) a row per file, in document order."""
    documents = "doc_key" in group.column_names
    sort = [("order", "ascending"), ("doc_key", "ascending"), ("position", "ascending")] if documents else [("order", "ascending")]
    group = group.take(pc.sort_indices(group, sort + [("id", "ascending")]))
    group_id = group.column("pack_group")[0].as_py()
    if documents:
        per_doc, per_file = document_ids(group, eod_id)
    else:
        per_doc, per_file = None, group.column("num_tokens").to_numpy()
    if pack:
        # int32, the documents back to back in order
        flat = np.concatenate(per_doc) if documents else pc.list_flatten(group.column("tokens")).to_numpy()
        rows, padding = pack_rows(flat, row_length, eod_id)
    else:
        docs = per_doc if documents else group.column("tokens").to_numpy(zero_copy_only=False)
        per_file_rows = [file_rows(np.asarray(t, np.int32), row_length, stride or row_length - 1, eod_id) for t in docs]
        rows = np.concatenate([r for r, _ in per_file_rows]) if per_file_rows else np.empty((0, row_length), np.int32)
        padding = sum(p for _, p in per_file_rows)
    name = f"shard-{group_id:05d}.arrow"
    sha = write_shard(Path(out_dir) / name, rows, shard_schema(row_length, vocab_size))
    by_lang: dict[str, int] = {}
    by_source: dict[str, int] = {}
    for lang, src, n in zip(group.column("language").to_pylist(), group.column("source").to_pylist(), per_file.tolist()):
        by_lang[lang] = by_lang.get(lang, 0) + n
        by_source[src] = by_source.get(src, 0) + n
    return pa.table({
        "shard": [name], "rows": [len(rows)], "files": [group.num_rows], "tokens": [int(per_file.sum())],
        "padding": [padding], "sha256": [sha],
        "tokens_by_language": [json.dumps(by_lang, sort_keys=True)], "tokens_by_source": [json.dumps(by_source, sort_keys=True)],
    })


def read_shard(path: str | Path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_stream(source).read_all()


def shard_documents(path: str | Path, eod_id: int) -> list[np.ndarray]:
    """A packed shard's documents in order, without their EOD: its rows back to back, split at EOD
    (the last row's padding makes no document). To check a shard's content against the records."""
    column = read_shard(path).column("input_ids")
    flat = pc.list_flatten(column).to_numpy() if column.num_chunks else np.empty(0, np.int32)
    ends = np.flatnonzero(flat == eod_id)
    starts = np.r_[0, ends[:-1] + 1]
    return [flat[a:b] for a, b in zip(starts, ends) if b > a]
