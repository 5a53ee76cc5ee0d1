"""`codecorpus build`: the corpus stages wired through Ray Data, from source folders to Arrow shards.

Each stage is a Ray Data operator over Arrow tables (the functions live in `stages/`). A stage
writes every record it saw — kept, dropped or quarantined, with the reason — as Parquet under
`RUN/stages/`, then its books are gathered from the bookkeeping columns alone, one small summary
per batch, merged. The next stage reads only the kept rows. The driver handles listings of repositories, small summaries and
the tokenizer's training sample stream; never the corpus.
"""
from __future__ import annotations

import errno
import functools
import hashlib
import json
import logging
import math
import os
import platform
import re
import time
from importlib import metadata
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc
import ray
import ray.data
import xxhash

from pipeline.config import BuildConfig, RayConfig
from pipeline.errors import BuildError
from pipeline.partitions import PartitionedStage, file_partitions, map_file
from pipeline.rundir import RunDir
from stages import clean, components, exact_dedup, filters, langid, near_dedup, pack, read_scraped, sources, tag
from stages.decontaminate import Decontaminator
from stages.license import LicensePolicy
from pipeline.sink import SummarizingParquetSink
from stages.records import kept_only
from stages.summary import books_balance, merge
from tokenizer.bpe import EOD_TOKEN, load_tokenizer, train_bpe
from tokenizer.codegeex import codegeex_tokenizer

log = logging.getLogger("codecorpus")
ROWS_PER_ROW_GROUP = 1024  # Ray writes one row group per block otherwise: tiny groups read slowly
VERSIONED_PACKAGES = ("codecorpus", "ray", "pyarrow", "tokenizers", "datasketch", "numpy", "pydantic")
FILES_PER_PARTITION = 256     # listed files read by one ingest task
SHUFFLE_PARTITION_RECORDS = 20_000       # by default a shuffle partition holds at most this many records…
SHUFFLE_PARTITION_BYTES = 64 * 2**20     # …and this much text: what one reduce task holds in memory
STAGE_ATTEMPTS = 3            # a stage that loses a node or worker is run again (its finished partitions kept)


def init_ray(cfg: BuildConfig, address: str | None) -> None:
    """Start a local Ray (CPUs from config, else all) or join a running cluster (--address, else RAY_ADDRESS).

    Without an address the build always starts its own Ray: Ray would otherwise attach to whatever cluster
    /tmp/ray/ray_current_cluster names (a `ray start` or test cluster left on the machine)."""
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict = dict(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False,
                        runtime_env={"env_vars": worker_env(cfg.ray)})
    if address:
        import pipeline as pipeline_pkg
        import stages as stages_pkg
        import tokenizer as tokenizer_pkg
        # Ship our code to the cluster's workers, which may not have codecorpus installed.
        kwargs["runtime_env"]["py_modules"] = [pipeline_pkg, stages_pkg, tokenizer_pkg]
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError) as exc:
            hint = ("; the cluster wants a token: export RAY_AUTH_MODE=token (token in ~/.ray/auth_token or RAY_AUTH_TOKEN)"
                    if "auth" in str(exc).lower() else "")
            raise BuildError(f"cannot join the Ray cluster at {address}: {str(exc).strip().splitlines()[-1][:300]}{hint}") from None
    else:
        ray.init(address="local", num_cpus=cfg.ray.num_cpus, object_store_memory=cfg.ray.object_store_memory, **kwargs)
    tune_ray_data(cfg.ray)


def worker_env(ray_cfg: RayConfig) -> dict[str, str]:
    """Environment of the Ray workers. With `release_freed_memory`, Arrow's allocator (mimalloc in the
    pyarrow wheels) hands freed pages back to the OS at once: by default it keeps them, and a worker
    that reads block after block grew by about 100 MB per block it had handled."""
    if not ray_cfg.release_freed_memory:
        return {}
    return {"MIMALLOC_PURGE_DELAY": "0", "MIMALLOC_PURGE_DECOMMITS": "1"}


