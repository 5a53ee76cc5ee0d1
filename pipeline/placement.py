"""Where a tokenized file goes in the shards: its pack group (a seeded hash of its key picks the
shard) and its order there — the key is the file's id, or, with repository documents, its
document's, and then its position in the document (stages.pack). The build packs by these keys
(pipeline.tokens) and `codecorpus remove` recomputes them to find the shards that held removed
files; kept free of Ray, which `remove` runs without.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from codecorpus import storage
from codecorpus.stages import pack as packing


def document_key(source: str, repo: str, document: int) -> str:
    """The key that places a repository document in a shard (by a seeded hash) and orders it."""
    return f"{source}\0{repo}\0{document}"


def document_keys(tokens: pa.Table, documents_dir: str) -> pa.Table:
    """The token rows of one 08_tokenize file with their document (`doc_key`), `position`, whether
    they open it (`first`, carrying its header) and close it (`last`, followed by EOD). A file of a
    source without repositories is a document of its own (its ids already end with EOD)."""
    n = tokens.num_rows
    doc_key, position = tokens.column("id"), pa.array(np.zeros(n, np.int32))
    first, last = pa.array(np.zeros(n, bool)), pa.array(np.zeros(n, bool))
    if n:
        path = storage.join(documents_dir, f"p-{tokens.column('part')[0].as_py():05d}.parquet")
        if storage.is_file(path):
            docs = storage.read_parquet(path, ["id", "source", "repo", "document", "position", "last"])
            at = pc.index_in(tokens.column("id"), value_set=docs.column("id"))
            found = pc.is_valid(at)
            columns = (docs.column(c).to_pylist() for c in ("source", "repo", "document"))
            keys = pa.array([document_key(s, r, d) for s, r, d in zip(*columns)], pa.string())
            doc_key = pc.if_else(found, pc.take(keys, at), doc_key)
            position = pc.fill_null(pc.take(docs.column("position"), at), 0)
            first = pc.and_(found, pc.equal(position, 0))
            last = pc.fill_null(pc.take(docs.column("last"), at), False)
    return (tokens.append_column("doc_key", doc_key).append_column("position", position)
            .append_column("first", first).append_column("last", last))


def pack_keys(tokens: pa.Table, seed: int, num_groups: int, documents_dir: str | None = None) -> pa.Table:
    """The kept token rows of one 08_tokenize file with their pack group and order (stages.pack), by
    file id, or (`documents_dir`, rows carrying their file's index as `part`) by repository document."""
    tokens = tokens.filter(pc.equal(tokens.column("status"), "kept")).drop_columns(["status"])
    if documents_dir is None:
        return packing.add_pack_keys(tokens, seed=seed, num_groups=num_groups)
    tokens = document_keys(tokens, documents_dir).drop_columns(["part"])
    return packing.add_pack_keys(tokens, seed=seed, num_groups=num_groups, key="doc_key")
