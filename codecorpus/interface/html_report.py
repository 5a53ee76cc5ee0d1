"""`codecorpus stats RUN --html FILE`: one self-contained HTML page of plots and tables.

Plots are drawn with matplotlib and embedded as PNG data URIs, so the file can be mailed or
opened anywhere. The page checks itself on load (every image decoded, no script error) and
writes the result into `<body data-selfcheck=…>`, which the tests read from headless Chromium.
"""
from __future__ import annotations

import base64
import html
import io
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from codecorpus.interface.report import CODEGEEX_SHARES, final_languages  # noqa: E402
from codecorpus.stages.summary import books_balance  # noqa: E402

SELF_CHECK = """
<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || e)));
const origError = console.error;
console.error = (...a) => { window.__errors.push(a.join(' ')); origError(...a); };
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.selfcheck = JSON.stringify({images: imgs.length, loaded: ok, errors: window.__errors});
});
</script>
"""


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _bar_pairs(labels, a, b, label_a, label_b, title, ylabel):
    fig, ax = plt.subplots(figsize=(9, 3.6))
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], a, width=0.4, label=label_a)
    ax.bar([i + 0.2 for i in x], b, width=0.4, label=label_b)
    ax.set_xticks(list(x), labels, rotation=45, ha="right")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.legend()
    return _png(fig)


def _histogram_plot(hist: dict, title: str, xlabel: str, log_x: bool):
    fig, ax = plt.subplots(figsize=(9, 3.4))
    edges = hist["edges"]
    centers = [max(e, 1) for e in edges[:-1]]
    for part, style in (("in", "-"), ("kept", "--")):
        ax.step(centers, hist[part], style, where="post", label=f"{part} ({sum(hist[part]):,} files)")
    if log_x:
        ax.set_xscale("log", base=2)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("files")
    ax.legend()
    return _png(fig)


def plots(stats: dict, manifest: dict | None) -> list[tuple[str, str]]:
    """(caption, data URI) for every plot the run's statistics allow."""
    stages = stats.get("stages", {})
    out: list[tuple[str, str]] = []
    final = final_languages(stats)
    if final:
        total = sum(v["bytes"] for v in final.values()) or 1
        langs = sorted(set(final) | set(CODEGEEX_SHARES), key=lambda k: -final.get(k, {}).get("bytes", 0))
        ours = [100 * final.get(k, {}).get("bytes", 0) / total for k in langs]
        theirs = [CODEGEEX_SHARES.get(k, 0) for k in langs]
        out.append(("Language shares (bytes) against CodeGeeX-13B's corpus",
                    _bar_pairs(langs, ours, theirs, "this run", "CodeGeeX-13B", "Language shares", "% of bytes")))
    if stages:
        names = list(stages)
        fig, ax = plt.subplots(figsize=(9, 3.4))
        ax.bar(names, [stages[s]["kept"] for s in names], label="kept")
        ax.bar(names, [stages[s]["in"] - stages[s]["kept"] for s in names],
               bottom=[stages[s]["kept"] for s in names], label="dropped + quarantined")
        ax.set_title("The stage funnel")
        ax.set_ylabel("files")
        ax.tick_params(axis="x", rotation=30)
        ax.legend()
        out.append(("Files entering each stage, kept and removed", _png(fig)))
    hists = stages.get("03_filter", {}).get("histograms", {})
    if "size" in hists:
        out.append(("File sizes before and after filtering", _histogram_plot(hists["size"], "File size", "bytes", True)))
    if "line_mean" in hists:
        out.append(("Mean line length before and after filtering",
                    _histogram_plot(hists["line_mean"], "Mean line length", "characters", False)))
    if "line_max" in hists:
        out.append(("Longest line before and after filtering", _histogram_plot(hists["line_max"], "Longest line", "characters", True)))
    clusters = stages.get("06_near_dedup", {}).get("clusters")
    if clusters and clusters["size_histogram"]:
        fig, ax = plt.subplots(figsize=(6, 3.6))
        sizes = [int(k) for k in clusters["size_histogram"]]
        ax.loglog(sizes, list(clusters["size_histogram"].values()), "o")
        ax.set_title("Near-duplicate cluster sizes")
        ax.set_xlabel("files in cluster")
        ax.set_ylabel("clusters")
        out.append(("Near-duplicate cluster sizes (log-log)", _png(fig)))
    if clusters and clusters.get("similarity_histogram"):
        fig, ax = plt.subplots(figsize=(6, 3.2))
        bins = clusters["similarity_histogram"]
        ax.bar([float(k) for k in bins], list(bins.values()), width=0.045, align="edge")
        ax.set_title("Removed near duplicates: similarity to the kept file")
        ax.set_xlabel("estimated Jaccard similarity")
        ax.set_ylabel("files removed")
        out.append(("Similarity of removed near duplicates to the file kept", _png(fig)))
    tokens = (manifest or {}).get("tokens", {}).get("by_language", {})
    if tokens:
        fig, ax = plt.subplots(figsize=(9, 3.4))
        langs = sorted(tokens, key=lambda k: -tokens[k])
        ax.bar(langs, [tokens[k] for k in langs])
        ax.set_yscale("log")
        ax.set_title("Tokens per language")
        ax.tick_params(axis="x", rotation=45)
        out.append(("Tokens per language", _png(fig)))
    comments = stages.get("07_tag", {}).get("comment_languages", {})
    if comments:
        fig, ax = plt.subplots(figsize=(9, 3.4))
        top = list(comments.items())[:15]
        ax.bar([k for k, _ in top], [v for _, v in top])
        ax.set_title("Natural language of comments (sampled files)")
        out.append(("Natural language of comments", _png(fig)))
    return out


def _rows(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(stats: dict, manifest: dict | None, title: str) -> str:
    stages = stats.get("stages", {})
    funnel = _rows(["stage", "in", "kept", "dropped", "quarantined", "balanced"],
                   [[s, f"{b['in']:,}", f"{b['kept']:,}", f"{sum(b['dropped'].values()):,}",
                     f"{sum(b['quarantined'].values()):,}", "yes" if books_balance(b) else "NO"] for s, b in stages.items()])
    reasons = _rows(["stage", "status", "reason", "files"],
                    [[s, status, r, f"{n:,}"] for s, b in stages.items() for status in ("dropped", "quarantined")
                     for r, n in sorted(b[status].items(), key=lambda kv: -kv[1])])
    figures = "".join(f'<figure><img alt="{html.escape(c)}" src="{uri}"><figcaption>{html.escape(c)}</figcaption></figure>'
                      for c, uri in plots(stats, manifest))
    summary = ""
    if manifest:
        summary = (f"<p>{len(manifest['shards'])} shard(s), {manifest['rows']:,} rows of {manifest['row_length']:,} ids, "
                   f"{manifest['tokens']['total']:,} tokens, vocabulary {manifest['tokenizer']['vocab_size']:,}.</p>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:auto;padding:1em}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}
td:first-child,th:first-child{{text-align:left}}figure{{margin:1.5em 0}}img{{max-width:100%}}</style>
{SELF_CHECK}</head><body>
<h1>{html.escape(title)}</h1>
<p>status: {html.escape(str(stats.get('status', '?')))}, {len(stages)} stage(s) done.</p>{summary}
<h2>The funnel</h2>{funnel}
<h2>Dropped and quarantined</h2>{reasons}
<h2>Plots</h2>{figures}
<script type="application/json" id="stats">{html.escape(json.dumps(stats))}</script>
</body></html>
"""
