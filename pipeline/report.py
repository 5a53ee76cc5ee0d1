"""`codecorpus stats`: the books of a run, read from its stats.json (never from the corpus)."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from stages.langid import CODEGEEX_LANGUAGES
from stages.records import books_balance

# CodeGeeX-13B's corpus shares (SPEC §3); the last 13 languages share 3.10% together.
CODEGEEX_SHARES = {"C++": 28.50, "Python": 26.67, "Java": 15.98, "JavaScript": 7.13, "C": 6.72, "Go": 4.71,
                   "HTML": 3.11, "Shell": 1.73, "PHP": 1.37, "CSS": 0.99}


def render(stats: dict, manifest: dict | None, console: Console) -> None:
    console.print(f"[bold]status:[/bold] {stats.get('status', '?')}   elapsed {stats.get('elapsed_seconds', 0):,.0f}s")
    books = stats.get("stages", {})
    funnel = Table(title="Books per stage (in = kept + dropped + quarantined)")
    for col in ("stage", "in", "kept", "dropped", "quarantined", "balanced", "seconds"):
        funnel.add_column(col, justify="left" if col == "stage" else "right")
    for stage, b in books.items():
        funnel.add_row(stage, f"{b['in']:,}", f"{b['kept']:,}", f"{sum(b['dropped'].values()):,}",
                       f"{sum(b['quarantined'].values()):,}", "yes" if books_balance(b) else "[red]NO[/red]",
                       f"{b.get('seconds', 0):.1f}")
    console.print(funnel)

    reasons = Table(title="Dropped and quarantined, by reason")
    for col in ("stage", "status", "reason", "files"):
        reasons.add_column(col, justify="right" if col == "files" else "left")
    for stage, b in books.items():
        for status in ("dropped", "quarantined"):
            for reason, n in sorted(b[status].items(), key=lambda kv: -kv[1]):
                reasons.add_row(stage, status, reason, f"{n:,}")
    console.print(reasons)

    sources = Table(title="Per source, first stage → last stage")
    for col in ("source", "files in", "files kept"):
        sources.add_column(col, justify="left" if col == "source" else "right")
    if books:
        first, last = next(iter(books.values())), list(books.values())[-1]
        for src, b in first["by_source"].items():
            sources.add_row(src, f"{b['in']:,}", f"{last['by_source'].get(src, {}).get('kept', 0):,}")
    console.print(sources)

    final = list(books.values())[-1]["kept_by_language"] if books else {}
    tokens = (manifest or {}).get("tokens", {}).get("by_language", {})
    total_bytes = sum(v["bytes"] for v in final.values()) or 1
    langs = Table(title="Languages kept (share of bytes) next to CodeGeeX-13B's corpus")
    for col in ("language", "files", "bytes", "share", "CodeGeeX-13B", "tokens", "bytes/token"):
        langs.add_column(col, justify="left" if col == "language" else "right")
    order = sorted(final, key=lambda k: -final[k]["bytes"])
    for lang in order:
        v = final[lang]
        ref = CODEGEEX_SHARES.get(lang)
        ref_text = f"{ref:.2f}%" if ref is not None else ("(3.10% together)" if lang in CODEGEEX_LANGUAGES else "-")
        ntok = tokens.get(lang)
        langs.add_row(lang, f"{v['files']:,}", f"{v['bytes']:,}", f"{100 * v['bytes'] / total_bytes:.2f}%", ref_text,
                      f"{ntok:,}" if ntok else "-", f"{v['bytes'] / ntok:.2f}" if ntok else "-")
    console.print(langs)

    if manifest:
        console.print(f"[bold]shards:[/bold] {len(manifest['shards'])}  rows {manifest['rows']:,} × {manifest['row_length']:,} ids"
                      f"  tokens {manifest['tokens']['total']:,}  vocabulary {manifest['tokenizer']['vocab_size']:,}")
