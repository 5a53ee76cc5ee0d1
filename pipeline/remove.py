"""`codecorpus remove`: a finished run without the files of repositories that opted out.

The Stack's opt-out process re-cuts each release without the repositories whose owners asked to be
removed. Here the cut is a *new run* next to the old one (the old run is never written: a trainer
or a colleague may be reading it, and its manifest still describes its shards): the new run holds
the base's tokenizer, a manifest and books of its own, and shards. Files go to shards by a seeded
hash of their id (of their document's key, for repository documents), so a removed file touches one
shard: only the shards that held removed files are
packed again (from the base's 08_tokenize records, as `build` packs them, minus the removed files),
the others are hard links to the base's (copies across filesystems) and keep their bytes and sha256.

The new run's books add a stage, `10_opt_out` (in = the base's tokenized files, dropped as
`opted_out`); `stages/10_opt_out/` lists the removed files, and the manifest records the patterns,
when, and the base (path, manifest sha256). A removal of a removal reads the first run's records
and leaves out every file removed along the chain.

Runs on the driver without Ray: one pass over the base's records' metadata (the patterns, the
books), one over their token ids keeping the touched shards' files; it writes only those shards. The work is done under `OUT.partial/` and renamed when complete, so a
kill -9 leaves the new run absent (the same command starts it again) or complete.
"""
from __future__ import annotations

import datetime
import fnmatch
import hashlib
import os
import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from codecorpus.pipeline.errors import BuildError
from codecorpus.pipeline.placement import document_key, pack_keys
from codecorpus.pipeline.rundir import DOCUMENTS, RunDir
from codecorpus.stages import pack as packing
from codecorpus.stages.records import KEPT
from codecorpus.stages.summary import books_balance, merge, summarize

STAGE = "10_opt_out"
REASON = "opted_out"
METADATA = ["id", "source", "repo", "path", "language", "size", "num_tokens", "fim", "status"]
TOKENS = ["id", "source", "language", "tokens", "num_tokens", "status"]


def read_patterns(path: Path) -> list[str]:
    """One pattern a line (`owner/repo`, a glob on the repository or on `repo/path`, or a file id);
    blank lines and `#` comments skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildError(f"--repos {path}: cannot read it: {getattr(exc, 'strerror', None) or exc}") from None
    patterns = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if not patterns:
        raise BuildError(f"--repos {path}: no patterns in it (one a line: owner/repo, a glob, or a file id)")
    return patterns


def matches(patterns: list[str], ids: list[str], repos: list[str | None], paths: list[str | None]) -> tuple[list[bool], list[int]]:
    """For each file, whether a pattern matches it; for each pattern, how many files it matched."""
    hit = [False] * len(ids)
    counts = [0] * len(patterns)
    for i, (file_id, repo, path) in enumerate(zip(ids, repos, paths)):
        whole = f"{repo}/{path}" if repo and path else None
        for k, p in enumerate(patterns):
            if p == file_id or (repo and fnmatch.fnmatchcase(repo, p)) or (whole and fnmatch.fnmatchcase(whole, p)):
                hit[i] = True
                counts[k] += 1
    return hit, counts


def lineage(base: RunDir, manifest: dict) -> tuple[RunDir, Path | None]:
    """The build whose records a run's shards come from, and the files removed from it so far (a
    removal lists every file removed along its chain); `manifest`: the run's."""
    opt = manifest.get("opt_out")
    if opt is None:
        return base, None
    origin = RunDir(opt["origin"])
    if not os.path.isdir(origin.stage_dir("08_tokenize")):
        raise BuildError(f"{base.root}: the build it was cut from, {origin.root}, is gone; remove reads that build's records")
    return origin, Path(base.stage_dir(STAGE))


def check_base(base: RunDir) -> dict:
    if not os.path.isdir(base.root):
        raise BuildError(f"{base.root}: no such run folder")
    if not os.path.isfile(base.manifest_path):
        raise BuildError(f"{base.root}: not a finished run (no manifest.json): build it to the end first")
    return base.read_json(base.manifest_path)


