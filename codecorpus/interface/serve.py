"""`codecorpus serve RUN`: a run in the browser, read-only (Flask; no front-end build step).

- `/`: the books (each stage's drops by reason), the languages kept, near dedup's similarity
  histogram and largest clusters, as bars; every bar opens the files behind it.
- `/files?stage=&reason=&language=&source=`: the files that match (the same query as `show`).
- `/file/ID`: one file's way through the stages, its text highlighted (Pygments).
- `/cluster/ID`: a kept file and the near duplicates removed for it; `/diff/ID`: a removed near
  duplicate side by side with its kept file.
Every request reads the run afresh (DuckDB over its Parquet), so a run still building shows what
is written so far. Bound to localhost by default.
"""
from __future__ import annotations

import difflib
import json
from pathlib import Path
from urllib.parse import urlencode

from flask import Flask, abort, request
from markupsafe import escape
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_by_name
from pygments.util import ClassNotFound

from codecorpus import storage
from codecorpus.interface.browse import connect, journey
from codecorpus.interface.show import LEXERS, SIMILARITY_BIN, Filters, select

STYLE = """body{font:14px system-ui,sans-serif;margin:1.5em;max-width:1200px}a{color:#0645ad;text-decoration:none}
table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left;vertical-align:top}
.bar{background:#4a7bd0;height:12px;display:inline-block}.num{text-align:right;font-variant-numeric:tabular-nums}
.meta{color:#555}.gone{color:#b00}pre{font-size:12px}table.diff{font:12px monospace}
.diff_add{background:#cfc}.diff_chg{background:#ffa}.diff_sub{background:#fcc}"""
SELFCHECK = """<script>window.__errors=[];window.addEventListener('error',function(e){__errors.push(String(e.message))});
(function(){var ce=console.error;console.error=function(){__errors.push(Array.prototype.join.call(arguments,' '));ce.apply(console,arguments)}})();
window.addEventListener('load',function(){document.body.setAttribute('data-selfcheck',JSON.stringify({errors:__errors,links:document.links.length}))});</script>"""


def page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{escape(title)} · codecorpus</title>{SELFCHECK}"
            f"<style>{STYLE}{HtmlFormatter().get_style_defs('.code')}</style></head><body>"
            f"<p><a href='/'>codecorpus</a> · {escape(title)}</p>{body}</body></html>")


def bars(rows: list[tuple[str, int, str]]) -> str:
    """A horizontal bar chart: (label, count, link) rows; each bar is a link."""
    most = max((n for _, n, _ in rows), default=1) or 1
    cells = "".join(f"<tr><td><a href='{escape(link)}'>{escape(label)}</a></td><td class=num>{n:,}</td>"
                    f"<td><a href='{escape(link)}'><span class=bar style='width:{max(1, round(400 * n / most))}px'></span></a></td></tr>"
                    for label, n, link in rows)
    return f"<table>{cells}</table>"


def code(text: str, language: str | None) -> str:
    try:
        lexer = get_lexer_by_name(LEXERS.get(language or "", (language or "text").lower()))
    except ClassNotFound:
        lexer = TextLexer()
    return highlight(text or "", lexer, HtmlFormatter(cssclass="code", linenos="table"))


