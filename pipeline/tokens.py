"""The token steps of a build: train the tokenizer on a language-balanced sample of the files that
survived dedup (or build CodeGeeX's), tokenize those files with their tag line in front, and pack
them into Arrow shards. Encoding goes through tokenizer.fast (tiktoken, the same ids) whenever the
tokenizer allows it, else through `tokenizers`."""
from __future__ import annotations

import functools
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc
import ray

from codecorpus import storage
from codecorpus.pipeline.config import PackingConfig, TokenizerConfig
from codecorpus.pipeline.execute import StageRunner
from codecorpus.pipeline.placement import pack_keys
from codecorpus.pipeline.rundir import DOCUMENTS, RunDir
from codecorpus.pipeline.shuffle import shuffle
from codecorpus.stages import pack as packing, tag
from codecorpus.stages.encode import Layout, encode_batch
from codecorpus.storage import parquet_files
from codecorpus.tokenizer.bpe import EOD_TOKEN, load_tokenizer, train_bpe
from codecorpus.tokenizer.special import special_ids
from codecorpus.tokenizer.codegeex import codegeex_tokenizer
from codecorpus.tokenizer.fast import fast_encoder


def sample_fractions(bytes_by_language: dict[str, int], sample_bytes: int, max_share: float) -> dict[str, float]:
    """The fraction of each language's files in the tokenizer's sample: no language contributes more than
    `max_share × sample_bytes`, and the whole sample is at most `sample_bytes`."""
    cap = max_share * sample_bytes
    target = {lang: min(n, cap) for lang, n in bytes_by_language.items()}
    scale = min(1.0, sample_bytes / (sum(target.values()) or 1))
    return {lang: (target[lang] * scale / n if n else 0.0) for lang, n in bytes_by_language.items()}


def _sample_keys(batch: pa.Table, fractions: dict[str, float], seed: int) -> pa.Table:
    """A deterministic sample (by a seeded hash of the id) with a global order for the tokenizer."""
    keys = [packing.seeded_hash(seed + 7, i) for i in batch.column("id").to_pylist()]
    langs = batch.column("language").to_pylist()
    mask = pa.array([k < fractions.get(lang, 0.0) * 2**64 for k, lang in zip(keys, langs)])
    order = pa.array([k - (1 << 63) for k in keys], pa.int64())
    return pa.table({"id": batch.column("id"), "sample_order": order}).filter(mask)


@ray.remote
def _sample_of(path: str, orders: dict[str, int]) -> pa.Table:
    """The sampled files of one file of the per-file pass: their sample order and tagged text."""
    batch = storage.read_parquet(path, ["id", "language", "text"])
    batch = batch.filter(pc.is_in(batch.column("id"), value_set=pa.array(list(orders), pa.string())))
    return pa.table({"sample_order": pa.array([orders[i] for i in batch.column("id").to_pylist()], pa.int64()),
                     "text": pa.array(tag.tagged_texts(batch), pa.large_string())})


def train_tokenizer(run: RunDir, tcfg: TokenizerConfig, seed: int, kept: dict[str, dict],
                    echo: Callable[[str], None]) -> None:
    """The run's tokenizer: CodeGeeX's from its files, or a BPE trained on a language-balanced sample
    (by a seeded hash of the id) of the files that survived dedup, `kept` being their books per language."""
    path = run.tokenizer_path
    if tcfg.kind == "codegeex":
        tok = codegeex_tokenizer(Path(tcfg.vocab_file).expanduser(), Path(tcfg.merges_file).expanduser())
        _save(tok, path)
        echo(f"  {'tokenizer':<15} CodeGeeX's {tok.get_vocab_size():,} ids from {tcfg.vocab_file} and {tcfg.merges_file}")
        return
    fractions = sample_fractions({k: v["bytes"] for k, v in kept.items()}, tcfg.sample_bytes, tcfg.max_language_share)
    survivors = parquet_files(run.stage_dir("06_near_dedup"))
    chosen = pa.concat_tables(ray.get([_chosen.remote(f, fractions, seed) for f in survivors]))
    orders = dict(zip(chosen.column("id").to_pylist(), chosen.column("sample_order").to_pylist()))
    # the sample (at most tokenizer.sample_bytes) in its seeded order
    sample = pa.concat_tables(ray.get([_sample_of.remote(f, orders) for f in parquet_files(run.files("kept"))]))
    sample = sample.sort_by("sample_order")
    t0 = time.time()
    tok = train_bpe(iter(sample.column("text").to_pylist()), vocab_size=tcfg.vocab_size, min_frequency=tcfg.min_frequency,
                    pre_tokenizer=tcfg.pre_tokenizer)
    _save(tok, path)
    sampled = sum(fractions[k] * v["bytes"] for k, v in kept.items())
    echo(f"  {'tokenizer':<15} {tok.get_vocab_size():,} ids trained on a {sampled / 1e6:,.1f} MB language-balanced sample "
               f"({time.time() - t0:.1f}s)")