def tune_ray_data(ray_cfg: RayConfig) -> None:
    """Ray Data settings of this driver from the `[ray]` section: shuffle partitions and what bounds a
    worker's memory (a shuffle map task's input, a Parquet read task's row groups, the block size)."""
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    cpus = int(ray.cluster_resources().get("CPU", 1))
    ctx.default_hash_shuffle_parallelism = ray_cfg.shuffle_partitions or max(2, 2 * cpus)
    ctx.use_disk_based_hash_shuffle = ray_cfg.disk_shuffle
    # Ray 2.60 merges a node's blocks into one shuffle map task up to 1 GiB by default
    ctx.shuffle_input_batch_bytes = ray_cfg.shuffle_map_bytes
    # Ray Data's Parquet reader packs row groups into read tasks of up to 128 MiB (uncompressed) by
    # default; the driver reads this variable when it plans a read, so setting it here bounds them
    os.environ["RAY_DATA_PARQUET_BIN_PACKING_BYTES"] = str(ray_cfg.read_task_bytes)
    if ray_cfg.target_block_bytes:
        ctx.target_max_block_size = ray_cfg.target_block_bytes


class Build:
    """One build in a run folder. Each step has a fingerprint: its config, the code version, and the
    fingerprint of the step before it (the first: the input files' paths, sizes and times). A step
    whose fingerprint and output are already in the run is skipped, so the same command after a crash
    goes on where it stopped, and a config change re-runs the step it touches and those after it."""

    def __init__(self, cfg: BuildConfig, run: RunDir, config_text: str, echo: Callable[[str], None] = print,
                 force: bool = False):
        self.cfg = cfg
        self.run = run
        self.config_text = config_text
        self.echo = echo
        self.force = force
        self.books: dict[str, dict] = {}
        self.clusters: dict = {}
        self.state: dict[str, dict] = {}
        self.fingerprints: dict[str, str] = {}
        self.ingest_plan: tuple | None = None
        self.shards: list[dict] = []
        self.started = self.stage_started = time.time()

    # -- helpers ------------------------------------------------------------------------------
    def read_kept(self, stage: str) -> ray.data.Dataset:
        return ray.data.read_parquet(str(self.run.stage_dir(stage))).map_batches(kept_only, batch_format="pyarrow")

    def write_stage(self, stage: str, ds: ray.data.Dataset) -> dict:
        """Write a stage's records (a shuffle stage: all at once, atomically), then gather its books."""
        final = self.run.stage_dir(stage)
        tmp = self.run.temp_for(final)
        sink = SummarizingParquetSink(str(tmp), min_rows_per_file=ROWS_PER_ROW_GROUP)
        ds.write_datasink(sink)
        tmp.mkdir(exist_ok=True)
        self.run.publish(tmp, final)
        return self.keep_books(stage, sink.stage_stats())

    def map_stage(self, stage: str, upstream: str, fn: Callable[..., pa.Table], fn_kwargs: dict) -> dict:
        """A stage that maps each record on its own: one partition per upstream file (or slice of one),
        so that a crash loses at most the partitions being written."""
        partitions = file_partitions(self.run.stage_dir(upstream))
        work = PartitionedStage(self.run.stage_dir(stage), self.fingerprints[stage])
        self.run_partitions(stage, work, ray.data.from_items(partitions, override_num_blocks=max(1, len(partitions))),
                            len(partitions), map_file, {"fn": fn, "fn_kwargs": fn_kwargs})
        return self.finish_partitions(stage, work, len(partitions))

    def run_partitions(self, stage: str, work: PartitionedStage, partitions: ray.data.Dataset, total: int,
                       produce: Callable, kwargs: dict) -> None:
        done = len(work.done())
        if done:
            self.echo(f"  {stage:<15} resuming: {done:,} of {total:,} partitions already written")
        work.run(partitions, produce, kwargs)

    def finish_partitions(self, stage: str, work: PartitionedStage, total: int) -> dict:
        done = work.done()
        if len(done) != total:
            raise BuildError(f"stage {stage}: {len(done)} of {total} partitions written")
        books = merge(work.summaries())
        work.publish(self.run.publish)
        return self.keep_books(stage, books)

    def keep_books(self, stage: str, books: dict) -> dict:
        if not books_balance(books):
            raise BuildError(f"stage {stage}: the books do not balance: {books}")
        books["seconds"] = round(time.time() - self.stage_started, 2)
        self.books[stage] = books
        self.write_stats(status="running")
        dropped = sum(books["dropped"].values())
        quarantined = sum(books["quarantined"].values())
        self.echo(f"  {stage:<15} in {books['in']:>8,}  kept {books['kept']:>8,}  dropped {dropped:>8,}"
                  f"  quarantined {quarantined:>6,}  ({books['seconds']:.1f}s)")
        if books["kept"] == 0:
            raise BuildError(f"no records left after stage {stage}: nothing to build from")
        return books

    def write_stats(self, status: str, extra: dict | None = None) -> None:
        data = {"status": status, "stages": self.books, "elapsed_seconds": round(time.time() - self.started, 1)}
        data.update(extra or {})
        self.run.write_json(self.run.stats_path, data)

    # -- the stages ---------------------------------------------------------------------------
    def plan_ingest(self) -> tuple[ray.data.Dataset, int, str]:
        """The ingest partitions (chunks of listed files; archives, Pile files, row groups) and the
        fingerprint of the input: every file's path, size and modification time."""
        folders, units = [], []
        for source in self.cfg.sources:
            more_folders, more_units = sources.plan(source, source.resolved_paths())
            folders += more_folders
            units += more_units
        fingerprint = sum(sources.unit_fingerprint(u) for u in units) % (1 << 64)
        parts = []
        if folders:
            chunks = (ray.data.from_items(folders, override_num_blocks=min(len(folders), 64))
                      .map_batches(_list_partitions, batch_format="pyarrow").materialize())
            for row in chunks.map_batches(_fingerprint_of, batch_format="pyarrow").take_all():
                fingerprint = (fingerprint + int(row["fingerprint"])) % (1 << 64)
            parts.append(chunks.select_columns(["part", "payload"]))
        if units:
            parts.append(ray.data.from_items([_unit_partition(u) for u in units]))
        partitions = parts[0] if len(parts) == 1 else parts[0].union(*parts[1:])
        total = partitions.count()
        return partitions.repartition(max(1, total)), total, f"{fingerprint:016x}"

    def ingest(self) -> None:
        partitions, total, _ = self.ingest_plan
        work = PartitionedStage(self.run.stage_dir("01_ingest"), self.fingerprints["01_ingest"])
        self.run_partitions("01_ingest", work, partitions, total, _ingest_partition, {})
        self.finish_partitions("01_ingest", work, total)

    def language(self) -> None:
        self.map_stage("02_language", "01_ingest", langid.identify_languages,
                       {"include": list(self.cfg.languages.include), "min_confidence": self.cfg.languages.min_confidence})

    def filter(self) -> None:
        self.map_stage("03_filter", "02_language", filters.apply_filters, {
            "filters": filters.build_filters(self.cfg.filters),
            "licenses": LicensePolicy(list(self.cfg.licenses.keep), self.cfg.licenses.unknown)})

    def clean(self) -> None:
        """Secrets and personal data redacted, key files and benchmark solutions dropped (before dedup,
        so that two copies differing only in a leaked key still dedup)."""
        dc = self.cfg.decontamination
        decontaminator = Decontaminator(list(dc.benchmarks), dc.ngram, dc.threshold, dc.min_chars) if dc.benchmarks else None
        self.map_stage("04_clean", "03_filter", clean.clean_batch, {
            "redact_secrets": self.cfg.privacy.redact, "max_secret_fraction": self.cfg.privacy.max_secret_fraction,
            "decontaminator": decontaminator})

    def size_shuffles(self) -> None:
        """Unless `ray.shuffle_partitions` is set, enough shuffle partitions that each holds a bounded
        share of the corpus (so a worker's memory does not grow with the input), and at least 2 × CPUs."""
        if self.cfg.ray.shuffle_partitions:
            return
        books = self.books["04_clean"]
        cpus = int(ray.cluster_resources().get("CPU", 1))
        ray.data.DataContext.get_current().default_hash_shuffle_parallelism = max(
            2, 2 * cpus, math.ceil(books["kept"] / SHUFFLE_PARTITION_RECORDS), math.ceil(books["kept_bytes"] / SHUFFLE_PARTITION_BYTES))

    def exact_dedup(self) -> None:
        self.size_shuffles()
        ds = self.read_kept("04_clean")
        if self.cfg.dedup.exact.enabled:
            ds = by_key(ds.map_batches(exact_dedup.add_content_hash, batch_format="pyarrow"), "content_hash",
                        exact_dedup.keep_first_of_group)
        self.write_stage("05_exact_dedup", ds)

    def near_dedup(self) -> None:
        """Candidate pairs (LSH), components, the cluster report, then the duplicates marked. Pairs and
        components are kept in the run under the stage's fingerprint, so a crash after them does not
        redo them. Small graphs: union-find in one task and each marking task holds the removed ids;
        large ones (`components`): large-star/small-star rounds and a Ray join, no process holds all."""
        near = self.cfg.dedup.near
        self.size_shuffles()
        if not near.enabled:
            self.map_stage("06_near_dedup", "05_exact_dedup", _unchanged, {})
            return
        fingerprint = self.fingerprints["06_near_dedup"]
        removed_dir = self.run.stages / "06_near_dedup.clusters"
        edges_dir = self.run.root / "work" / "near_dedup_edges"
        if not self.run.checkpoint_is(edges_dir, fingerprint):
            bands, rows = near_dedup.lsh_params(near.threshold, near.num_perm)
            tmp = self.run.temp_for(edges_dir)
            keyed = self.read_kept("05_exact_dedup").map_batches(
                near_dedup.band_rows, batch_format="pyarrow",
                fn_kwargs=dict(num_perm=near.num_perm, ngram=near.ngram, seed=near.seed, bands=bands, rows=rows,
                               exact_jaccard=near.exact_jaccard))
            by_key(keyed, "band_key", near_dedup.bucket_edges, threshold=near.threshold if near.exact_jaccard else None
                   ).write_parquet(str(tmp), min_rows_per_file=ROWS_PER_ROW_GROUP)
            tmp.mkdir(exist_ok=True)
            self.run.publish(tmp, edges_dir)
            self.run.mark_checkpoint(edges_dir, fingerprint)
        distributed = near.components == "distributed" or (
            near.components == "auto" and _parquet_rows(edges_dir) > near.local_max_edges)
        if not self.run.checkpoint_is(removed_dir, fingerprint):
            tmp = self.run.temp_for(removed_dir)
            if distributed:
                self.distributed_components(edges_dir, tmp)
            else:
                ray.get(_local_components.remote(str(edges_dir), str(tmp)))
            self.run.publish(tmp, removed_dir)
            self.run.mark_checkpoint(removed_dir, fingerprint)
        self.clusters = self.cluster_report(removed_dir)
        if distributed:
            removed = ray.data.read_parquet(str(removed_dir)).select_columns(["id", "survivor_id"]).rename_columns(
                {"survivor_id": "removed_survivor"})
            marked = self.read_kept("05_exact_dedup").join(
                removed, join_type="left_outer", on=("id",),
                num_partitions=ray.data.DataContext.get_current().default_hash_shuffle_parallelism)
            books = self.write_stage("06_near_dedup", marked.map_batches(near_dedup.mark_joined, batch_format="pyarrow"))
        else:
            books = self.map_stage("06_near_dedup", "05_exact_dedup", _mark_near_duplicates, {"removed_dir": str(removed_dir)})
        books["clusters"] = self.clusters
        self.write_stats(status="running")

    def cluster_report(self, removed_dir: Path) -> dict:
        """Sizes and the largest clusters, summarised block by block; only those clusters are named."""
        parts = (ray.data.read_parquet(str(removed_dir))
                 .map_batches(_cluster_summary, batch_format="pyarrow").take_all())
        report = near_dedup.merge_cluster_summaries([json.loads(p["summary"]) for p in parts])
        ids = sorted({i for c in report["largest"] for i in [c["survivor"], *c["members"]]})
        return near_dedup.name_clusters(report, ray.get(_names.remote(str(self.run.stage_dir("05_exact_dedup")), ids)))

    def distributed_components(self, edges_dir: Path, out_dir: Path) -> None:
        """Iterated large-star / small-star over Ray shuffles until the edges stop changing; then each
        component is a star around its survivor. Writes the removed files to `out_dir`."""
        pairs = ray.data.read_parquet(str(edges_dir)).map_batches(components.from_candidate_pairs, batch_format="pyarrow")
        removed, round_number = star_components(pairs)
        removed.write_parquet(str(out_dir), min_rows_per_file=ROWS_PER_ROW_GROUP)
        out_dir.mkdir(exist_ok=True)
        self.echo(f"  {'components':<15} distributed large-star/small-star converged after {round_number} round(s)")

    def tag(self) -> None:
        self.map_stage("07_tag", "06_near_dedup", tag.insert_tags, {"comment_sample": self.cfg.stats.comment_sample})

    def train_tokenizer(self) -> None:
        tcfg = self.cfg.tokenizer
        if tcfg.kind == "codegeex":
            tok = codegeex_tokenizer(Path(tcfg.vocab_file).expanduser(), Path(tcfg.merges_file).expanduser())
            tmp = self.run.tokenizer_path.with_suffix(".tmp")
            tok.save(str(tmp))
            os.replace(tmp, self.run.tokenizer_path)
            self.echo(f"  {'tokenizer':<15} CodeGeeX's {tok.get_vocab_size():,} ids from {tcfg.vocab_file} and {tcfg.merges_file}")
            return
        fractions = sample_fractions({k: v["bytes"] for k, v in self.books["07_tag"]["kept_by_language"].items()},
                                     tcfg.sample_bytes, tcfg.max_language_share)
        seed = self.cfg.packing.seed
        sample = (self.read_kept("07_tag")
                  .map_batches(_sample_rows, batch_format="pyarrow", fn_kwargs=dict(fractions=fractions, seed=seed))
                  .sort("sample_order"))
        t0 = time.time()
        texts = (t for batch in sample.iter_batches(batch_format="pyarrow", batch_size=256) for t in batch.column("text").to_pylist())
        tok = train_bpe(texts, vocab_size=tcfg.vocab_size, min_frequency=tcfg.min_frequency)
        tmp = self.run.tokenizer_path.with_suffix(".tmp")
        tok.save(str(tmp))
        os.replace(tmp, self.run.tokenizer_path)
        sampled = sum(fractions[k] * v["bytes"] for k, v in self.books["07_tag"]["kept_by_language"].items())
        self.echo(f"  {'tokenizer':<15} {tok.get_vocab_size():,} ids trained on a {sampled / 1e6:,.1f} MB language-balanced sample "
                  f"({time.time() - t0:.1f}s)")

    def tokenize(self) -> None:
        self.map_stage("08_tokenize", "07_tag", _tokenize, {"tokenizer_path": str(self.run.tokenizer_path)})

    def pack(self) -> None:
        self.size_shuffles()
        pcfg = self.cfg.packing
        row_length = pcfg.seq_length + 1
        tokens_ds = self.read_kept("08_tokenize")
        total_tokens = tokens_ds.sum("num_tokens") or 0
        tok = load_tokenizer(self.run.tokenizer_path)
        vocab_size, eod_id = tok.get_vocab_size(), tok.token_to_id(EOD_TOKEN)
        bytes_per_id = 2 if vocab_size <= 65_536 else 4
        num_groups = max(1, math.ceil(total_tokens * bytes_per_id / self.cfg.shards.target_bytes))
        tmp = self.run.temp_for(self.run.shards)
        tmp.mkdir(parents=True)
        entries = (tokens_ds.map_batches(pack.add_pack_keys, batch_format="pyarrow", fn_kwargs=dict(seed=pcfg.seed, num_groups=num_groups))
                   .groupby("pack_group")
                   .map_groups(pack.pack_group, batch_format="pyarrow",
                               fn_kwargs=dict(out_dir=str(tmp), row_length=row_length,
                                              vocab_size=vocab_size, eod_id=eod_id,
                                              pack=pcfg.pack, stride=pcfg.stride))
                   .take_all())
        self.run.publish(tmp, self.run.shards)
        shards = sorted(({**e, "tokens_by_language": json.loads(e["tokens_by_language"]),
                          "tokens_by_source": json.loads(e["tokens_by_source"])} for e in entries), key=lambda e: e["shard"])
        self.echo(f"  {'pack':<15} {sum(s['rows'] for s in shards):,} rows of {row_length:,} ids in {len(shards)} shard(s)")
        self.shards = shards

    def steps(self) -> list[tuple[str, Callable[[], object], object]]:
        """(name, method, what of the config it depends on) in order; a fingerprint covers the config
        part, the code version and the step before."""
        cfg = self.cfg
        bench_files = [_file_identity(p) for p in cfg.decontamination.benchmarks]
        vocab_files = [_file_identity(p) for p in (cfg.tokenizer.vocab_file, cfg.tokenizer.merges_file) if p]
        return [
            ("01_ingest", self.ingest, [s.model_dump(mode="json") for s in cfg.sources]),
            ("02_language", self.language, cfg.languages.model_dump(mode="json")),
            ("03_filter", self.filter, [cfg.filters.model_dump(mode="json"), cfg.licenses.model_dump(mode="json")]),
            ("04_clean", self.clean, [cfg.privacy.model_dump(mode="json"), cfg.decontamination.model_dump(mode="json"), bench_files]),
            ("05_exact_dedup", self.exact_dedup, cfg.dedup.exact.model_dump(mode="json")),
            ("06_near_dedup", self.near_dedup, cfg.dedup.near.model_dump(mode="json")),
            ("07_tag", self.tag, cfg.stats.model_dump(mode="json")),
            ("tokenizer", self.train_tokenizer, [cfg.tokenizer.model_dump(mode="json"), cfg.packing.seed, vocab_files,
                                                 _version("tokenizers")]),
            ("08_tokenize", self.tokenize, None),
            ("pack", self.pack, [cfg.packing.model_dump(mode="json"), cfg.shards.model_dump(mode="json")]),
        ]

    def output_of(self, step: str) -> Path:
        return {"tokenizer": self.run.tokenizer_path, "pack": self.run.shards}.get(step) or self.run.stage_dir(step)

    def run_all(self) -> dict:
        self.run.prepare()
        with self.run.lock():
            if self.force:
                self.run.forget()
            self.state = self.run.read_state()
            self.write_stats(status="running")
            try:
                self.ingest_plan = self.plan_ingest()
                previous = self.ingest_plan[2]
                for name, step, config in self.steps():
                    self.fingerprints[name] = previous = _fingerprint([name, code_version(), previous, config])
                    done = self.state.get(name, {})
                    if done.get("fingerprint") == previous and self.output_of(name).exists():
                        self.books.update(done.get("books", {}))
                        self.echo(f"  {name:<15} up to date (fingerprint {previous})")
                        continue
                    self.run_step(name, step)
                    self.state[name] = {"fingerprint": previous, "books": {k: v for k, v in self.books.items() if k == name},
                                        **({"shards": self.shards} if name == "pack" else {})}
                    self.run.write_state(self.state)
            except BaseException as exc:
                self.write_stats(status="failed", extra={"error": f"{type(exc).__name__}: {exc}"[:2000]})
                raise
            manifest = self.manifest(self.ingest_plan[2], self.state["pack"]["shards"])
            self.run.write_json(self.run.manifest_path, manifest)
            self.write_stats(status="complete", extra={"tokens": manifest["tokens"]})
            return manifest

    def run_step(self, name: str, step: Callable[[], object]) -> None:
        """Run one step; again (keeping its finished partitions) when Ray lost a node or worker under
        it; a failed write becomes one line that says what to do."""
        for attempt in range(1, STAGE_ATTEMPTS + 1):
            self.stage_started = time.time()
            try:
                step()
                return
            except Exception as exc:
                lost = _lost_to_the_cluster(exc)
                if lost and attempt < STAGE_ATTEMPTS:
                    self.echo(f"  {name:<15} Ray lost part of the work ({lost}); running the step again, finished partitions kept")
                    continue
                write_error = _write_error(exc)
                if write_error is not None:
                    raise BuildError(f"step {name}: cannot write: {write_error}. The steps before it are complete and kept; "
                                     f"fix that and run the same command again to resume") from exc
                raise

    def manifest(self, fingerprint: str, shards: list[dict]) -> dict:
        tok = load_tokenizer(self.run.tokenizer_path)
        by_lang: dict[str, int] = {}
        by_source: dict[str, int] = {}
        for s in shards:
            for k, v in s["tokens_by_language"].items():
                by_lang[k] = by_lang.get(k, 0) + v
            for k, v in s["tokens_by_source"].items():
                by_source[k] = by_source.get(k, 0) + v
        return {
            "format": "codecorpus-shards/1",
            "config": json.loads(self.cfg.model_dump_json()),
            "config_toml": self.config_text,
            "input_fingerprint": fingerprint,
            "versions": {"python": platform.python_version(), **{p: _version(p) for p in VERSIONED_PACKAGES}},
            "tokenizer": {"path": "tokenizer/tokenizer.json", "sha256": _sha256(self.run.tokenizer_path),
                          "vocab_size": tok.get_vocab_size(), "eod_id": tok.token_to_id(EOD_TOKEN)},
            "seq_length": self.cfg.packing.seq_length,
            "row_length": self.cfg.packing.seq_length + 1,
            "dtype": str(pack.token_dtype(tok.get_vocab_size())),
            "rows": sum(s["rows"] for s in shards),
            "tokens": {"total": sum(s["tokens"] for s in shards), "by_language": dict(sorted(by_lang.items())),
                       "by_source": dict(sorted(by_source.items()))},
            "stages": self.books,
            "shards": [{k: s[k] for k in ("shard", "rows", "files", "tokens", "padding", "sha256")} for s in shards],
        }


