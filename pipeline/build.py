"""`codecorpus build`: the corpus stages run as Ray tasks, from source folders to Arrow shards.

The flow, one Ray execution per arrow:

    plan (driver: list the input, fingerprint it)
    → per-file pass (one Ray task per ingest partition: ingest, language, filter, clean,
      the comment sample, content hash and MinHash buckets; each file read and written once)
    → exact dedup (a shuffle of keys, no text) → near dedup (bucket shuffle, pairs checked by their
      signatures, files kept in order, marking)
    → tokenizer (trained on a sample, or CodeGeeX's) → tokenize (tiktoken-speed, partitioned;
      fill-in-the-middle where configured)
    → repository documents (packing.documents = "repo": a shuffle of the files' metadata by
      repository, dependency order, cut) → pack into shards (a shuffle by shard).

Every logical stage keeps its books (records in = kept + dropped by reason + quarantined, per
source and language), and the build checks that each stage's `in` is the previous stage's `kept`,
per source, down to the shards. The driver handles listings, small summaries and the tokenizer's
training sample stream, never the corpus. dedup.py and tokens.py hold the steps: each takes what it
needs and returns its books (and results), which the build checks and keeps.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import platform
import time
from concurrent.futures import Future
from importlib import metadata
from pathlib import Path
from typing import Callable

import pyarrow as pa
import ray

import codecorpus.stages
import codecorpus.tokenizer
from codecorpus import storage
from codecorpus.pipeline import dedup, documents, tokens
from codecorpus.pipeline.config import BuildConfig
from codecorpus.pipeline.errors import BuildError
from codecorpus.pipeline.execute import StageRunner
from codecorpus.pipeline.partitions import PartitionedStage
from codecorpus.pipeline.plan import plan_inputs
from codecorpus.pipeline.ray_runtime import lost_to_the_cluster, write_error
from codecorpus.pipeline.rundir import DOCUMENTS, FILES, PER_FILE_STAGES, PER_FILE_STEP, RunDir
from codecorpus.pipeline.view import PlainView
from codecorpus.stages import comments, near_dedup, per_file, read_scraped, sources
from codecorpus.stages.decontaminate import Decontaminator
from codecorpus.stages.encode import Layout
from codecorpus.stages.fim import FimSettings
from codecorpus.stages.filters import build_filters
from codecorpus.stages.license import LicensePolicy
from codecorpus.stages.pack import token_dtype
from codecorpus.stages.summary import books_balance, merge, passed_through
from codecorpus.tokenizer.bpe import EOD_TOKEN, load_tokenizer

VERSIONED_PACKAGES = ("codecorpus", "ray", "pyarrow", "tokenizers", "tiktoken", "numpy", "pydantic")
SHUFFLE_PARTITION_RECORDS = 20_000       # by default a shuffle partition holds at most this many records…
SHUFFLE_PARTITION_BYTES = 64 * 2**20     # …and this much text: what one reduce task holds in memory
STAGE_ATTEMPTS = 3            # a stage that loses a node or worker is run again (its finished partitions kept)


class Build:
    """One build in a run folder. Each step has a fingerprint: its config, the code version, and the
    fingerprint of the step before it (the first: the input files' paths, sizes and times). A step
    whose fingerprint and output are already in the run is skipped, so the same command after a crash
    goes on where it stopped, and a config change re-runs the step it touches and those after it."""

    def __init__(self, cfg: BuildConfig, run: RunDir, config_text: str, force: bool = False, view: PlainView | None = None,
                 planned: Future | None = None):
        self.cfg = cfg
        self.run = run
        self.config_text = config_text
        self.view = view or PlainView()
        self.echo = self.view.echo
        self.force = force
        self.books: dict[str, dict] = {}
        self.state: dict[str, dict] = {}
        self.fingerprints: dict[str, str] = {}
        self.planned = planned          # the input's plan (plan_inputs) when the caller started it already
        self.ingest_plan: tuple[list[dict], str] | None = None
        self.shards: list[dict] = []
        self.documents_found: dict | None = None
        self.started = self.stage_started = time.time()

    # -- the books ----------------------------------------------------------------------------
    def keep_books(self, stage: str, books: dict, seconds: float | None = None) -> dict:
        if not books_balance(books):
            raise BuildError(f"stage {stage}: the books do not balance: {books}")
        self.check_conservation(stage, books)
        books["seconds"] = round(time.time() - self.stage_started if seconds is None else seconds, 2)
        self.books[stage] = books
        self.write_stats(status="running")
        dropped = sum(books["dropped"].values())
        quarantined = sum(books["quarantined"].values())
        self.echo(f"  {stage:<15} in {books['in']:>8,}  kept {books['kept']:>8,}  dropped {dropped:>8,}"
                  f"  quarantined {quarantined:>6,}  ({books['seconds']:.1f}s)")
        if books["kept"] == 0:
            raise BuildError(f"no records left after stage {stage}: nothing to build from")
        return books

    def check_conservation(self, stage: str, books: dict) -> None:
        """Each stage's `in` must be the previous stage's `kept`, per source, in files and bytes: a
        record lost between two stages stops the build with one line naming where."""
        previous = [s for s in self.books if s != stage]
        if not previous:
            return
        before = self.books[previous[-1]]
        sources_ = sorted(set(before["by_source"]) | set(books["by_source"]))
        for source in sources_:
            kept = before["by_source"].get(source, {}).get("kept", 0)
            kept_bytes = before["by_source"].get(source, {}).get("kept_bytes", 0)
            got = books["by_source"].get(source, {})
            if got.get("in", 0) != kept or got.get("in_bytes", 0) != kept_bytes:
                raise BuildError(
                    f"stage {stage}: {kept - got.get('in', 0):,} record(s) ({kept_bytes - got.get('in_bytes', 0):,} bytes) "
                    f"of source {source} went missing between {previous[-1]} (kept {kept:,}) and {stage} (in {got.get('in', 0):,})")

    def write_stats(self, status: str, extra: dict | None = None) -> None:
        data = {"status": status, "stages": self.books, "elapsed_seconds": round(time.time() - self.started, 1)}
        data.update(extra or {})
        self.run.write_json(self.run.stats_path, data)

    def partitions(self) -> int:
        """Shuffle partitions: `ray.shuffle_partitions`, else enough that each holds a bounded share of
        the corpus (so a worker's memory does not grow with the input), and at least 2 × CPUs."""
        if self.cfg.ray.shuffle_partitions:
            return self.cfg.ray.shuffle_partitions
        books = self.books["04_clean"]
        cpus = int(ray.cluster_resources().get("CPU", 1))
        return max(2, 2 * cpus, math.ceil(books["kept"] / SHUFFLE_PARTITION_RECORDS),
                   math.ceil(books["kept_bytes"] / SHUFFLE_PARTITION_BYTES))

    def runner(self) -> StageRunner:
        return StageRunner(self.run, self.view, self.partitions())

    # -- the per-file pass --------------------------------------------------------------------
    def per_file_settings(self) -> per_file.PerFileSettings:
        cfg = self.cfg
        dc, near = cfg.decontamination, cfg.dedup.near
        bands, rows = near_dedup.lsh_params(near.threshold, near.num_perm)
        return per_file.PerFileSettings(
            include=tuple(cfg.languages.include), min_confidence=cfg.languages.min_confidence,
            filters=tuple(build_filters(cfg.filters)), licenses=LicensePolicy(list(cfg.licenses.keep), cfg.licenses.unknown),
            redact_secrets=cfg.privacy.redact, max_secret_fraction=cfg.privacy.max_secret_fraction,
            decontaminator=Decontaminator(list(dc.benchmarks), dc.ngram, dc.threshold, dc.min_chars) if dc.benchmarks else None,
            comment_sample=cfg.stats.comment_sample,
            near=per_file.NearDedupSettings(near.num_perm, near.ngram, near.seed, bands, rows, near.exact_jaccard)
            if near.enabled else None,
            quality=cfg.filters.quality.settings() if cfg.filters.rules == "quality" else None)

    def per_file_pass(self) -> None:
        """Ingest, language, filter and clean, one Ray task per ingest partition."""
        partitions, _ = self.ingest_plan
        settings = self.per_file_settings()
        bands, signatures = per_file.band_rows(per_file.KEPT_SCHEMA.empty_table(), settings.near)
        outputs = {"kept": per_file.KEPT_SCHEMA, "rejects": per_file.REJECTS_SCHEMA, "bands": bands.schema,
                   "signatures": signatures.schema}
        work = PartitionedStage(self.run.stage_dir(FILES), self.fingerprints[PER_FILE_STEP], outputs)
        written = StageRunner(self.run, self.view).run_partitions("per-file pass", work, partitions, _per_file_partition,
                                                                   {"settings": settings})
        summaries = [s["stages"] for s in written]
        total = len(partitions)
        seconds = time.time() - self.stage_started
        for stage in PER_FILE_STAGES:
            self.keep_books(stage, merge([s[stage] for s in summaries if stage in s]), seconds=seconds)
        work.publish(self.run.publish)
        mb = self.books["01_ingest"]["kept_bytes"] / 1e6
        self.echo(f"  {'per-file pass':<15} {total:,} partitions, {mb:,.1f} MB of text read, {seconds:.1f}s")

    # -- the steps ----------------------------------------------------------------------------
    def exact_dedup(self) -> None:
        self.keep_books("05_exact_dedup", dedup.exact_dedup(self.runner(), self.cfg.dedup.exact.enabled))

    def near_dedup(self) -> None:
        books, clusters = dedup.near_dedup(self.runner(), self.cfg.dedup.near, self.cfg.dedup.exact.enabled,
                                           self.fingerprints["06_near_dedup"])
        if clusters:
            books["clusters"] = clusters
        self.keep_books("06_near_dedup", books)

    def tag(self) -> None:
        """The tag stage drops nothing: its books are the kept part of near-dedup's (the tag line itself
        is put in front of each file when it is tokenized)."""
        self.keep_books("07_tag", passed_through(self.books["06_near_dedup"]), seconds=0.0)

    def train_tokenizer(self) -> None:
        tokens.train_tokenizer(self.run, self.cfg.tokenizer, self.cfg.packing.seed, self.books["07_tag"]["kept_by_language"],
                               self.echo)

    def tokenize(self) -> None:
        removed = self.books["04_clean"]["kept"] - self.books["06_near_dedup"]["kept"]
        by_shuffle = tokens.survivors_by_shuffle(removed, self.cfg.dedup.near.components)
        self.keep_books("08_tokenize", tokens.tokenize(self.runner(), self.fingerprints["08_tokenize"], by_shuffle, self.layout()))

    def layout(self) -> Layout:
        """How files become documents: FIM settings and, for repository documents, the sources read as
        repositories (scraped and CodeParrot; the Pile's files have none)."""
        cfg = self.cfg
        fim = FimSettings(rate=cfg.fim.rate, spm_rate=cfg.fim.spm_rate, file_rate=cfg.fim.file_rate, seed=cfg.packing.seed)
        repos = tuple(s.name for s in cfg.sources if s.kind != "pile") if cfg.packing.documents == "repo" else None
        return Layout(fim=fim, repo_sources=repos)

    def documents(self) -> None:
        started = time.time()
        self.documents_found = documents.documents(self.run, self.cfg.packing, self.partitions())
        d = self.documents_found
        self.echo(f"  {'09_documents':<15} {d['files']:,} files of {d['repositories']:,} repositories in {d['documents']:,} "
                  f"documents; {d['resolved']:,} of {d['references']:,} imports resolved, {d['cycles_broken']:,} cycles broken "
                  f"({time.time() - started:.1f}s)")

    def pack(self) -> None:
        self.shards = tokens.pack(self.run, self.cfg.packing, self.cfg.shards.target_bytes, self.books["08_tokenize"]["tokens"],
                                  self.echo)
        files = sum(s["files"] for s in self.shards)
        if files != self.books["08_tokenize"]["kept"]:
            raise BuildError(f"pack: the shards hold {files:,} files but 08_tokenize kept {self.books['08_tokenize']['kept']:,}")

    def steps(self) -> list[tuple[str, Callable[[], object], object]]:
        """(name, method, what of the config it depends on) in order; a fingerprint covers the config
        part, the code version and the step before."""
        cfg = self.cfg
        bench_files = [_file_identity(p) for p in cfg.decontamination.benchmarks]
        vocab_files = [_file_identity(p) for p in (cfg.tokenizer.vocab_file, cfg.tokenizer.merges_file) if p]
        near = cfg.dedup.near.model_dump(mode="json")
        return [
            (PER_FILE_STEP, self.per_file_pass, [[s.model_dump(mode="json") for s in cfg.sources], cfg.languages.model_dump(mode="json"),
                                         cfg.filters.model_dump(mode="json"), cfg.licenses.model_dump(mode="json"),
                                         cfg.privacy.model_dump(mode="json"), cfg.decontamination.model_dump(mode="json"),
                                         bench_files, cfg.stats.model_dump(mode="json"),
                                         {k: near[k] for k in ("enabled", "num_perm", "ngram", "threshold", "seed", "exact_jaccard")}]),
            ("05_exact_dedup", self.exact_dedup, cfg.dedup.exact.model_dump(mode="json")),
            ("06_near_dedup", self.near_dedup, near),
            ("07_tag", self.tag, None),
            ("tokenizer", self.train_tokenizer, [cfg.tokenizer.model_dump(mode="json"), cfg.packing.seed, vocab_files,
                                                 _version("tokenizers")]),
            ("08_tokenize", self.tokenize, [cfg.fim.model_dump(mode="json"), cfg.packing.documents]),
            *([(DOCUMENTS, self.documents, cfg.packing.model_dump(mode="json"))] if cfg.packing.documents == "repo" else []),
            ("pack", self.pack, [cfg.packing.model_dump(mode="json"), cfg.shards.model_dump(mode="json")]),
        ]

    def output_of(self, step: str) -> str:
        return {"tokenizer": self.run.tokenizer_path, "pack": self.run.shards, PER_FILE_STEP: self.run.stage_dir(FILES),
                "07_tag": self.run.stage_dir("06_near_dedup")}.get(step) or self.run.stage_dir(step)

    def stages_of(self, step: str) -> list[str]:
        return list(PER_FILE_STAGES) if step == PER_FILE_STEP else [step]

    def run_all(self) -> dict:
        self.run.prepare()
        with self.run.lock():
            if self.force:
                self.run.forget()
            self.state = self.run.read_state()
            self.write_stats(status="running")
            try:
                started = time.time()
                self.ingest_plan = self.planned.result() if self.planned else plan_inputs(self.cfg)
                self.echo(f"  {'plan':<15} {len(self.ingest_plan[0]):,} partitions ({time.time() - started:.1f}s)")
                previous = self.ingest_plan[1]
                for name, step, config in self.steps():
                    self.fingerprints[name] = previous = _fingerprint([name, code_version(), previous, config])
                    done = self.state.get(name, {})
                    if done.get("fingerprint") == previous and storage.exists(self.output_of(name)):
                        self.books.update(done.get("books", {}))
                        self.documents_found = done.get("found", self.documents_found)
                        for stage in self.stages_of(name):
                            self.echo(f"  {stage:<15} up to date (fingerprint {previous})")
                        continue
                    self.run_step(name, step)
                    self.state[name] = {"fingerprint": previous,
                                        "books": {k: v for k, v in self.books.items() if k in self.stages_of(name)},
                                        **({"shards": self.shards} if name == "pack" else {}),
                                        **({"found": self.documents_found} if name == DOCUMENTS else {})}
                    self.run.write_state(self.state)
            except BaseException as exc:
                self.write_stats(status="failed", extra={"error": f"{type(exc).__name__}: {exc}"[:2000]})
                raise
            manifest = self.manifest(self.ingest_plan[1], self.state["pack"]["shards"])
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
                lost = lost_to_the_cluster(exc)
                if lost and attempt < STAGE_ATTEMPTS:
                    self.echo(f"  {name:<15} Ray lost part of the work ({lost}); running the step again, finished partitions kept")
                    for stage in self.stages_of(name):
                        self.books.pop(stage, None)
                    continue
                cannot_write = write_error(exc)
                if cannot_write is not None:
                    raise BuildError(f"step {name}: cannot write: {cannot_write}. The steps before it are complete and kept; "
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
            "dtype": str(token_dtype(tok.get_vocab_size())),
            "rows": sum(s["rows"] for s in shards),
            "tokens": {"total": sum(s["tokens"] for s in shards), "by_language": dict(sorted(by_lang.items())),
                       "by_source": dict(sorted(by_source.items()))},
            "stages": self.books,
            "shards": [{k: s[k] for k in ("shard", "rows", "files", "tokens", "padding", "sha256")} for s in shards],
            "documents": {"kind": self.cfg.packing.documents, **(self.documents_found or {})},
            "fim": self.books.get("08_tokenize", {}).get("fim", {}),
        }


# -- functions that run on Ray workers ------------------------------------------------------------
def _ingest_partition(payload: dict):
    """The records of one ingest partition, as they are read."""
    if "unit" in payload:
        yield from sources.read_unit(pa.Table.from_pylist([payload["unit"]]))
    elif payload["files"]:
        yield read_scraped.read_files(pa.Table.from_pylist(payload["files"]))


def _per_file_partition(payload: dict, settings: per_file.PerFileSettings):
    """One partition of the per-file pass: its records read, then every per-file stage, batch by batch."""
    for records in _ingest_partition(payload):
        yield per_file.process(records, settings)


def warm_up() -> None:
    """What the build's tasks import and load on first use, done by each worker before its first task
    (codecorpus.pipeline.ray_runtime.warm_workers): a worker that unpickles this function imports this
    module, and with it every step's; then langdetect's profiles are read."""
    comments.load_profiles()


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """A hash of the code that makes the records (stages, tokenizer, the build): a new version of
    codecorpus re-runs the steps of an existing run instead of mixing outputs of two versions."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    roots = [Path(codecorpus.stages.__file__).parent, Path(codecorpus.tokenizer.__file__).parent]
    ours = [here / n for n in ("build.py", "execute.py", "partitions.py", "plan.py", "dedup.py", "tokens.py", "shuffle.py",
                                 "increment.py", "chain.py", "documents.py", "placement.py")]
    for path in sorted(p for root in roots for p in root.glob("*.py")) + ours:
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


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _sha256(path: str) -> str:
    return hashlib.sha256(storage.read_bytes(path)).hexdigest()

