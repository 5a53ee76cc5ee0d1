"""Read a run's Arrow IPC shards as a Ray Dataset (Ray Data has no Arrow IPC stream reader of its own).

    import ray
    from codecorpus.pipeline.shards import read_shards
    ds = read_shards("runs/demo")          # one tensor column, input_ids: rows of seq_length + 1 ids
    for batch in ds.iter_batches(batch_size=8, batch_format="numpy"): ...

Shards are read record batch by record batch, so a worker never holds a whole shard; set
ray.data.DataContext.get_current().execution_options.preserve_order = True to get rows in manifest order.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pyarrow as pa
from ray.data import Dataset, read_datasource
from ray.data.datasource import FileBasedDatasource
from ray.data.extensions import ArrowTensorArray


class ArrowStreamDatasource(FileBasedDatasource):
    """Arrow IPC *stream* files (the shard format), yielded one record batch at a time."""

    _FILE_EXTENSIONS = ["arrow"]

    def _read_stream(self, f: pa.NativeFile, path: str) -> Iterator[pa.Table]:
        for batch in pa.ipc.open_stream(f):
            column = batch.column("input_ids")   # fixed-size lists → a tensor column: numpy batches are 2-D
            rows = column.flatten().to_numpy().reshape(len(column), column.type.list_size)
            yield pa.table({"input_ids": ArrowTensorArray.from_numpy(rows)})


def shard_paths(run_dir: str | Path) -> list[str]:
    """The shards a finished build lists in its manifest, in order."""
    run_dir = Path(run_dir)
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.exists():
        raise FileNotFoundError(f"{run_dir} has no manifest.json: not a finished codecorpus build")
    manifest = json.loads(manifest_path.read_text())
    return [str(run_dir / "shards" / entry["shard"]) for entry in manifest["shards"]]


def read_shards(run_dir: str | Path, **read_args) -> Dataset:
    return read_datasource(ArrowStreamDatasource(shard_paths(run_dir)), **read_args)