# -- functions and classes that run on Ray workers ------------------------------------------------
def _list_partitions(folders: pa.Table) -> pa.Table:
    """The ingest partitions of some repository folders: their files listed, in chunks."""
    rows = []
    for folder in folders.to_pylist():
        files = read_scraped.list_files(folder)
        name = xxhash.xxh64_hexdigest(f"{folder['source']}\0{folder['repo']}\0{folder['repo_root']}".encode())
        for k in range(0, max(1, len(files)), FILES_PER_PARTITION):
            chunk = files[k:k + FILES_PER_PARTITION]
            rows.append({"part": f"f-{name}-{k // FILES_PER_PARTITION:05d}", "payload": json.dumps({"files": chunk}),
                         "fingerprint": str(sum(f["fingerprint"] for f in chunk) % (1 << 64))})
    return pa.table({"part": pa.array([r["part"] for r in rows], pa.string()),
                     "payload": pa.array([r["payload"] for r in rows], pa.large_string()),
                     "fingerprint": pa.array([r["fingerprint"] for r in rows], pa.string())})


def _unit_partition(unit: dict) -> dict:
    name = xxhash.xxh64_hexdigest(f"{unit['source']}\0{unit['path']}\0{unit['row_group']}".encode())
    return {"part": f"u-{name}", "payload": json.dumps({"unit": unit})}


