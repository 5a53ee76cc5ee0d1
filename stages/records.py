"""The record every stage reads and writes, and the bookkeeping columns.

A stage never deletes a row: it marks it `dropped` or `quarantined` with a reason, so that the
books balance (records in = kept + dropped by reason + quarantined) and the rejects can be read
back from the stage's output. The next stage reads only the `kept` rows.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from codecorpus.stages.license import PERMISSIVE

KEPT, DROPPED, QUARANTINED = "kept", "dropped", "quarantined"

# the quality signals of a file (stages.quality_signals), set by the filter stage when `filters.rules = "quality"`
QUALITY_TYPE = pa.struct([
    ("lines", pa.int32()), ("code_lines", pa.int32()),
    ("alpha_share", pa.float32()), ("digit_share", pa.float32()), ("space_share", pa.float32()),
    ("comment_share", pa.float32()), ("data_line_share", pa.float32()), ("assert_share", pa.float32()),
    ("duplicate_line_share", pa.float32()), ("long_line_share", pa.float32()),
    ("encoded_max", pa.int32()), ("encoded_share", pa.float32()),
    ("xml_header", pa.bool_()), ("compiled_marker", pa.string()),
    ("html_visible_chars", pa.int32()), ("html_text_share", pa.float32()),
    ("import_share", pa.float32()), ("pass_share", pa.float32()), ("print_share", pa.float32()),
    ("def_share", pa.float32()), ("python_parses", pa.bool_()),
    ("main_count", pa.int32()), ("preprocessor_share", pa.float32()),
    ("content_language", pa.string()), ("content_confidence", pa.float32()),
])

RECORD_SCHEMA = pa.schema([
    ("id", pa.string()),          # one per input record: hash of source, origin, repo, path (and row)
    ("source", pa.string()),
    ("repo", pa.string()),
    ("path", pa.string()),
    ("license", pa.string()),
    ("language", pa.string()),
    ("text", pa.large_string()),
    ("size", pa.int64()),         # bytes on disk
    ("rank_key", pa.string()),    # the fixed survivor rule of dedup: smallest wins
    ("line_max", pa.int32()),     # longest line, set by the filter stage
    ("line_mean", pa.float32()),  # mean line length, set by the filter stage
    ("alnum_frac", pa.float32()), # fraction of alphanumeric characters, set by the filter stage
    ("comment_lang", pa.string()),  # natural language of the comments (sampled), set by the tag stage
    ("redactions", pa.map_(pa.string(), pa.int32())),  # secrets/personal data replaced, per kind, set by the clean stage
    ("quality", QUALITY_TYPE),    # quality signals, set by the filter stage under the quality rules
    ("status", pa.string()),
    ("reason", pa.string()),
])

# stages/09_documents (repository documents): each file's document, its place in it and what it imports
DOCUMENTS_SCHEMA = pa.schema([
    ("source", pa.string()), ("repo", pa.string()), ("document", pa.int32()), ("position", pa.int32()),
    ("id", pa.string()), ("path", pa.string()), ("language", pa.string()), ("tokens", pa.int64()),
    ("header_tokens", pa.int32()), ("last", pa.bool_()),
    ("references", pa.int32()), ("resolved", pa.int32()), ("depends_on", pa.list_(pa.string())), ("cycle", pa.int32()),
    ("broke_cycle", pa.bool_()),
    ("part", pa.int32()),
])


def record_id(source: str, repo: str, path: str, origin: str = "", row: int | str | None = None) -> str:
    """The record's id, one per input record whatever the input holds: a hash of the source, the
    record's `origin` (the input file or folder it was read from, relative to the source's paths, so
    the same file present twice under two names gives two ids), repository, path and, where one file
    holds many records (Parquet, JSON lines, the Pile), the row. The same input gives the same ids."""
    return xxhash.xxh3_128_hexdigest(f"{source}\0{origin}\0{repo}\0{path}\0{'' if row is None else row}".encode())


def new_record(source: str, repo: str | None, path: str | None, priority: int, *, text: str | None = None,
               size: int = 0, license: str | None = None, language: str | None = None, status: str = "kept",
               reason: str | None = None, id_key: str | None = None, origin: str = "", row: int | str | None = None) -> dict:
    """One record as the readers produce it (the columns of later stages left empty). `id_key` stands
    in for the path in the id and rank when there is no path (a Pile line); `origin` and `row` make
    the id unique per input record (record_id)."""
    key = path if id_key is None else id_key
    return dict(id=record_id(source, repo or "", key or "", origin, row), source=source, repo=repo, path=path, license=license,
                language=language, text=text, size=size, rank_key=rank_key(priority, repo or "", key or "", license),
                status=status, reason=reason)


def records_table(rows: list[dict]) -> pa.Table:
    """Rows from `new_record` as a table of RECORD_SCHEMA."""
    return pa.table({name: [row.get(name) for row in rows] for name in RECORD_SCHEMA.names}, schema=RECORD_SCHEMA)


def rank_key(priority: int, repo: str, path: str, license: str | None = None) -> str:
    """Dedup keeps the record whose key sorts first: source priority, then a permissive license, then
    repository and path."""
    permissive = "0" if license and license.lower() in PERMISSIVE else "1"
    return f"{priority:+06d}\0{permissive}\0{repo}\0{path}"


def mark(batch: pa.Table, reasons: list[str | None] | pa.Array, status: str = DROPPED) -> pa.Table:
    """Mark the rows with a non-null reason as `status` (dropped by default)."""
    reasons_arr = reasons if isinstance(reasons, pa.Array) else pa.array(reasons, pa.string())
    hit = pc.is_valid(reasons_arr)
    new_status = pc.if_else(hit, pa.scalar(status), batch.column("status"))
    new_reason = pc.if_else(hit, reasons_arr, batch.column("reason"))
    batch = batch.set_column(batch.schema.get_field_index("status"), "status", new_status)
    return batch.set_column(batch.schema.get_field_index("reason"), "reason", new_reason)


def kept_only(batch: pa.Table) -> pa.Table:
    return batch.filter(pc.equal(batch.column("status"), KEPT))
