"""Exact deduplication: one file kept per hash of its whitespace-normalised content.

The survivor of a group is the record with the smallest `rank_key` (source priority, repository,
path) — a fixed rule, never arrival order — so the result does not depend on workers or blocks.
"""
from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from codecorpus.stages.groups import sorted_runs
from codecorpus.stages.records import mark

_WHITESPACE = re.compile(r"\s+")
# Python's whitespace (str.isspace), in RE2 syntax: the same runs as `_WHITESPACE` finds
_WHITESPACE_RE2 = r"[\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]+"


def normalised_hash(text: str) -> str:
    return xxhash.xxh3_128_hexdigest(_WHITESPACE.sub(" ", text).strip().encode("utf-8"))


def add_content_hash(batch: pa.Table) -> pa.Table:
    """`normalised_hash` of every text, the normalisation done in Arrow for the whole batch."""
    texts = pc.fill_null(batch.column("text").combine_chunks().cast(pa.large_string()), "")
    normal = pc.utf8_trim(pc.replace_substring_regex(texts, _WHITESPACE_RE2, " "), " ")
    offsets = np.frombuffer(normal.buffers()[1], dtype=np.int64)[normal.offset: normal.offset + len(normal) + 1]
    data = memoryview(normal.buffers()[2] or b"")
    hashes = [xxhash.xxh3_128_hexdigest(data[a:b]) for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
    return batch.append_column("content_hash", pa.array(hashes, pa.string()))


def keep_first_of_group(records: pa.Table) -> pa.Table:
    """Records holding every copy of their content hashes (a hash partition): in each group of equal
    hashes keep the smallest (rank_key, id), mark the rest exact duplicates."""
    records, starts, _ = sorted_runs(records, "content_hash", ["rank_key", "id"])
    reasons = pa.array(np.where(starts, None, "exact_duplicate"), pa.string())
    return mark(records, reasons).drop_columns(["content_hash"])


def keep_first_against_base(keys: pa.Table, base: pa.Table) -> pa.Table:
    """`keep_first_of_group` for an increment (pipeline.increment): records whose content hash a
    base file has (`base`: the base's hashes of this partition) are marked `duplicate_of_base` — the
    base's copy is in its shards already — and the others keep the first of each group."""
    in_base = pc.is_in(keys.column("content_hash"), value_set=base.column("content_hash").combine_chunks())
    copies = keys.filter(in_base)
    copies = mark(copies, pa.array(["duplicate_of_base"] * copies.num_rows, pa.string())).drop_columns(["content_hash"])
    return pa.concat_tables([keep_first_of_group(keys.filter(pc.invert(in_base))), copies])