def _ingest_partition(payload: dict):
    """The records of one ingest partition, as they are read."""
    if "unit" in payload:
        yield from sources.read_unit(pa.Table.from_pylist([payload["unit"]]))
    elif payload["files"]:
        yield read_scraped.read_files(pa.Table.from_pylist(payload["files"]))


def _unchanged(batch: pa.Table) -> pa.Table:
    return batch


def _fingerprint_of(batch: pa.Table) -> pa.Table:
    total = sum(int(v) for v in batch.column("fingerprint").to_pylist()) % (1 << 64)
    return pa.table({"fingerprint": [str(total)]})


def sample_fractions(bytes_by_language: dict[str, int], sample_bytes: int, max_share: float) -> dict[str, float]:
    """The fraction of each language's files in the tokenizer's sample: no language contributes more than
    `max_share × sample_bytes`, and the whole sample is at most `sample_bytes`."""
    cap = max_share * sample_bytes
    target = {lang: min(n, cap) for lang, n in bytes_by_language.items()}
    scale = min(1.0, sample_bytes / (sum(target.values()) or 1))
    return {lang: (target[lang] * scale / n if n else 0.0) for lang, n in bytes_by_language.items()}


def _sample_rows(batch: pa.Table, fractions: dict[str, float], seed: int) -> pa.Table:
    """A deterministic sample (by a seeded hash of the id) with a global order for the tokenizer."""
    keys = [pack.seeded_hash(seed + 7, i) for i in batch.column("id").to_pylist()]
    langs = batch.column("language").to_pylist()
    mask = pa.array([k < fractions.get(lang, 0.0) * 2**64 for k, lang in zip(keys, langs)])
    order = pa.array([k - (1 << 63) for k in keys], pa.int64())
    return pa.table({"sample_order": order, "text": batch.column("text")}).filter(mask)


