"""A run's files as SQL: DuckDB views over the run's Parquet, read in place (nothing is copied).

Views, named after what a user asks about:
- `kept`     the files that reached the shards (with their text);
- `rejects`  every file a stage dropped or quarantined, with `stage`, `reason` and its text;
- `files`    every file the per-file pass kept (text, metadata), before dedup;
- `clusters` each removed near duplicate: `id`, the kept file it duplicates (`survivor_id`),
             their estimated Jaccard `similarity`, `cluster_size`;
- `shards`   the manifest's shards (file, rows, sha256);
- `documents` repository documents (`packing.documents = "repo"`): each file's `repo`, `document`,
             `position`, `id`, `path`, `tokens`, what it imports (`depends_on`) and its import `cycle`
             (empty for file documents: each file is its own);
- `stage_05_exact_dedup`, `stage_06_near_dedup`, `stage_08_tokenize`: each shuffle stage's records.
A stage that has not run yet (a build still going, or one that failed) is an empty view with the
same columns, and the per-file pass shows the partitions it finished so far, so the same query works
on a run at any point. Filters on `reason`, `stage`, `language`… are pushed down
to the Parquet files: DuckDB skips every file (row group) whose statistics exclude the value.

A run in object storage (`s3://bucket/runs/NAME`, codecorpus.storage) is read in place too: its
Parquet files are Arrow datasets over pyarrow's S3 filesystem, scanned by DuckDB (no DuckDB
extension is loaded or downloaded).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb

from codecorpus import storage
from codecorpus.errors import CodecorpusError
from codecorpus.pipeline.rundir import CLUSTERS, DOCUMENTS, FILES, SHUFFLE_STAGES, STAGES
from codecorpus.stages.per_file import KEPT_SCHEMA, REJECTS_SCHEMA
from codecorpus.stages.records import DOCUMENTS_SCHEMA

META = ["id", "source", "repo", "path", "license", "language", "size", "redactions", "quality", "status", "reason"]


class RunError(CodecorpusError):
    """Not a run folder (or not one this version reads)."""


def _written(stages: str, name: str, part: str) -> str:
    """A part of a stage's folder; while its step runs (or after it failed), of the partitions it
    finished so far (NAME.partial/, each file complete once it is there)."""
    folder = storage.join(stages, name)
    return storage.join(folder if storage.is_dir(folder) else f"{folder}.partial", part)


def connect(run: str | Path) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection (in memory) with the run's views, whatever the run's state: finished, still
    building, stopped or failed (a stage not written yet is an empty view with its columns)."""
    run = os.fspath(run)
    stages = storage.join(run, "stages")
    if not storage.is_file(storage.join(run, "stats.json")) and not storage.is_dir(stages):
        raise RunError(f"{run}: not a codecorpus run (no stats.json, no stages/)")
    con = duckdb.connect()
    empty_files, empty_rejects = KEPT_SCHEMA.empty_table(), REJECTS_SCHEMA.empty_table()
    con.register("empty_files", empty_files)
    con.register("empty_rejects", empty_rejects)

    def scan(name: str, folder: str, empty: str) -> str:
        """What a view reads: the folder's Parquet files (an Arrow dataset in object storage), else `empty`."""
        files = storage.parquet_files(folder)
        if files and storage.is_remote(run):
            con.register(f"parquet_{name}", storage.dataset(files))
            return f"parquet_{name}"
        return f"read_parquet({files!r})" if files else empty

    con.execute(f"CREATE VIEW files AS SELECT * FROM {scan('files', _written(stages, FILES, 'kept'), 'empty_files')}")
    keys = ", ".join(c for c in KEPT_SCHEMA.names if c not in ("text", "content_hash"))
    written = {}
    for name in SHUFFLE_STAGES:                       # a shuffle stage appears whole, never in part
        written[name] = scan(name, storage.join(stages, name), "")
        con.execute(f"CREATE VIEW stage_{name} AS SELECT * FROM " + (written[name] or f"(SELECT {keys} FROM empty_files)"))
    meta = ", ".join(f"r.{c}" for c in META)
    later = [f"SELECT {meta}, '{name}' AS stage, f.text FROM stage_{name} r JOIN files f USING (id) WHERE r.status <> 'kept'"
             for name in SHUFFLE_STAGES]
    early = f"SELECT {', '.join(META)}, stage, text FROM {scan('rejects', _written(stages, FILES, 'rejects'), 'empty_rejects')}"
    con.execute("CREATE VIEW rejects AS " + " UNION ALL ".join([early, *later]))
    last = next((name for name in reversed(SHUFFLE_STAGES) if written[name]), None)
    if last:
        con.execute(f"CREATE VIEW kept AS SELECT f.* FROM files f SEMI JOIN "
                    f"(SELECT id FROM stage_{last} WHERE status = 'kept') k USING (id)")
    else:
        con.execute("CREATE VIEW kept AS SELECT * FROM files")
    con.execute("CREATE VIEW clusters AS SELECT * FROM " + scan("clusters", storage.join(stages, CLUSTERS),
        "(SELECT NULL::VARCHAR AS id, NULL::VARCHAR AS survivor_id, NULL::BIGINT AS cluster_size, NULL::DOUBLE AS similarity WHERE false)"))
    con.register("empty_documents", DOCUMENTS_SCHEMA.empty_table())
    con.execute("CREATE VIEW documents AS SELECT * EXCLUDE (part) FROM " + scan("documents", storage.join(stages, DOCUMENTS), "empty_documents"))
    manifest = storage.join(run, "manifest.json")
    shards = json.loads(storage.read_text(manifest))["shards"] if storage.is_file(manifest) else []
    con.execute("CREATE TABLE shards (shard VARCHAR, rows BIGINT, sha256 VARCHAR)")
    if shards:
        con.executemany("INSERT INTO shards VALUES (?, ?, ?)", [(s["shard"], s["rows"], s.get("sha256")) for s in shards])
    return con


