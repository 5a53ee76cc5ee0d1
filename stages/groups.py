"""Groups of rows inside one Arrow table, found vectorised.

A hash shuffle puts every row of a key into one block; the stages then handle the whole block at
once: sort it so that each group is a run, and give every row the index of its group's first row.
(Ray's `map_groups` calls Python once per group and hands back one Arrow chunk per group: slow, and a
table of millions of tiny chunks — and a Parquet file of as many row groups — costs gigabytes to read.)
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def sorted_runs(table: pa.Table, key: str, order: list[str]) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """(the table sorted by key then `order`, True where a group starts, each row's group-start index)."""
    table = table.sort_by([(c, "ascending") for c in [key, *order]]).combine_chunks()
    n = table.num_rows
    starts = np.ones(n, dtype=bool)
    if n > 1:
        keys = table.column(key)
        starts[1:] = pc.not_equal(keys.slice(1), keys.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    first = np.maximum.accumulate(np.where(starts, np.arange(n), 0)) if n else np.zeros(0, dtype=np.int64)
    return table, starts, first