def remove(base_path: Path, patterns_path: Path, out_path: Path, echo: Callable[[str], None]) -> dict:
    """Write the run `out_path`: `base_path`'s shards without the files the patterns match. Returns its manifest."""
    started = time.time()
    base, out = RunDir(base_path), RunDir(out_path)
    base_manifest = check_base(base)
    patterns = read_patterns(patterns_path)
    base_sha = hashlib.sha256(Path(base.manifest_path).read_bytes()).hexdigest()
    if out.root == base.root:
        raise BuildError(f"--out {out.root}: the base itself; the base is never written, name a new folder")
    if os.path.isfile(out.manifest_path):
        made = out.read_json(out.manifest_path)
        done = made.get("opt_out", {})
        if done.get("base_manifest_sha256") == base_sha and done.get("patterns") == patterns:
            echo(f"  {STAGE:<15} up to date ({out.root})")
            return made
    if os.path.exists(out.root):
        raise BuildError(f"--out {out.root}: exists and is not this removal's result; name a new folder")
    origin, removed_before = lineage(base, base_manifest)
    records = Path(origin.stage_dir("08_tokenize"))
    already = set(pads.dataset(str(removed_before), format="parquet").to_table(columns=["id"]).column("id").to_pylist()
                  ) if removed_before else set()

    dataset = pads.dataset(str(records), format="parquet")
    books, removed_table, per_pattern = _cut(dataset, patterns, already)
    unmatched = [p for p, m in zip(patterns, per_pattern) if not m]
    if unmatched:
        raise BuildError(f"--repos {patterns_path}: {len(unmatched)} pattern(s) match no file of {base.root}: "
                         + ", ".join(unmatched[:5]) + (" …" if len(unmatched) > 5 else ""))
    tokenized = base_manifest["stages"]["08_tokenize"]["kept"]
    if not books_balance(books) or books["in"] != tokenized:
        raise BuildError(f"{STAGE}: the books do not add up: in {books['in']:,} against 08_tokenize's {tokenized:,} kept files")
    removed_ids = set(removed_table.column("id").to_pylist())
    new_ids = removed_ids - already
    if not new_ids:
        raise BuildError(f"--repos {patterns_path}: every file the patterns match was removed already (in {base.root})")

    # the shards that held removed files, packed again
    pcfg = base_manifest["config"]["packing"]
    vocab_size, eod_id = base_manifest["tokenizer"]["vocab_size"], base_manifest["tokenizer"]["eod_id"]
    groups = packing.group_count(base_manifest["stages"]["08_tokenize"]["tokens"], vocab_size,
                              base_manifest["config"]["shards"]["target_bytes"])
    documents_dir = origin.stage_dir(DOCUMENTS) if pcfg["documents"] == "repo" else None
    touched = sorted({packing.seeded_hash(pcfg["seed"], key) % groups for key in _pack_keys_of(new_ids, documents_dir)})
    tmp = Path(out.root + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "shards").mkdir(parents=True)
    by_group = _gather(sorted(records.glob("*.parquet")), set(touched), removed_ids, pcfg["seed"], groups, tmp / "work",
                       documents_dir)
    repacked = {}
    for group in touched:
        rows = by_group.get(group)
        if rows is None:
            continue   # every file of the shard was removed: no shard
        table = pq.read_table(rows)
        table = reopen_documents(table) if documents_dir else table
        entry = packing.pack_group(table, str(tmp / "shards"), pcfg["seq_length"] + 1, vocab_size, eod_id,
                                   pack=pcfg["pack"], stride=pcfg["stride"]).to_pylist()[0]
        repacked[entry["shard"]] = entry
    shutil.rmtree(tmp / "work", ignore_errors=True)
    names = {f"shard-{g:05d}.arrow" for g in touched}
    shards = []
    for entry in base_manifest["shards"]:
        if entry["shard"] in names:
            if entry["shard"] in repacked:
                shards.append({k: repacked[entry["shard"]][k] for k in ("shard", "rows", "files", "tokens", "padding", "sha256")})
        else:
            _link(Path(base.shards) / entry["shard"], tmp / "shards" / entry["shard"])
            shards.append(dict(entry))
    if sum(s["files"] for s in shards) != books["kept"]:
        raise BuildError(f"{STAGE}: the shards hold {sum(s['files'] for s in shards):,} files but {books['kept']:,} were kept")

    # the books, the removed files, the tokenizer and the manifest; then the run appears
    shutil.copytree(Path(base.tokenizer_path).parent, tmp / "tokenizer")
    (tmp / "stages" / STAGE).mkdir(parents=True)
    pq.write_table(removed_table.sort_by("id"), tmp / "stages" / STAGE / "removed.parquet")
    books["seconds"] = round(time.time() - started, 2)
    manifest = _manifest(base_manifest, books, shards, removed_table, new_ids, patterns, base, base_sha, len(touched))
    manifest["opt_out"]["origin"] = str(origin.root)
    RunDir(tmp).write_json(str(tmp / "stats.json"), {"status": "complete", "stages": manifest["stages"], "tokens": manifest["tokens"],
                                                "elapsed_seconds": books["seconds"]})
    RunDir(tmp).write_json(str(tmp / "manifest.json"), manifest)
    os.rename(tmp, out.root)
    dropped = sum(books["dropped"].values())
    echo(f"  {STAGE:<15} in {books['in']:>8,}  kept {books['kept']:>8,}  dropped {dropped:>8,}  quarantined {0:>6,}  "
         f"({books['seconds']:.1f}s)")
    return manifest


