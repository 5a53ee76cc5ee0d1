"""`codecorpus export RUN --format mindrecord`: the shards in mindformers' pretraining schema.

mindformers reads MindRecord files with one int32 column `input_ids` of length seq_length + 1.
Rows are streamed shard by shard, in the manifest's order, so memory stays flat.
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from codecorpus.pipeline.errors import BuildError

ROWS_PER_WRITE = 1024


def export_mindrecord(run: str | Path, out: str | Path, files: int = 1) -> dict:
    from mindspore.mindrecord import FileWriter

    run, out = Path(run), Path(out)
    manifest_path = run / "manifest.json"
    if not manifest_path.is_file():
        raise BuildError(f"{run}: no manifest.json — not a finished codecorpus build")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    out.mkdir(parents=True, exist_ok=True)
    target = out / "corpus.mindrecord"
    writer = FileWriter(str(target), shard_num=files, overwrite=True)
    writer.add_schema({"input_ids": {"type": "int32", "shape": [manifest["row_length"]]}}, "codecorpus pretraining rows")
    rows = 0
    for entry in manifest["shards"]:
        with pa.memory_map(str(run / "shards" / entry["shard"])) as source:
            for batch in pa.ipc.open_stream(source):
                ids = batch.column("input_ids").values.to_numpy().astype("int32").reshape(-1, manifest["row_length"])
                for start in range(0, len(ids), ROWS_PER_WRITE):
                    writer.write_raw_data([{"input_ids": row} for row in ids[start : start + ROWS_PER_WRITE]])
                rows += len(ids)
    writer.commit()
    written = sorted(str(p) for p in out.glob("corpus.mindrecord*") if not p.name.endswith(".db"))
    return {"rows": rows, "files": written}
