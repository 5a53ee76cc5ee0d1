"""`codecorpus show RUN …`: read the files of a run in the terminal, filtered like the stats' counts.

Without `--stage`/`--reason`, the files that reached the shards; with them, the files that stage
dropped or quarantined (for that reason). Each file: its metadata line (source, repo/path, license,
language, size, where and why it left, redactions), then its text highlighted (rich + Pygments),
paged like `git log` on a terminal. `--json` writes one JSON object per line instead. `--id ID`
follows one file through the stages and, for a near duplicate, shows the kept file it duplicates
side by side.
"""
from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass

import duckdb
from rich.console import Console, Group
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from codecorpus.interface.browse import META, STAGES, RunError, connect, journey

LEXERS = {"C++": "cpp", "C#": "csharp", "Objective-C": "objective-c", "Objective-C++": "objective-c++", "Shell": "bash",
          "CUDA": "cuda", "Visual Basic": "vbnet", "TeX": "tex", "Emacs Lisp": "emacs-lisp"}


@dataclass
class Filters:
    stage: str | None = None
    reason: str | None = None
    language: str | None = None
    source: str | None = None
    repo: str | None = None       # glob
    path: str | None = None       # glob
    grep: str | None = None       # regular expression over the text
    sample: int | None = None
    seed: int = 0
    limit: int = 20
    similarity_bin: float | None = None   # near duplicates whose similarity to their kept file is in this 0.05 bin
    where: str | None = None              # a SQL condition on the view's columns (`quality.comment_share > 0.5`)


SIMILARITY_BIN = "least(floor(similarity * 20 + 1e-9), 19) / 20"   # stages.near_dedup.similarity_bin, in SQL


def select(filters: Filters) -> tuple[str, list]:
    """The SQL (and its parameters) of the files that match."""
    dropped = filters.stage is not None or filters.reason is not None
    where, params = [], []
    for column, value, op in (("stage", filters.stage, "="), ("reason", filters.reason, "="), ("language", filters.language, "="),
                              ("source", filters.source, "="), ("repo", filters.repo, "GLOB"), ("path", filters.path, "GLOB")):
        if value is not None:
            where.append(f"{column} {op} ?")
            params.append(value)
    if filters.grep:
        where.append("regexp_matches(text, ?)")
        params.append(filters.grep)
    if filters.where:
        where.append(f"({filters.where})")
    if filters.similarity_bin is not None:
        where.append(f"id IN (SELECT id FROM clusters WHERE {SIMILARITY_BIN} = ?)")
        params.append(filters.similarity_bin)
    view = "rejects" if dropped else "(SELECT *, NULL::VARCHAR AS stage FROM kept)"
    if filters.sample:
        order, order_params = "hash({t}id || ?::VARCHAR), {t}id", [filters.seed]   # a seeded sample: the same for a seed
    else:
        order, order_params = "{t}source, {t}repo, {t}path, {t}id", []              # the same files in the same order
    limit = filters.sample or filters.limit
    # the files are chosen by their keys alone, then only the chosen ones' texts are read
    chosen = (f"SELECT id FROM {view}" + (" WHERE " + " AND ".join(where) if where else "") +
              f" ORDER BY {order.format(t='')}" + (f" LIMIT {int(limit)}" if limit else ""))
    sql = (f"SELECT {', '.join(f'v.{c}' for c in META)}, v.stage, v.text FROM {view} v "
           f"SEMI JOIN ({chosen}) c ON v.id = c.id ORDER BY {order.format(t='v.')}")
    return sql, params + order_params + order_params      # the order is used twice: to choose, then to list


def matching(run: str, filters: Filters):
    """The matching files, as dicts, streamed from DuckDB."""
    con = connect(run)
    sql, params = select(filters)
    try:
        result = con.execute(sql, params)
    except duckdb.Error as exc:          # a mistyped --where (the other filters are checked before)
        raise RunError(f"--where {filters.where!r}: {str(exc).splitlines()[0]}") from None
    names = [d[0] for d in result.description]
    while rows := result.fetchmany(64):
        for row in rows:
            record = dict(zip(names, row))
            record["redactions"] = dict(record["redactions"] or {})
            yield record