def query(run: str | Path, sql: str) -> tuple[list[str], list[tuple]]:
    """(column names, rows) of a SQL query over the run's views."""
    con = connect(run)
    try:
        result = con.execute(sql)
    except duckdb.Error as exc:
        raise RunError(f"query failed: {str(exc).splitlines()[0]}") from None
    return [d[0] for d in result.description], result.fetchall()


def journey(con: duckdb.DuckDBPyConnection, file_id: str) -> dict | None:
    """Where a file went: its record, each stage it passed (or where and why it left) and, for a near
    duplicate, the kept file it duplicates and their similarity."""
    row = con.execute(f"SELECT {', '.join(META)}, text FROM files WHERE id = ?", [file_id]).fetchone()
    left = con.execute("SELECT stage, status, reason, text FROM rejects WHERE id = ? LIMIT 1", [file_id]).fetchone()
    if row is None and left is None:
        return None
    if row is None:
        row = con.execute(f"SELECT {', '.join(META)}, text FROM rejects WHERE id = ? LIMIT 1", [file_id]).fetchone()
    record = dict(zip([*META, "text"], row))
    record["redactions"] = dict(record["redactions"] or {})
    stages = []
    for name in STAGES:
        if left and left[0] == name:
            stages.append({"stage": name, "status": left[1], "reason": left[2]})
            break
        stages.append({"stage": name, "status": "kept", "reason": None})
    out = {"file": record, "stages": stages, "left_at": left[0] if left else None}
    placed = con.execute("SELECT document, position, (SELECT count(*) FROM documents d WHERE d.source = x.source AND "
                         "d.repo = x.repo AND d.document = x.document) FROM documents x WHERE id = ?", [file_id]).fetchone()
    if placed:
        out["document"] = {"repo": record["repo"], "document": placed[0], "position": placed[1], "files": placed[2]}
    dup = con.execute("SELECT survivor_id, similarity, cluster_size FROM clusters WHERE id = ?", [file_id]).fetchone()
    if dup:
        kept = con.execute(f"SELECT {', '.join(META)}, text FROM files WHERE id = ?", [dup[0]]).fetchone()
        out["duplicates"] = {"kept": dict(zip([*META, "text"], kept)) if kept else {"id": dup[0]},
                             "similarity": dup[1], "cluster_size": dup[2]}
        out["duplicates"]["kept"]["redactions"] = dict(out["duplicates"]["kept"].get("redactions") or {})
    return out
