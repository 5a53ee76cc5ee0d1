"""Mergeable per-block summaries of a stage: the books and the histograms behind `codecorpus stats`.

Each write task summarises the blocks it writes (files and bytes per source, language, status
and reason; histograms of file size and line length for the records in and the records kept;
the natural language of comments where it was sampled). Summaries add up, so the driver merges
a handful of small dicts and never sees a record.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from codecorpus.stages.records import KEPT

BOOK_KEYS = ["source", "language", "status", "reason"]
# Histogram bins: sizes and maximum line lengths on a log2 scale, mean line lengths linear.
LOG2_EDGES = [0] + [2**i for i in range(0, 32)]
MEAN_EDGES = list(range(0, 205, 5)) + [1 << 30]
HISTOGRAMS = {"size": LOG2_EDGES, "line_max": LOG2_EDGES, "line_mean": MEAN_EDGES}


def _histogram(values: pa.ChunkedArray | pa.Array, edges: list[int]) -> list[int]:
    arr = pc.drop_null(values).to_numpy(zero_copy_only=False)
    counts, _ = np.histogram(np.clip(arr, edges[0], edges[-1] - 1), bins=edges)
    return counts.tolist()


def summarize(table: pa.Table) -> dict:
    """The summary of one block of records."""
    keys = table.select(BOOK_KEYS).cast(pa.schema([(k, pa.string()) for k in BOOK_KEYS]))
    sizes = pc.fill_null(table.column("size"), 0)
    grouped = keys.append_column("size", sizes).group_by(BOOK_KEYS, use_threads=False).aggregate(
        [("size", "count"), ("size", "sum")])
    n, nbytes = {}, {}
    for row in grouped.to_pylist():
        key = "|".join(row[k] or "" for k in BOOK_KEYS)
        n[key], nbytes[key] = row["size_count"], row["size_sum"]
    kept = table.filter(pc.equal(table.column("status"), KEPT))
    hist = {}
    for column, edges in HISTOGRAMS.items():
        if column in table.column_names and table.column(column).null_count < table.num_rows:
            hist[column] = {"in": _histogram(table.column(column), edges), "kept": _histogram(kept.column(column), edges)}
    comments = {}
    if "comment_lang" in table.column_names:
        comments = dict(Counter(v for v in kept.column("comment_lang").to_pylist() if v))
    redactions: Counter = Counter()
    if "redactions" in table.column_names and kept.column("redactions").null_count < kept.num_rows:
        for pairs in kept.column("redactions").to_pylist():
            redactions.update(dict(pairs or []))
    tokens = int(pc.sum(kept.column("num_tokens")).as_py() or 0) if "num_tokens" in table.column_names else 0
    fim = {}
    if "fim" in table.column_names:   # files and tokens per FIM order (null: left to right)
        transformed = kept.select(["fim", "num_tokens"]).filter(pc.is_valid(kept.column("fim")))
        for row in transformed.group_by("fim", use_threads=False).aggregate([("num_tokens", "count"), ("num_tokens", "sum")]).to_pylist():
            fim[f"{row['fim']}_files"], fim[f"{row['fim']}_tokens"] = row["num_tokens_count"], row["num_tokens_sum"]
    return {"n": n, "bytes": nbytes, "hist": hist, "comment_languages": comments, "redactions": dict(redactions), "tokens": tokens,
            "fim": fim}


def combine(a: dict | None, b: dict) -> dict:
    """Two block summaries as one (what a partition stores for the blocks it wrote)."""
    if a is None:
        return b
    hist = {column: {part: [x + y for x, y in zip(a["hist"][column][part], b["hist"][column][part])] for part in ("in", "kept")}
            for column in a["hist"] if column in b["hist"]}
    hist.update({c: v for c, v in a["hist"].items() if c not in b["hist"]})
    hist.update({c: v for c, v in b["hist"].items() if c not in a["hist"]})
    return {"hist": hist, "tokens": a.get("tokens", 0) + b.get("tokens", 0), "fim": _add(a.get("fim", {}), b.get("fim", {})),
            **{key: _add(a[key], b[key]) for key in ("n", "bytes", "comment_languages", "redactions")}}


def _add(x: dict, y: dict) -> dict:
    return {k: x.get(k, 0) + y.get(k, 0) for k in x.keys() | y.keys()}


def merge(summaries: list[dict]) -> dict:
    """Merge block summaries into a stage's statistics: the books, by reason, source and language."""
    n: Counter = Counter()
    nbytes: Counter = Counter()
    hist: dict = {}
    comments: Counter = Counter()
    redactions: Counter = Counter()
    tokens = 0
    fim: Counter = Counter()
    for s in summaries:
        tokens += s.get("tokens", 0)
        fim.update(s.get("fim", {}))
        redactions.update(s.get("redactions", {}))
        n.update(s["n"])
        nbytes.update(s["bytes"])
        comments.update(s.get("comment_languages", {}))
        for column, parts in s.get("hist", {}).items():
            target = hist.setdefault(column, {"edges": HISTOGRAMS[column], "in": None, "kept": None})
            for part in ("in", "kept"):
                target[part] = parts[part] if target[part] is None else [a + b for a, b in zip(target[part], parts[part])]
    out = {"in": 0, "kept": 0, "in_bytes": 0, "kept_bytes": 0, "dropped": {}, "quarantined": {},
           "by_source": {}, "by_language": {}, "kept_by_language": {}}
    for key, count in sorted(n.items()):
        source, lang, status, reason = key.split("|")
        out["in"] += count
        out["in_bytes"] += nbytes[key]
        src = out["by_source"].setdefault(source, {"in": 0, "kept": 0, "dropped": 0, "quarantined": 0, "in_bytes": 0, "kept_bytes": 0})
        src["in"] += count
        src[status] += count
        src["in_bytes"] += nbytes[key]
        lang_in = out["by_language"].setdefault(lang or "unknown", {"in": 0, "kept": 0, "in_bytes": 0, "kept_bytes": 0})
        lang_in["in"] += count
        lang_in["in_bytes"] += nbytes[key]
        if status == KEPT:
            out["kept"] += count
            out["kept_bytes"] += nbytes[key]
            src["kept_bytes"] += nbytes[key]
            lang_in["kept"] += count
            lang_in["kept_bytes"] += nbytes[key]
            lang_books = out["kept_by_language"].setdefault(lang or "unknown", {"files": 0, "bytes": 0})
            lang_books["files"] += count
            lang_books["bytes"] += nbytes[key]
        else:
            out[status][reason] = out[status].get(reason, 0) + count
    if hist:
        out["histograms"] = hist
    if comments:
        out["comment_languages"] = dict(comments.most_common())
    if redactions:
        out["redactions"] = dict(redactions.most_common())
    if tokens:
        out["tokens"] = tokens
    if fim:
        out["fim"] = dict(sorted(fim.items()))
    return out