def make_app(run: str | Path) -> Flask:
    run = str(run)
    app = Flask("codecorpus")

    @app.get("/")
    def index():
        con = connect(run)
        stats_path = storage.join(str(run), "stats.json")
        status = json.loads(storage.read_text(stats_path)).get("status", "?") if storage.is_file(stats_path) else "?"
        drops = con.execute("SELECT stage, reason, count(*) FROM rejects GROUP BY ALL ORDER BY stage, count(*) DESC").fetchall()
        langs = con.execute("SELECT coalesce(language, 'unknown'), count(*) FROM kept GROUP BY ALL ORDER BY 2 DESC").fetchall()
        sims = con.execute(f"SELECT {SIMILARITY_BIN} AS b, count(*) FROM clusters GROUP BY ALL ORDER BY b").fetchall()
        largest = con.execute("SELECT c.survivor_id, any_value(c.cluster_size), any_value(f.repo || '/' || f.path) FROM clusters c "
                              "LEFT JOIN files f ON f.id = c.survivor_id GROUP BY c.survivor_id ORDER BY 2 DESC, 1 LIMIT 15").fetchall()
        body = [f"<h1>{escape(run)}</h1><p class=meta>build status: {escape(status)}</p>",
                "<h2>Dropped, by stage and reason</h2>",
                bars([(f"{s} · {r}", n, "/files?" + urlencode({"stage": s, "reason": r})) for s, r, n in drops]),
                "<h2>Languages kept</h2>",
                bars([(lang, n, "/files?" + urlencode({"language": lang})) for lang, n in langs]),
                "<h2>Near duplicates removed, by similarity to their kept file</h2>",
                bars([(f"{b:.2f}–{b + 0.05:.2f}", n, "/files?" + urlencode({"stage": "06_near_dedup", "reason": "near_duplicate",
                                                                            "similarity": f"{b:.2f}"}))
                      for b, n in sims]),
                "<h2>Largest near-duplicate clusters</h2>",
                bars([(name or kept, size, f"/cluster/{kept}") for kept, size, name in largest])]
        return page("overview", "".join(body))

    @app.get("/files")
    def files():
        args = request.args
        limit = max(1, min(args.get("limit", 100, type=int), 1000))
        filters = Filters(stage=args.get("stage") or None, reason=args.get("reason") or None, language=args.get("language") or None,
                          source=args.get("source") or None, repo=args.get("repo") or None, path=args.get("path") or None,
                          limit=limit, similarity_bin=args.get("similarity", type=float))
        sql, params = select(filters)
        rows = connect(run).execute(f"SELECT id, repo, path, language, size, stage, reason FROM ({sql})", params).fetchall()
        title = " · ".join(f"{k} {v}" for k, v in args.items() if k != "limit") or "kept files"
        items = "".join(f"<tr><td><a href='/file/{escape(i)}'>{escape(repo)}/{escape(path)}</a></td><td>{escape(lang or '')}</td>"
                        f"<td class=num>{size:,}</td><td class=gone>{escape(reason or '')}</td></tr>"
                        for i, repo, path, lang, size, _, reason in rows)
        return page(title, f"<h1>{escape(title)}</h1><p class=meta>the first {len(rows):,} files</p><table>{items}</table>")

    @app.get("/file/<file_id>")
    def file(file_id: str):
        found = journey(connect(run), file_id)
        if found is None:
            abort(404)
        f = found["file"]
        steps = "".join(f"<tr><td>{escape(s['stage'])}</td><td class={'gone' if s['status'] != 'kept' else ''}>{escape(s['status'])}"
                        f"</td><td>{escape(s['reason'] or '')}</td></tr>" for s in found["stages"])
        dup = found.get("duplicates")
        near = (f"<p>near duplicate of <a href='/file/{escape(dup['kept']['id'])}'>{escape(dup['kept'].get('repo'))}/"
                f"{escape(dup['kept'].get('path'))}</a>, estimated Jaccard {dup['similarity']:.3f} — "
                f"<a href='/diff/{escape(file_id)}'>side by side</a> · <a href='/cluster/{escape(dup['kept']['id'])}'>its cluster</a></p>"
                if dup else "")
        redacted = ", ".join(f"{k} {v}" for k, v in sorted(f["redactions"].items()))
        meta = (f"<p class=meta>id {escape(f['id'])} · source {escape(f['source'])} · license {escape(f['license'] or '-')} · "
                f"language {escape(f['language'] or '-')} · {f['size']:,} bytes{' · redacted ' + escape(redacted) if redacted else ''}</p>")
        return page(f"{f['repo']}/{f['path']}", f"<h1>{escape(f['repo'])}/{escape(f['path'])}</h1>{meta}<table>{steps}</table>"
                    f"{near}{code(f['text'], f['language'])}")

    @app.get("/cluster/<kept_id>")
    def cluster(kept_id: str):
        con = connect(run)
        kept = con.execute("SELECT repo, path FROM files WHERE id = ?", [kept_id]).fetchone()
        members = con.execute("SELECT c.id, c.similarity, f.repo, f.path FROM clusters c LEFT JOIN files f USING (id) "
                              "WHERE c.survivor_id = ? ORDER BY c.similarity DESC, c.id", [kept_id]).fetchall()
        if kept is None or not members:
            abort(404)
        rows = "".join(f"<tr><td><a href='/diff/{escape(i)}'>{escape(repo)}/{escape(path)}</a></td><td class=num>{sim:.3f}</td></tr>"
                       for i, sim, repo, path in members)
        return page("cluster", f"<h1>Cluster of <a href='/file/{escape(kept_id)}'>{escape(kept[0])}/{escape(kept[1])}</a></h1>"
                    f"<p class=meta>kept: this file; removed as its near duplicates ({len(members):,}), by estimated Jaccard:</p>"
                    f"<table>{rows}</table>")

    @app.get("/diff/<file_id>")
    def diff(file_id: str):
        found = journey(connect(run), file_id)
        if found is None or "duplicates" not in found:
            abort(404)
        removed, kept = found["file"], found["duplicates"]["kept"]
        table = difflib.HtmlDiff(wrapcolumn=80).make_table((removed["text"] or "").splitlines(), (kept.get("text") or "").splitlines(),
                                                          f"removed: {removed['repo']}/{removed['path']}",
                                                          f"kept: {kept.get('repo')}/{kept.get('path')}", context=True, numlines=3)
        return page("diff", f"<h1>Near duplicate, estimated Jaccard {found['duplicates']['similarity']:.3f}</h1>"
                    f"<p><a href='/file/{escape(file_id)}'>removed file</a> · <a href='/file/{escape(kept['id'])}'>kept file</a> · "
                    f"<a href='/cluster/{escape(kept['id'])}'>cluster</a></p>{table}")

    return app