def header(record: dict) -> Text:
    line = Text()
    line.append(f"{record['repo']}/{record['path']}", style="bold yellow")
    line.append(f"  id {record['id']}  source {record['source']}  license {record['license'] or '-'}  "
                f"language {record['language'] or '-'}  {record['size']:,} bytes")
    if record.get("stage"):
        line.append(f"  {record['status']} at {record['stage']}: {record['reason']}", style="bold red")
    if record["redactions"]:
        line.append("  redacted " + ", ".join(f"{k} {v}" for k, v in sorted(record["redactions"].items())), style="magenta")
    return line


def syntax(text: str, language: str | None) -> Syntax:
    lexer = LEXERS.get(language or "", (language or "text").lower())
    try:
        return Syntax(text, lexer, line_numbers=True, word_wrap=True)
    except Exception:  # a language Pygments does not know
        return Syntax(text, "text", line_numbers=True, word_wrap=True)


def _pager(console: Console):
    """`less` as git runs it (colours kept, quits when the text fits one screen), on a terminal only."""
    if not console.is_terminal:
        return _nothing()
    os.environ.setdefault("LESS", "FRX")
    return console.pager(styles=True, links=False)


def show(run: str, filters: Filters, as_json: bool, console: Console) -> int:
    """Print the matching files; returns how many."""
    count = 0
    if as_json:
        for record in matching(run, filters):
            console.file.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
        return count
    with _pager(console):
        for record in matching(run, filters):
            console.print(header(record))
            console.print(syntax(record["text"] or "", record["language"]))
            console.print()
            count += 1
        if count == 0:
            console.print("no file matches")
    return count


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def side_by_side(left: str, right: str, context: int = 2, max_rows: int = 400) -> Table:
    """The changed lines of two texts in two columns, with `context` lines around each change."""
    table = Table(show_header=True, expand=True, show_lines=False)
    table.add_column("removed file", ratio=1, overflow="fold")
    table.add_column("kept file", ratio=1, overflow="fold")
    a, b = left.splitlines(), right.splitlines()
    rows = 0
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(context):
        for tag, i1, i2, j1, j2 in group:
            for k in range(max(i2 - i1, j2 - j1)):
                la = a[i1 + k] if i1 + k < i2 else ""
                lb = b[j1 + k] if j1 + k < j2 else ""
                style = None if tag == "equal" else "red" if tag == "delete" else "green" if tag == "insert" else "yellow"
                table.add_row(Text(la, style=style), Text(lb, style=style))
                rows += 1
                if rows >= max_rows:
                    return table
        table.add_row(Text("…", style="dim"), Text("…", style="dim"))
    return table


def show_journey(run: str, file_id: str, as_json: bool, console: Console) -> bool:
    """One file's way through the stages; False when the run has no such file."""
    found = journey(connect(run), file_id)
    if found is None:
        return False
    if as_json:
        console.file.write(json.dumps(found, ensure_ascii=False) + "\n")
        return True
    record = found["file"]
    steps = Table(title=None, show_header=True)
    for col in ("stage", "status", "reason"):
        steps.add_column(col)
    for s in found["stages"]:
        steps.add_row(s["stage"], s["status"], s["reason"] or "", style=None if s["status"] == "kept" else "bold red")
    if found["left_at"] is None and len(found["stages"]) == len(STAGES):
        steps.caption = "kept to the end: in the shards"
    parts = [header({**record, "stage": found["left_at"], "status": found["stages"][-1]["status"],
                     "reason": found["stages"][-1]["reason"]}), steps]
    doc = found.get("document")
    if doc:
        parts.append(Text(f"in repository document {doc['document']} of {doc['repo']}, at position {doc['position']} of its "
                          f"{doc['files']} files", style="bold"))
    dup = found.get("duplicates")
    if dup:
        kept = dup["kept"]
        parts.append(Text(f"near duplicate of {kept.get('repo')}/{kept.get('path')} (id {kept['id']}), estimated Jaccard "
                          f"{dup['similarity']:.3f}, a cluster of {dup['cluster_size']}", style="bold"))
        parts.append(side_by_side(record["text"] or "", kept.get("text") or ""))
    else:
        parts.append(syntax(record["text"] or "", record["language"]))
    with _pager(console):
        console.print(Panel(Group(*parts), title=file_id))
    return True
