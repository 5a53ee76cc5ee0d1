"""Exact deduplication: one file kept per hash of its whitespace-normalised content.

The survivor of a group is the record with the smallest `rank_key` (source priority, repository,
path) — a fixed rule, never arrival order — so the result does not depend on workers or blocks.
"""
from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from stages.records import mark

_WHITESPACE = re.compile(r"\s+")


def normalised_hash(text: str) -> str:
    return xxhash.xxh3_128_hexdigest(_WHITESPACE.sub(" ", text).strip().encode("utf-8"))


def add_content_hash(batch: pa.Table) -> pa.Table:
    hashes = [normalised_hash(t) for t in batch.column("text").to_pylist()]
    return batch.append_column("content_hash", pa.array(hashes, pa.string()))


def keep_first_of_group(group: pa.Table) -> pa.Table:
    """For the records sharing one content hash: keep the smallest rank_key, drop the rest."""
    group = group.take(pc.sort_indices(group, [("rank_key", "ascending"), ("id", "ascending")]))
    reasons = [None] + ["exact_duplicate"] * (group.num_rows - 1)
    return mark(group, reasons).drop_columns(["content_hash"])