def star_components(edges: ray.data.Dataset, max_rounds: int = 200) -> tuple[ray.data.Dataset, int]:
    """Connected components of label edges (stages.components) by large-star/small-star rounds, each a
    pair of Ray shuffles, until the edge set stops changing. Returns (the removed files, rounds run)."""
    previous = None
    for round_number in range(1, max_rounds + 1):
        edges = by_key(edges.map_batches(components.both_directions, batch_format="pyarrow"), "u", components.large_star)
        edges = by_key(edges.map_batches(components.larger_first, batch_format="pyarrow"), "u", components.small_star).materialize()
        digest = edges.map_batches(components.fingerprint, batch_format="pyarrow").take_all()
        state = (sum(r["edges"] for r in digest), sum(int(r["digest"]) for r in digest) % (1 << 64))
        if state == previous:
            break
        previous = state
    return by_key(edges, "v", components.removed_of_star), round_number


def by_key(ds: ray.data.Dataset, key: str, fn: Callable[..., pa.Table], **fn_kwargs) -> ray.data.Dataset:
    """`fn` on whole hash partitions by `key`: every row of a key lands in one block (a Ray hash
    shuffle into `shuffle_partitions` blocks), and `fn` handles the block's groups at once, vectorised
    (stages.groups) — not Python once per group as `map_groups`."""
    partitions = ray.data.DataContext.get_current().default_hash_shuffle_parallelism
    return ds.repartition(partitions, keys=[key]).map_batches(fn, batch_format="pyarrow", batch_size=None, fn_kwargs=fn_kwargs)


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """A hash of the code that makes the records (stages, tokenizer, the build): a new version of
    codecorpus re-runs the steps of an existing run instead of mixing outputs of two versions."""
    import stages as stages_pkg
    import tokenizer as tokenizer_pkg

    digest = hashlib.sha256()
    roots = [Path(stages_pkg.__file__).parent, Path(tokenizer_pkg.__file__).parent]
    for path in sorted(p for root in roots for p in root.glob("*.py")) + [Path(__file__), Path(__file__).with_name("partitions.py")]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _fingerprint(parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_identity(path: str) -> list:
    """A file named by the config (benchmarks, vocabularies): path, size and modification time."""
    try:
        st = os.stat(Path(path).expanduser())
        return [str(path), st.st_size, st.st_mtime_ns]
    except OSError:
        return [str(path), None]


def _causes(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__


def _lost_to_the_cluster(exc: BaseException) -> str | None:
    """The name of the Ray failure (a dead node, worker or actor, a lost object) behind `exc`, if any."""
    lost = (ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError, ray.exceptions.WorkerCrashedError,
            ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError, ray.exceptions.LocalRayletDiedError)
    for cause in _causes(exc):
        if isinstance(cause, lost):
            return type(cause).__name__
    return None


WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


def _write_error(exc: BaseException) -> str | None:
    """'No space left on device: PATH' when a full, read-only or failing disk is behind `exc` (from a
    Ray task only the message survives, hence the text is read too)."""
    for cause in _causes(exc):
        if isinstance(cause, OSError) and cause.errno in WRITE_ERRNOS:
            return f"{os.strerror(cause.errno)}" + (f": {cause.filename}" if cause.filename else "")
        found = re.search(r"\[Errno (\d+)\] [^:\n]*(?:: '([^'\n]+)')?", str(cause))
        if found and int(found.group(1)) in WRITE_ERRNOS:
            return os.strerror(int(found.group(1))) + (f": {found.group(2)}" if found.group(2) else "")
    return None


def _parquet_rows(folder: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in Path(folder).glob("*.parquet"))


@ray.remote
def _local_components(edges_dir: str, out_dir: str) -> None:
    """Connected components of all candidate pairs by union-find in this one task (small graphs):
    the removed files and their survivors, written to `out_dir`."""
    import pyarrow.parquet as pq

    files = sorted(Path(edges_dir).glob("*.parquet"))
    edges = pa.concat_tables([pq.read_table(f) for f in files]) if files else near_dedup.EDGE_SCHEMA.empty_table()
    removed = near_dedup.cluster_survivors(edges.select(near_dedup.EDGE_SCHEMA.names))
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    pq.write_table(removed, str(Path(out_dir) / "removed.parquet"))


def _cluster_summary(removed: pa.Table) -> pa.Table:
    return pa.table({"summary": [json.dumps(near_dedup.cluster_summary(removed))]})


@ray.remote
def _names(records_dir: str, ids: list[str]) -> pa.Table:
    import pyarrow.dataset as pads

    return pads.dataset(records_dir, format="parquet").to_table(
        columns=["id", "repo", "path"], filter=pc.field("id").isin(pa.array(ids, pa.string())))


# Plain tasks rather than actor pools: an actor holds its CPU for the whole stage, which starves
# the write tasks on a one-CPU Ray. What a task needs loaded is cached per worker process, keyed by
# the file's identity so a new build's file is never mistaken for an old one.
@functools.lru_cache(maxsize=4)
def _load_removed(path: str, _identity: tuple) -> frozenset:
    import pyarrow.dataset as pads

    return frozenset(pads.dataset(path, format="parquet").to_table(columns=["id"]).column("id").to_pylist())


@functools.lru_cache(maxsize=4)
def _load_tokenizer(path: str, _identity: tuple):
    return load_tokenizer(path)


def _identity(path: str) -> tuple:
    st = os.stat(path)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _mark_near_duplicates(batch: pa.Table, removed_dir: str) -> pa.Table:
    return near_dedup.mark_near_duplicates(batch, _load_removed(removed_dir, _identity(removed_dir)))


def _tokenize(batch: pa.Table, tokenizer_path: str) -> pa.Table:
    tok = _load_tokenizer(tokenizer_path, _identity(tokenizer_path))
    tokens = pack.encode_batch(batch, tok, tok.token_to_id(EOD_TOKEN))
    # Keep the record columns for the books; the tokens replace the text.
    out = batch.drop_columns(["text"])
    return out.append_column("tokens", tokens.column("tokens")).append_column("num_tokens", tokens.column("num_tokens"))


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()