def _cut(dataset: pads.Dataset, patterns: list[str], already: set[str]) -> tuple[dict, pa.Table, list[int]]:
    """One pass over the tokenized files' metadata: the books of the cut (the files the patterns match,
    and those removed `already` along the chain, dropped as opted_out), the removed files' records,
    and how many files each pattern matched."""
    summaries, removed = [], []
    per_pattern = [0] * len(patterns)
    for batch in dataset.to_batches(columns=METADATA, filter=pc.field("status") == KEPT):
        table = pa.Table.from_batches([batch])
        ids = table.column("id").to_pylist()
        hit, counts = matches(patterns, ids, table.column("repo").to_pylist(), table.column("path").to_pylist())
        per_pattern = [n + c for n, c in zip(per_pattern, counts)]
        mask = pa.array([h or i in already for h, i in zip(hit, ids)], pa.bool_())
        status = pc.if_else(mask, pa.scalar("dropped"), pa.scalar(KEPT))
        reason = pc.if_else(mask, pa.scalar(REASON), pa.scalar(None, pa.string()))
        rows = table.set_column(table.schema.get_field_index("status"), "status", status).append_column("reason", reason)
        summaries.append(summarize(rows))
        removed.append(rows.filter(mask))
    return merge(summaries), pa.concat_tables(removed), per_pattern


def _pack_keys_of(ids: set[str], documents_dir: str | None) -> set[str]:
    """The keys that placed these files' documents in shards: a file's id, or its repository document's key."""
    if documents_dir is None:
        return set(ids)
    docs = pads.dataset(documents_dir, format="parquet").to_table(
        columns=["id", "source", "repo", "document"], filter=pc.field("id").isin(sorted(ids)))
    columns = (docs.column(c).to_pylist() for c in ("id", "source", "repo", "document"))
    in_documents = {i: document_key(s, r, d) for i, s, r, d in zip(*columns)}
    return {in_documents.get(i, i) for i in ids}