@ray.remote
def _chosen(path: str, fractions: dict[str, float], seed: int) -> pa.Table:
    keys = storage.read_parquet(path, ["id", "language", "status"])
    return _sample_keys(keys.filter(pc.equal(keys.column("status"), "kept")), fractions, seed)


def _save(tok, path: str) -> None:
    with storage.Output(path) as local:
        tok.save(local)


REMOVED_IDS_PER_TASK = 2_000_000   # up to this many removed files, each tokenize task holds their ids


def survivors_by_shuffle(removed: int, components: str) -> bool:
    """Whether tokenize finds the files that survived dedup by a shuffle of the files and the dedup
    stages' records by id rather than by each task holding the removed ids: above REMOVED_IDS_PER_TASK
    removed files, or when near dedup was told to take its large-graph path (`components =
    "distributed"`: the whole build then runs as it would on a large corpus)."""
    return removed > REMOVED_IDS_PER_TASK or components == "distributed"


def tokenize(runner: StageRunner, fingerprint: str, by_shuffle: bool, layout: Layout) -> dict:
    """The files that survived dedup, tagged and encoded as `layout` lays documents out; returns the
    books of 08_tokenize. Each task holds the removed ids and maps the per-file pass's files
    (resumable partition by partition), or, `by_shuffle`, the files and the survivors' ids meet in a
    shuffle by id."""
    run = runner.run
    kwargs = {"tokenizer_path": run.tokenizer_path, "layout": layout, "tokenizer_identity": identity(run.tokenizer_path)}
    if by_shuffle:
        return runner.shuffle_stage("08_tokenize", {"files": parquet_files(run.files("kept")),
                                                    "survivors": parquet_files(run.stage_dir("06_near_dedup"))}, "id",
                                    functools.partial(_tokenize_joined, **kwargs), columns={"survivors": ["id", "status"]})
    removed = {d: identity(d) for d in (run.stage_dir(s) for s in ("05_exact_dedup", "06_near_dedup"))}
    return runner.map_stage("08_tokenize", fingerprint, run.files("kept"), _tokenize_survivors,
                            {**kwargs, "removed_dirs": removed})


def _tokenize_joined(files: pa.Table, survivors: pa.Table, tokenizer_path: str, layout: Layout,
                     tokenizer_identity: tuple) -> pa.Table:
    kept = survivors.filter(pc.equal(survivors.column("status"), "kept")).column("id").combine_chunks()
    return encode_records(files.filter(pc.is_in(files.column("id"), value_set=kept)), tokenizer_path, layout,
                          tokenizer_identity)


@functools.lru_cache(maxsize=4)
def _encoder(path: str, _identity: tuple):
    """(encode one text, special ids): tiktoken-speed where the tokenizer allows, else `tokenizers`."""
    tok = load_tokenizer(path)
    fast = fast_encoder(tok)
    return fast or (lambda text: tok.encode(text, add_special_tokens=False).ids), special_ids(tok)


def _tokenize_survivors(batch: pa.Table, tokenizer_path: str, removed_dirs: dict[str, tuple], layout: Layout,
                        tokenizer_identity: tuple) -> pa.Table:
    removed = [load_ids(d, ident) for d, ident in removed_dirs.items()]
    keep = pa.array([not any(i in r for r in removed) for i in batch.column("id").to_pylist()], pa.bool_())
    return encode_records(batch.filter(keep), tokenizer_path, layout, tokenizer_identity)