def books_balance(stage: dict) -> bool:
    return stage["in"] == stage["kept"] + sum(stage["dropped"].values()) + sum(stage["quarantined"].values())


def passed_through(stage: dict) -> dict:
    """The books of a stage that keeps everything it is given: what `stage` kept, as in and kept."""
    kept_sources = {src: {"in": b["kept"], "kept": b["kept"], "dropped": 0, "quarantined": 0,
                          "in_bytes": b["kept_bytes"], "kept_bytes": b["kept_bytes"]}
                    for src, b in stage["by_source"].items() if b["kept"]}
    languages = {lang: {"in": b["files"], "kept": b["files"], "in_bytes": b["bytes"], "kept_bytes": b["bytes"]}
                 for lang, b in stage["kept_by_language"].items()}
    out = {"in": stage["kept"], "kept": stage["kept"], "in_bytes": stage["kept_bytes"], "kept_bytes": stage["kept_bytes"],
           "dropped": {}, "quarantined": {}, "by_source": kept_sources, "by_language": languages,
           "kept_by_language": dict(stage["kept_by_language"])}
    if "histograms" in stage:
        out["histograms"] = {c: {**h, "in": h["kept"]} for c, h in stage["histograms"].items()}
    for key in ("comment_languages", "redactions"):
        if key in stage:
            out[key] = dict(stage[key])
    return out