def _gather(files: list[Path], touched: set[int], leave_out: set[str], seed: int, groups: int, work: Path,
            documents_dir: str | None) -> dict[int, Path]:
    """The remaining files of the touched groups, each group's in one Parquet file (one pass over the
    records). Repository documents (`documents_dir`): each file with its document and place in it, as
    `build` packs them (its `part` being the index of its 08_tokenize file)."""
    work.mkdir()
    writers: dict[int, pq.ParquetWriter] = {}
    leave = pa.array(sorted(leave_out), pa.string())
    columns = TOKENS + (["header"] if documents_dir else [])
    for part, path in enumerate(files):
        for batch in pq.ParquetFile(path).iter_batches(columns=columns):
            table = pa.Table.from_batches([batch])
            table = table.filter(pc.invert(pc.is_in(table.column("id"), value_set=leave)))
            if documents_dir:
                table = table.append_column("part", pa.array(np.full(table.num_rows, part, np.int32)))
            table = pack_keys(table, seed, groups, documents_dir)
            for group in set(table.column("pack_group").to_pylist()) & touched:
                rows = table.filter(pc.equal(table.column("pack_group"), group))
                if group not in writers:
                    writers[group] = pq.ParquetWriter(work / f"group-{group:05d}.parquet", rows.schema)
                writers[group].write_table(rows)
    for writer in writers.values():
        writer.close()
    return {g: work / f"group-{g:05d}.parquet" for g in writers}


def reopen_documents(group: pa.Table) -> pa.Table:
    """A repository document that lost files is opened by its first remaining file (which then carries
    the header) and closed by its last (then followed by EOD), as if the removed files had never been."""
    keys, ids = group.column("doc_key").to_pylist(), group.column("id").to_pylist()
    positions = group.column("position").to_pylist()
    span: dict[str, tuple[int, int]] = {}
    for key, file_id, pos in zip(keys, ids, positions):
        if key != file_id:                    # a file of a repository document (a file document's key is its id)
            lo, hi = span.get(key, (pos, pos))
            span[key] = (min(lo, pos), max(hi, pos))
    first = [key in span and pos == span[key][0] for key, pos in zip(keys, positions)]
    last = [key in span and pos == span[key][1] for key, pos in zip(keys, positions)]
    return (group.set_column(group.schema.get_field_index("first"), "first", pa.array(first, pa.bool_()))
            .set_column(group.schema.get_field_index("last"), "last", pa.array(last, pa.bool_())))


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _manifest(base: dict, books: dict, shards: list[dict], removed: pa.Table, new_ids: set[str], patterns: list[str],
              run: RunDir, base_sha: str, rewritten: int) -> dict:
    """The base's manifest with the new shards, books and totals, and what was removed (`removed`: every
    file removed along the chain; `new_ids`: by this removal)."""
    by_lang, by_source = dict(base["tokens"]["by_language"]), dict(base["tokens"]["by_source"])
    newly = removed.filter(pc.is_in(removed.column("id"), value_set=pa.array(sorted(new_ids), pa.string())))
    for row in newly.group_by(["language", "source"]).aggregate([("num_tokens", "sum")]).to_pylist():
        by_lang[row["language"]] -= row["num_tokens_sum"]
        by_source[row["source"]] -= row["num_tokens_sum"]
    repos = sorted({f"{s}:{r}" for s, r in zip(newly.column("source").to_pylist(), newly.column("repo").to_pylist()) if r})
    return {
        **base,
        "rows": sum(s["rows"] for s in shards),
        "tokens": {"total": sum(s["tokens"] for s in shards), "by_language": {k: v for k, v in by_lang.items() if v},
                   "by_source": {k: v for k, v in by_source.items() if v}},
        "stages": {**{k: v for k, v in base["stages"].items() if k != STAGE}, STAGE: books},
        "shards": shards,
        "fim": books.get("fim", {}),
        "opt_out": {"base": str(run.root), "base_manifest_sha256": base_sha, "patterns": patterns,
                    "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                    "files": newly.num_rows, "tokens": int(pc.sum(newly.column("num_tokens")).as_py() or 0),
                    "files_removed_in_all": removed.num_rows, "repositories": repos, "shards_rewritten": rewritten},
    }
