"""Arrow shards → training samples, with no copy of the shards in memory.

Each shard (an Arrow IPC stream, column `input_ids`, a fixed-size list of row_length ids) is
memory-mapped and viewed as a (rows, row_length) numpy array. A row of seq + 1 ids yields
`(row_length - 1) / (model_seq)` windows of model_seq + 1 ids, so a small model can train on
long rows. For each window the reader also gives position ids that restart after every EOD,
document ids (attention never crosses a document) and the loss mask (no loss where the input
token is EOD) — CodeGeeX's "reset position ids and attention at every EOD".
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from codecorpus import storage
from codecorpus.trainer.errors import TrainerError


def read_manifest(run: str | Path) -> dict:
    path = Path(run) / "manifest.json"
    if not path.is_file():
        raise TrainerError(f"{run}: no manifest.json — not a finished codecorpus build")
    return json.loads(path.read_text(encoding="utf-8"))


def cache_root() -> Path:
    """Where runs in object storage are copied: $CODECORPUS_CACHE, else ~/.cache/codecorpus."""
    return Path(os.environ.get("CODECORPUS_CACHE") or Path.home() / ".cache" / "codecorpus")


def local_run(run: str, echo=print) -> str:
    """A run in object storage (`s3://bucket/prefix/run`) copied to the local cache: shards are memory-
    mapped, so the trainer reads local files. Each shard is fetched unless a whole copy with the
    manifest's sha256 is already there, and checked after; the manifest (its bytes as they are) is
    written last, so a copy interrupted midway is completed by the next call. A local run is returned
    as it is. (An increment's chain names its earlier runs by the paths they were built at: those must
    be readable here.)"""
    if not storage.is_remote(run):
        return run
    run = run.rstrip("/")
    root = cache_root() / "runs" / run[len(storage.SCHEME):]
    try:
        raw = storage.read_bytes(f"{run}/manifest.json")
    except FileNotFoundError:
        raise TrainerError(f"{run}: no manifest.json — not a finished codecorpus build") from None
    except OSError as exc:
        raise TrainerError(f"{run}: cannot read: {storage.describe_error(exc)} (endpoint: {storage.s3_settings()[0] or 'AWS'})") from None
    manifest = json.loads(raw)
    (root / "shards").mkdir(parents=True, exist_ok=True)
    fetched = 0
    for entry in manifest["shards"]:
        path = root / "shards" / entry["shard"]
        if path.is_file() and _sha256(path) == entry["sha256"]:
            continue
        storage.download(f"{run}/shards/{entry['shard']}", str(path))
        if _sha256(path) != entry["sha256"]:
            raise TrainerError(f"{run}/shards/{entry['shard']}: not the shard the manifest lists (sha256 differs)")
        fetched += 1
    (root / "tokenizer").mkdir(exist_ok=True)
    storage.download(f"{run}/tokenizer/tokenizer.json", str(root / "tokenizer" / "tokenizer.json"))
    (root / "manifest.json").write_bytes(raw)
    echo(f"data: {run} cached in {root} ({fetched} of {len(manifest['shards'])} shard(s) fetched, sha256 checked)")
    return str(root)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def _map_shard(path: Path, row_length: int) -> np.ndarray:
    """A shard as a (rows, row_length) array over its memory map; a shard that is not a whole Arrow
    stream of such rows (cut short, another file) is one line naming it."""
    try:
        table = pa.ipc.open_stream(pa.memory_map(str(path))).read_all()
        column = table.column("input_ids").combine_chunks()
    except (OSError, KeyError, pa.ArrowException) as exc:
        raise TrainerError(f"{path}: not a whole shard of this run (truncated or another file: "
                           f"{str(exc).splitlines()[0][:200]}); rebuild the run or restore the file") from None
    if not pa.types.is_fixed_size_list(column.type) or column.type.list_size != row_length:
        raise TrainerError(f"{path}: rows of type {column.type}, the manifest says {row_length} ids a row")
    return column.values.to_numpy(zero_copy_only=True).reshape(-1, row_length)


def shard_list(run: str | Path, manifest: dict) -> list[tuple[Path, dict]]:
    """The shards a run trains on, each (path, its manifest entry): for an increment (`codecorpus
    build --base`), those of every run of its chain, oldest first, then its own — each earlier run
    checked to be the one the increment was built on (its manifest's sha256)."""
    shards = []
    for earlier in manifest.get("base", {}).get("chain", []):
        root = Path(earlier["path"])
        data = (root / "manifest.json").read_bytes() if (root / "manifest.json").is_file() else b""
        if hashlib.sha256(data).hexdigest() != earlier["manifest_sha256"]:
            raise TrainerError(f"{run}: an increment of {root}, which is gone or changed since; its shards are part of "
                               f"this corpus")
        theirs = json.loads(data)
        if theirs["row_length"] != manifest["row_length"]:
            raise TrainerError(f"{root}: rows of {theirs['row_length']} ids, {run} has {manifest['row_length']}")
        shards += [(root / "shards" / e["shard"], e) for e in theirs["shards"]]
    return shards + [(Path(run) / "shards" / e["shard"], e) for e in manifest["shards"]]


def check_shards(run: str | Path, manifest: dict) -> list[tuple[Path, dict]]:
    """Every shard the run trains on is there, whole and the same bytes (its sha256): what
    `codecorpus train --dry-run` checks before a job is started. Returns them (shard_list)."""
    shards = shard_list(run, manifest)
    for path, entry in shards:
        if not path.is_file():
            raise TrainerError(f"{path}: listed in the manifest but missing")
        rows = len(_map_shard(path, manifest["row_length"]))
        if rows != entry["rows"]:
            raise TrainerError(f"{path}: {rows} rows, the manifest says {entry['rows']}")
        if entry.get("sha256") and _sha256(path) != entry["sha256"]:
            raise TrainerError(f"{path}: not the shard the manifest lists (sha256 differs): a file of another run?")
    return shards


class ShardSamples:
    """Random access to windows of model_seq + 1 ids over all shards of a run (of its chain too: shard_list)."""

    def __init__(self, run: str | Path, model_seq: int, eod_id: int, manifest: dict | None = None):
        manifest = manifest or read_manifest(run)
        self.row_length = manifest["row_length"]
        if (self.row_length - 1) % model_seq:
            raise TrainerError(f"model seq_length {model_seq} must divide the shards' sequence length {self.row_length - 1}")
        self.model_seq = model_seq
        self.windows_per_row = (self.row_length - 1) // model_seq
        self.eod_id = eod_id
        self.arrays = []
        for path, entry in shard_list(run, manifest):
            if not path.is_file():
                raise TrainerError(f"{path}: listed in the manifest but missing")
            array = _map_shard(path, self.row_length)
            if len(array) != entry["rows"]:
                raise TrainerError(f"{path.name}: {len(array)} rows, the manifest says {entry['rows']}")
            self.arrays.append(array)
        self.offsets = np.cumsum([0] + [len(a) for a in self.arrays])

    def __len__(self) -> int:
        return int(self.offsets[-1]) * self.windows_per_row

    def window(self, index: int) -> np.ndarray:
        row, k = divmod(index, self.windows_per_row)
        shard = int(np.searchsorted(self.offsets, row, side="right") - 1)
        ids = self.arrays[shard][row - self.offsets[shard]]
        return ids[k * self.model_seq : k * self.model_seq + self.model_seq + 1].astype(np.int32)

    def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
        ids = self.window(int(index))
        inputs, labels = ids[:-1], ids[1:]
        is_eod = inputs == self.eod_id
        doc = np.cumsum(is_eod) - is_eod                     # an EOD belongs to the document it ends
        starts = np.maximum.accumulate(np.where(np.r_[True, doc[1:] != doc[:-1]], np.arange(len(doc)), 0))
        positions = np.arange(len(doc)) - starts
        loss_mask = (~is_eod).astype(np.float32)
        return inputs, labels, positions.astype(np.int32), doc.astype(np.int32), loss_mask


def reading_order(n_samples: int, batch_size: int, seed: int, num_shards: int = 1, shard_id: int = 0,
                  start_batch: int = 0) -> np.ndarray:
    """The sample indices one device reads, in order (whole batches only): the epoch's seeded
    permutation, every `num_shards`-th from the `shard_id`-th, from batch `start_batch` on."""
    order = np.random.default_rng(seed).permutation(n_samples)[shard_id::num_shards]
    return order[: len(order) // batch_size * batch_size][start_batch * batch_size :]


def make_dataset(samples: ShardSamples, batch_size: int, seed: int, num_shards: int = 1, shard_id: int = 0,
                 start_batch: int = 0):
    """A MindSpore dataset over the samples: seeded shuffle, split by data-parallel rank, batched,
    starting at batch `start_batch` of that order (how a resumed run skips what it has seen). Rank r
    of n takes every n-th sample of the order from the r-th, so the n ranks' batch k together are
    batch k of batch size n × batch_size in one process. The last column, `sample`, is each
    sample's index (what a rank's step log records)."""
    import mindspore.dataset as msds

    order = reading_order(len(samples), batch_size, seed, num_shards, shard_id, start_batch)

    class _Source:
        def __len__(self):
            return len(order)

        def __getitem__(self, i):
            return (*samples[int(order[i])], np.int64(order[i]))

    ds = msds.GeneratorDataset(_Source(), column_names=["input_ids", "labels", "position_ids", "doc_ids", "loss_mask", "sample"],
                               shuffle=False, num_parallel_workers=1)
    return ds.batch(batch_size, drop_remainder=True)
