"""`codecorpus build CONFIG --base RUN`: an increment — new input added to a finished build without
rebuilding it.

The increment reads only its own input. Its files go through the same per-file pass, then are
deduplicated against each other and against every file of the base (and of the increments already
built on it, the *chain*), using only what those runs stored: their content hashes (exact), their
LSH band rows and MinHash signatures (near). The base's files are treated as coming first in the
survivor order (their rank keys are prefixed with BASE_RANK, which sorts before every rank key):
a base file is never removed — its shards are out already — and a new file that duplicates one is
dropped as `duplicate_of_base` and attributed to it in the clusters table. The base's decisions are
taken as made: only base files kept by its near dedup are candidates, and edges between two base
files are left out. Near dedup reads the base's band rows once, keeping the rows whose bucket a new
file shares (no shuffle of the base's rows, no LSH over old plus new); the shuffles hold the new
files and those candidates only.

The increment copies the base's tokenizer (the same ids), writes shards of its own survivors and a
manifest naming the chain (path and manifest sha256 of each run): a trainer given the increment
reads the chain's shards and its own. The base runs are never written. A base built with other
dedup, tokenizer or sequence-length settings, or that is no finished build, is refused in one line.
"""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import ray

from codecorpus import storage
from codecorpus.pipeline import dedup
from codecorpus.pipeline.build import Build
from codecorpus.pipeline.chain import Chain
from codecorpus.pipeline.rundir import CLUSTERS, RunDir
from codecorpus.stages import exact_dedup as exact
from codecorpus.stages.near_dedup import REMOVED
from codecorpus.stages.records import KEPT, mark
from codecorpus.storage import parquet_files

REASON = "duplicate_of_base"
BASE_RANK = "!"     # sorts before "+", the first character of every rank key (stages.records.rank_key)


class IncrementBuild(Build):
    """A Build whose dedup steps also compare with the chain's files and whose tokenizer is the base's."""

    def __init__(self, *args, chain: Chain, **kwargs):
        super().__init__(*args, **kwargs)
        self.chain = chain

    def steps(self):
        against = [list(r) for r in self.chain.runs]    # a changed base re-runs dedup and what follows
        return [(name, step, [config, against] if name in ("05_exact_dedup", "06_near_dedup", "tokenizer") else config)
                for name, step, config in super().steps()]

    def exact_dedup(self) -> None:
        if not self.cfg.dedup.exact.enabled:
            return super().exact_dedup()
        ours, base = parquet_files(self.run.files("kept")), storage.join(self.run.work, "base_hashes.parquet")
        ray.get(_base_hashes.remote(ours, [r.root for r in self.chain.dirs()], base))
        books = self.runner().shuffle_stage(
            "05_exact_dedup", {"keys": ours, "base": [base]}, "content_hash",
            exact.keep_first_against_base, columns={"keys": dedup.KEY_COLUMNS, "base": ["content_hash"]},
            schemas={"base": pa.schema([("content_hash", pa.string())])})
        self.keep_books("05_exact_dedup", books)

    def near_dedup(self) -> None:
        if not self.cfg.dedup.near.enabled:
            return super().near_dedup()
        runner, run, near = self.runner(), self.run, self.cfg.dedup.near
        fingerprint = self.fingerprints["06_near_dedup"]
        edges_dir, removed_dir = storage.join(run.work, "near_dedup_edges"), storage.join(run.stages, CLUSTERS)
        candidates = storage.join(run.work, "base_candidates")
        if not run.checkpoint_is(edges_dir, fingerprint):
            storage.remove(candidates)
            ray.get(_candidates.remote(parquet_files(run.files("bands")), run.stage_dir("05_exact_dedup"),
                                       [r.root for r in self.chain.dirs()], candidates))
            tmp = run.temp_for(edges_dir)
            storage.make_dirs(tmp)
            dedup.verified_edges(parquet_files(storage.join(candidates, "bands")), parquet_files(run.files("signatures")) +
                                 parquet_files(storage.join(candidates, "signatures")), tmp, run.work, runner.partitions, near.threshold,
                                 near.exact_jaccard, self.cfg.dedup.exact.enabled)
            ray.get([_without_base_pairs.remote(f) for f in parquet_files(tmp)])
            run.publish(tmp, edges_dir)
            run.mark_checkpoint(edges_dir, fingerprint)
        if not run.checkpoint_is(removed_dir, fingerprint):
            tmp = run.temp_for(removed_dir)
            dedup.removed_files(runner, near, edges_dir, tmp)
            ray.get(_attributed.remote(tmp, storage.join(candidates, "ids.parquet"), run.files("kept"),
                                       run.stage_dir("05_exact_dedup"), [r.root for r in self.chain.dirs()]))
            run.publish(tmp, removed_dir)
            run.mark_checkpoint(removed_dir, fingerprint)
        records = [run.stage_dir("05_exact_dedup")] + [r.stage_dir("05_exact_dedup") for r in self.chain.dirs()]
        clusters = dedup.cluster_report(removed_dir, records)
        books = runner.shuffle_stage("06_near_dedup", {"keys": parquet_files(run.stage_dir("05_exact_dedup")),
                                                       "removed": parquet_files(removed_dir)}, "id", _mark_with_reason,
                                     columns={"removed": ["id", "reason"]},
                                     schemas={"removed": pa.schema([("id", pa.string()), ("reason", pa.string())])})
        if clusters:
            books["clusters"] = clusters
        self.keep_books("06_near_dedup", books)

    def train_tokenizer(self) -> None:
        """The base's tokenizer, copied: the increment's ids are the base's."""
        storage.write_bytes(self.run.tokenizer_path, storage.read_bytes(self.chain.base.tokenizer_path))
        self.echo(f"  {'tokenizer':<15} the base's, from {self.chain.base.tokenizer_path}")

    def manifest(self, fingerprint: str, shards: list[dict]) -> dict:
        return {**super().manifest(fingerprint, shards), "base": self.chain.entry()}


