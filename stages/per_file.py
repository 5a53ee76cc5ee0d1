"""The per-file pass: every stage that looks at one file at a time, on a batch of ingested records.

ingest's books → language → filter → clean (secrets, benchmarks) → the tag stage's comment sample,
then what dedup needs of each kept file: its content hash, MinHash signature and LSH bucket keys. A record that a
stage drops or quarantines leaves here with that stage's name and reason (a reject, text included);
the rest go on. Each stage's summary is taken as records leave it, so every logical stage keeps its
own books although the file is read, and written, once.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from codecorpus.stages import clean, filters, langid, minhash, tag
from codecorpus.stages.decontaminate import Decontaminator
from codecorpus.stages.exact_dedup import add_content_hash
from codecorpus.stages.license import LicensePolicy
from codecorpus.stages.quality_rules import QualitySettings
from codecorpus.stages.records import KEPT, RECORD_SCHEMA
from codecorpus.stages.summary import summarize

PASS_STAGES = ("01_ingest", "02_language", "03_filter", "04_clean")
KEPT_SCHEMA = RECORD_SCHEMA.append(pa.field("content_hash", pa.string()))
REJECTS_SCHEMA = RECORD_SCHEMA.append(pa.field("stage", pa.string()))
BANDS_SCHEMA = pa.schema([("band_key", pa.int64()), ("id", pa.string()), ("rank_key", pa.string()),
                          ("content_hash", pa.string())])


def signatures_schema(num_perm: int) -> pa.Schema:
    """A file's signature as stored for near dedup's checks: the low 16 bits of each bin (two bins
    agree by chance with probability 2⁻¹⁶: no visible bias, half the bytes to shuffle)."""
    return pa.schema([("id", pa.string()), ("signature", pa.binary(2 * num_perm))])


@dataclass(frozen=True)
class NearDedupSettings:
    num_perm: int
    ngram: int
    seed: int
    bands: int
    rows: int
    exact_jaccard: bool = False


@dataclass(frozen=True)
class PerFileSettings:
    include: tuple[str, ...]
    min_confidence: float
    filters: tuple
    licenses: LicensePolicy | None
    redact_secrets: bool
    max_secret_fraction: float
    decontaminator: Decontaminator | None
    comment_sample: float
    near: NearDedupSettings | None
    quality: QualitySettings | None = None


def _stage_functions(s: PerFileSettings):
    return {
        "01_ingest": None,
        "02_language": lambda t: langid.identify_languages(t, list(s.include), s.min_confidence),
        "03_filter": lambda t: filters.apply_filters(t, list(s.filters), s.licenses, s.quality),
        "04_clean": lambda t: clean.clean_batch(t, s.redact_secrets, s.max_secret_fraction, s.decontaminator),
    }


def process(records: pa.Table, s: PerFileSettings) -> tuple[dict[str, pa.Table], dict[str, dict]]:
    """({"kept", "rejects", "bands", "signatures"} tables, each stage's summary) for one batch of ingested records."""
    summaries: dict[str, dict] = {}
    rejects = []
    table = records
    for stage, fn in _stage_functions(s).items():
        if fn is not None and table.num_rows:
            table = fn(table)
        summaries[stage] = summarize(table)
        is_kept = pc.equal(table.column("status"), KEPT)
        out = table.filter(pc.invert(is_kept))
        if out.num_rows:
            rejects.append(out.append_column("stage", pa.array([stage] * out.num_rows, pa.string())))
        table = table.filter(is_kept)
    table = tag.sample_comment_languages(table, s.comment_sample)
    table = add_content_hash(table)
    bands, signatures = band_rows(table, s.near)
    return {"kept": table.cast(KEPT_SCHEMA),
            "rejects": pa.concat_tables(rejects).cast(REJECTS_SCHEMA) if rejects else REJECTS_SCHEMA.empty_table(),
            "bands": bands, "signatures": signatures}, summaries


def band_rows(table: pa.Table, near: NearDedupSettings | None) -> tuple[pa.Table, pa.Table]:
    """(one row per (file, band): the LSH bucket the file falls into for that band (and, for the
    exact-Jaccard check, the file's shingle set); one row per file: its MinHash signature)."""
    if near is None or table.num_rows == 0:
        return _empty_bands(near), signatures_schema(near.num_perm if near else 1).empty_table()
    sig, present = minhash.signatures(table.column("text"), near.num_perm, near.ngram, near.seed)
    rows = np.flatnonzero(present)
    signatures = pa.table({"id": table.column("id").take(pa.array(rows)),
                           "signature": pa.FixedSizeBinaryArray.from_buffers(
                               pa.binary(2 * near.num_perm), len(rows), [None, pa.py_buffer(sig[rows].astype(np.uint16).tobytes())])},
                          schema=signatures_schema(near.num_perm))
    keys = minhash.band_keys(sig[rows], near.bands, near.rows)
    take = pa.array(np.repeat(rows, near.bands))
    out = pa.table({"band_key": pa.array(keys.reshape(-1), pa.int64()), "id": table.column("id").take(take),
                    "rank_key": table.column("rank_key").take(take), "content_hash": table.column("content_hash").take(take)})
    if near.exact_jaccard:
        sets = minhash.shingle_sets(table.column("text").take(pa.array(rows)), near.ngram)
        out = out.append_column("shingles", pa.array([sets[k].tobytes() for k in range(len(rows)) for _ in range(near.bands)],
                                                     pa.large_binary()))
    return out, signatures


def _empty_bands(near: NearDedupSettings | None) -> pa.Table:
    if near is not None and near.exact_jaccard:
        return BANDS_SCHEMA.append(pa.field("shingles", pa.large_binary())).empty_table()
    return BANDS_SCHEMA.empty_table()
