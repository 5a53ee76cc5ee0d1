"""Exact deduplication: one file kept per hash of its whitespace-normalised content.

The survivor of a group is the record with the smallest `rank_key` (source priority, repository,
path) — a fixed rule, never arrival order — so the result does not depend on workers or blocks.
"""
from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import xxhash

from stages.groups import sorted_runs
from stages.records import mark

_WHITESPACE = re.compile(r"\s+")


def normalised_hash(text: str) -> str:
    return xxhash.xxh3_128_hexdigest(_WHITESPACE.sub(" ", text).strip().encode("utf-8"))


def add_content_hash(batch: pa.Table) -> pa.Table:
    hashes = [normalised_hash(t) for t in batch.column("text").to_pylist()]
    return batch.append_column("content_hash", pa.array(hashes, pa.string()))


def keep_first_of_group(records: pa.Table) -> pa.Table:
    """Records holding every copy of their content hashes (a hash partition): in each group of equal
    hashes keep the smallest (rank_key, id), mark the rest exact duplicates."""
    records, starts, _ = sorted_runs(records, "content_hash", ["rank_key", "id"])
    reasons = pa.array(np.where(starts, None, "exact_duplicate"), pa.string())
    return mark(records, reasons).drop_columns(["content_hash"])