def encode_records(batch: pa.Table, tokenizer_path: str, layout: Layout = Layout(), tokenizer_identity: tuple | None = None) -> pa.Table:
    """The records with their tagged text replaced by its ids, laid out by `layout`
    (stages.encode): what tokenize writes, encoded through tokenizer.fast (tiktoken) where the
    tokenizer allows it. `tokenizer_identity` (identity() of the file, taken once by the driver)
    spares each batch a look at the file."""
    encode, special = _encoder(tokenizer_path, tokenizer_identity or identity(tokenizer_path))
    return encode_batch(batch, encode, special, layout)


def pack(run: RunDir, pcfg: PackingConfig, target_bytes: int, total_tokens: int, echo: Callable[[str], None]) -> list[dict]:
    """Documents spread over pack groups by a seeded hash of their key (a shuffle by group), each
    group packed into one shard of about `target_bytes` in its seeded order. Repository documents
    take their files' places from stages/09_documents (pipeline.documents). Returns the shards' entries."""
    row_length = pcfg.seq_length + 1
    tok = load_tokenizer(run.tokenizer_path)
    vocab_size, eod_id = tok.get_vocab_size(), tok.token_to_id(EOD_TOKEN)
    num_groups = packing.group_count(total_tokens, vocab_size, target_bytes)
    tmp = run.temp_for(run.shards)
    storage.make_dirs(tmp)
    columns = ["id", "source", "language", "tokens", "num_tokens", "status"]
    keys = dict(seed=pcfg.seed, num_groups=num_groups)
    if pcfg.documents == "repo":
        columns.append("header")
        keys["documents_dir"] = run.stage_dir(DOCUMENTS)
    entries = shuffle({"tokens": parquet_files(run.stage_dir("08_tokenize"))}, "pack_group", num_groups,
                      storage.join(run.work, "shuffle"), _pack_group,
                      dict(out_dir=tmp, row_length=row_length, vocab_size=vocab_size, eod_id=eod_id, pack=pcfg.pack,
                           stride=pcfg.stride),
                      columns={"tokens": columns}, transform={"tokens": (pack_keys, keys)},
                      index_column="part" if pcfg.documents == "repo" else None)
    run.publish(tmp, run.shards)
    shards = sorted(({**e, "tokens_by_language": json.loads(e["tokens_by_language"]),
                      "tokens_by_source": json.loads(e["tokens_by_source"])} for t in entries if t is not None
                     for e in t.to_pylist()), key=lambda e: e["shard"])
    echo(f"  {'pack':<15} {sum(s['rows'] for s in shards):,} rows of {row_length:,} ids in {len(shards)} shard(s)")
    return shards


def _pack_group(group: pa.Table, partition: int, out_dir: str, **kwargs) -> pa.Table | None:
    """One pack group's shard, written into `out_dir` (in object storage: packed into a local spool
    folder, then uploaded whole)."""
    if not group.num_rows:
        return None
    if not storage.is_remote(out_dir):
        return packing.pack_group(group, out_dir=out_dir, **kwargs)
    with tempfile.TemporaryDirectory(prefix="codecorpus-shard-") as spool:
        entry = packing.pack_group(group, out_dir=spool, **kwargs)
        for name in os.listdir(spool):
            with storage.Output(storage.join(out_dir, name)) as local:
                os.replace(os.path.join(spool, name), local)
    return entry


# What a task needs loaded is cached per worker process, keyed by the file's identity so that a new
# build's file is never mistaken for an old one.
@functools.lru_cache(maxsize=4)
def load_ids(path: str, _identity: tuple, removed: bool = True) -> frozenset:
    """The ids in a folder of Parquet files (`removed`: only those a stage did not keep, when it has a status)."""
    ds = storage.dataset(storage.parquet_files(path))
    flt = pc.field("status") != "kept" if removed and "status" in ds.schema.names else None
    return frozenset(ds.to_table(columns=["id"], filter=flt).column("id").to_pylist())


def identity(path: str) -> tuple:
    """What tells one file (or folder) from another put at the same path: on a disk its inode, size and
    time; in object storage its size and time (a folder: its objects' names, sizes and times)."""
    if not storage.is_remote(path):
        st = os.stat(path)
        return (st.st_ino, st.st_size, st.st_mtime_ns)
    entry = storage.stat(path)
    if entry is None:
        return ()
    if not entry.is_dir:
        return (entry.size, entry.mtime_ns)
    return tuple((e.path, e.size, e.mtime_ns) for e in storage.walk_files(path))