# -- functions that run on Ray workers ------------------------------------------------------------
def _ids_where(folder: Path, ids: pa.Array, status: str = KEPT) -> pa.Array:
    """Those of `ids` whose record in the stage folder `folder` has `status`."""
    table = pads.dataset(str(folder), format="parquet").to_table(
        columns=["id"], filter=pc.field("id").isin(ids) & (pc.field("status") == status))
    return table.column("id").combine_chunks()


def _rows_where(folder: Path, column: str, values: pa.Array, schema: pa.Schema | None = None,
                columns: list[str] | None = None) -> pa.Table:
    """The rows (`columns` of them) of the Parquet files in `folder` whose `column` is one of `values`:
    one scan of all the files on the reading threads."""
    files = [str(f) for f in parquet_files(folder)]
    if not files:
        return schema.empty_table()
    return pads.dataset(files, schema=schema, format="parquet").to_table(columns=columns, filter=pc.field(column).isin(values))


@ray.remote
def _base_hashes(new_kept: list[str], chain: list[str], out: str) -> None:
    """The content hashes of the chain's files that a new file has too (all exact dedup needs of the
    chain), written to `out`: a scan of their stored hashes, no shuffle of them."""
    ours = pads.dataset(new_kept, format="parquet").to_table(columns=["content_hash"]).column("content_hash").unique()
    found = [_rows_where(RunDir(root).files("kept"), "content_hash", ours, pa.schema([("content_hash", pa.string())]),
                         ["content_hash"]) for root in chain]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.concat_tables(found), out)


