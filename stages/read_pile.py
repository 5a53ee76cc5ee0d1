"""The Pile: jsonl(.zst/.gz) documents `{"text": ..., "meta": {"pile_set_name": ...}}`, streamed.

Only the configured set names are kept (by default "Github"); documents of other sets are counted
per set name (`pile_set:NAME`) and skipped without keeping their text. A line that is not JSON or
has no text is quarantined; a truncated or corrupt file quarantines one record for the damage after
keeping the lines before it. Pile documents have no path: the language comes from the content.
The id is a hash of the source, the file (its name and origin) and the line number.
"""
from __future__ import annotations

import json
import os
from typing import Iterator

import pyarrow as pa

from codecorpus.stages.records import DROPPED, QUARANTINED, new_record, records_table
from codecorpus.stages.textlines import TruncatedInput, iter_lines

BATCH_ROWS = 512


def _document(source: str, file: str, number: int, line: bytes, priority: int, keep: frozenset[str],
              max_bytes: int, origin: str = "") -> dict:
    rec = dict(source=source, repo=file, path=None, priority=priority, id_key=f"{number:012d}", size=len(line), origin=origin)
    try:
        doc = json.loads(line)
    except ValueError:
        return new_record(**rec, status=QUARANTINED, reason="invalid_json")
    if not isinstance(doc, dict) or not isinstance(doc.get("text"), str):
        return new_record(**rec, status=QUARANTINED, reason="missing_text")
    meta = doc.get("meta") if isinstance(doc.get("meta"), dict) else {}
    set_name = str(meta.get("pile_set_name", "unknown"))
    if set_name not in keep:
        return new_record(**rec, status=DROPPED, reason=f"pile_set:{set_name}")
    text = doc["text"]
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        return new_record(**dict(rec, size=size), status=DROPPED, reason="over_size_cap")
    if not text.strip():
        return new_record(**dict(rec, size=size), status=DROPPED, reason="empty")
    return new_record(**dict(rec, size=size), text=text)


def read_pile_file(source: str, path: str, priority: int, keep_set_names: list[str], max_file_bytes: int,
                   batch_rows: int = BATCH_ROWS, origin: str = "") -> Iterator[pa.Table]:
    """Tables of records, `batch_rows` at a time, as the file streams."""
    file = os.path.basename(path)
    keep = frozenset(keep_set_names)
    rows: list[dict] = []
    last = 0
    try:
        for number, line in iter_lines(path):
            last = number
            rows.append(_document(source, file, number, line, priority, keep, max_file_bytes, origin))
            if len(rows) >= batch_rows:
                yield records_table(rows)
                rows = []
    except (TruncatedInput, OSError) as exc:
        reason = "truncated_or_corrupt" if isinstance(exc, TruncatedInput) else f"unreadable:{type(exc).__name__}"
        rows.append(new_record(source, file, None, priority, id_key=f"{last + 1:012d}:damaged", origin=origin,
                               status=QUARANTINED, reason=reason))
    if rows:
        yield records_table(rows)