@ray.remote
def _candidates(new_bands: list[str], exact_dir: str, chain: list[str], out: str) -> None:
    """The band rows near dedup compares: the new files kept by exact dedup, and the chain's files
    kept by their own near dedup that share a bucket with one of them (rank keys prefixed by
    BASE_RANK and the run's place in the chain); the signatures of those chain files; their ids."""
    bands = pa.concat_tables([pq.read_table(f) for f in new_bands]) if new_bands else None
    out_dir = Path(out)
    for sub in ("bands", "signatures"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    if bands is None or bands.num_rows == 0:
        pq.write_table(pa.table({"id": pa.array([], pa.string())}), out_dir / "ids.parquet")
        return
    bands = bands.filter(pc.is_in(bands.column("id"), value_set=_ids_where(Path(exact_dir), bands.column("id").unique())))
    pq.write_table(bands, out_dir / "bands" / "new.parquet")
    keys = bands.column("band_key").unique()
    all_ids = []
    for place, root in enumerate(chain):
        run = RunDir(root)
        found = _rows_where(run.files("bands"), "band_key", keys, bands.schema)
        kept = _ids_where(run.stage_dir("06_near_dedup"), found.column("id").unique())
        found = found.filter(pc.is_in(found.column("id"), value_set=kept))
        prefix = f"{BASE_RANK}{place:04d}\0"
        found = found.set_column(found.schema.get_field_index("rank_key"), "rank_key",
                                 pc.binary_join_element_wise(pa.scalar(prefix), found.column("rank_key"), ""))
        pq.write_table(found, out_dir / "bands" / f"base-{place:04d}.parquet")
        if parquet_files(run.files("signatures")):
            pq.write_table(_rows_where(run.files("signatures"), "id", kept), out_dir / "signatures" / f"base-{place:04d}.parquet")
        all_ids.append(kept)
    pq.write_table(pa.table({"id": pa.concat_arrays(all_ids)}), out_dir / "ids.parquet")


@ray.remote
def _without_base_pairs(path: str) -> None:
    """Edges between two of the chain's files left out: their decisions were made by their own builds."""
    edges = pq.read_table(path)
    pq.write_table(edges.filter(pc.invert(pc.starts_with(edges.column("rank_key"), BASE_RANK))), path)


@ray.remote
def _attributed(removed_dir: str, base_ids: str, new_kept: str, exact_dir: str, chain: list[str]) -> None:
    """The clusters table of an increment: each removed near duplicate with its reason (`near_duplicate`,
    or REASON where the file it duplicates is the chain's), and each file exact dedup dropped as a copy
    of a chain file with that file (the chain's earliest, smallest (rank_key, id) of that content), similarity 1."""
    folder = Path(removed_dir)
    base = pq.read_table(base_ids).column("id").combine_chunks()
    for f in sorted(folder.glob("*.parquet")):
        removed = pq.read_table(f)
        from_base = pc.is_in(removed.column("survivor_id"), value_set=base)
        pq.write_table(removed.append_column("reason", pc.if_else(from_base, REASON, "near_duplicate")), f)
    copies = pads.dataset(exact_dir, format="parquet").to_table(columns=["id"], filter=pc.field("reason") == REASON).column("id")
    if not len(copies):
        return
    copies = pads.dataset(new_kept, format="parquet").to_table(columns=["id", "content_hash"],
                                                               filter=pc.field("id").isin(copies.combine_chunks()))
    hashes = copies.column("content_hash").unique()
    firsts = []
    for place, root in enumerate(chain):
        found = pads.dataset(str(RunDir(root).files("kept")), format="parquet").to_table(
            columns=["id", "rank_key", "content_hash"], filter=pc.field("content_hash").isin(hashes))
        firsts.append(found.append_column("place", pa.array([place] * found.num_rows, pa.int32())))
    firsts = pa.concat_tables(firsts).sort_by([("content_hash", "ascending"), ("place", "ascending"), ("rank_key", "ascending"),
                                               ("id", "ascending")])
    survivor = {}
    for h, i in zip(firsts.column("content_hash").to_pylist(), firsts.column("id").to_pylist()):
        survivor.setdefault(h, i)
    count = pc.value_counts(copies.column("content_hash").combine_chunks())
    sizes = {v["values"].as_py(): v["counts"].as_py() + 1 for v in count}
    hashes_of = copies.column("content_hash").to_pylist()
    table = pa.table({"id": copies.column("id"), "survivor_id": [survivor[h] for h in hashes_of],
                      "cluster_size": [sizes[h] for h in hashes_of], "similarity": [1.0] * copies.num_rows}, schema=REMOVED)
    pq.write_table(table.append_column("reason", pa.array([REASON] * table.num_rows, pa.string())), folder / "exact-copies.parquet")


def _mark_with_reason(keys: pa.Table, removed: pa.Table) -> pa.Table:
    """The kept records of one id partition, those among `removed` marked with their reason."""
    keys = keys.filter(pc.equal(keys.column("status"), KEPT))
    reason = {i: r for i, r in zip(removed.column("id").to_pylist(), removed.column("reason").to_pylist())}
    return mark(keys, pa.array([reason.get(i) for i in keys.column("id").to_pylist()], pa.string()))

