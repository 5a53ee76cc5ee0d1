"""`codecorpus stats`: what a person wants to see of a run, from its stats.json and manifest.json alone.

The statistics were gathered inside the pipeline as mergeable summaries, so this reads two small
JSON files and returns at once whatever the size of the run — also while a build is still running
(the stages completed so far).
"""
from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text

from codecorpus.stages.langid import CODEGEEX_LANGUAGES
from codecorpus.stages.summary import books_balance

# CodeGeeX-13B's corpus shares (arXiv 2303.17568); the last 13 languages share 3.10% together.
CODEGEEX_SHARES = {"C++": 28.50, "Python": 26.67, "Java": 15.98, "JavaScript": 7.13, "C": 6.72, "Go": 4.71,
                   "HTML": 3.11, "Shell": 1.73, "PHP": 1.37, "CSS": 0.99}
CODEGEEX_REST = 3.10


def codegeex_share(lang: str) -> str:
    if lang in CODEGEEX_SHARES:
        return f"{CODEGEEX_SHARES[lang]:.2f}%"
    return f"({CODEGEEX_REST:.2f}% with 12 others)" if lang in CODEGEEX_LANGUAGES else "-"


def final_languages(stats: dict) -> dict:
    stages = stats.get("stages", {})
    return list(stages.values())[-1]["kept_by_language"] if stages else {}


PIPE_WIDTH = 160   # columns of the report when it goes to a pipe or a file (a terminal gives its own)


def console() -> Console:
    """Where the report goes: the terminal at its width, else PIPE_WIDTH columns."""
    return Console() if sys.stdout.isatty() else Console(width=PIPE_WIDTH)


class _Grid:
    """A table that never cuts a figure: too wide for the console, it is printed as several tables of
    its columns side by side in turn, the first column repeated in each (a single cell wider than the
    whole console, a long path, folds onto more lines)."""

    def __init__(self, title: str | None, columns: list[str]):
        self.title, self.columns, self.rows = title, columns, []

    def add_row(self, *cells: str) -> None:
        self.rows.append([str(c) for c in cells])

    def _width(self, i: int) -> int:
        cells = [self.columns[i]] + [row[i] for row in self.rows]
        return max(Text.from_markup(line).cell_len for cell in cells for line in cell.split("\n")) + 3

    def _part(self, title: str | None, keep: list[int]) -> Table:
        table = Table(title=title, title_justify="left")
        for i in keep:
            table.add_column(self.columns[i], justify="left" if i == 0 else "right", overflow="fold")
        for row in self.rows:
            table.add_row(*(row[i] for i in keep))
        return table

    def __rich_console__(self, console: Console, options):
        widths = [self._width(i) for i in range(len(self.columns))]
        parts, part, used = [], [], 1 + widths[0]
        for i in range(1, len(self.columns)):
            if part and used + widths[i] > options.max_width:
                parts.append(part)
                part, used = [], 1 + widths[0]
            part.append(i)
            used += widths[i]
        parts.append(part)
        for k, columns in enumerate(parts):
            title = self.title if k == 0 or self.title is None else f"{self.title} (continued)"
            yield self._part(title, [0, *columns])


def _table(title: str | None, columns: list[str]) -> _Grid:
    return _Grid(title, columns)


def render(stats: dict, manifest: dict | None, console: Console) -> None:
    stages = stats.get("stages", {})
    console.print(f"[bold]status:[/bold] {stats.get('status', '?')}   stages done: {len(stages)}   "
                  f"elapsed {stats.get('elapsed_seconds', 0):,.0f}s" + (f"   error: {stats['error']}" if "error" in stats else ""))

    funnel = _table("The funnel: books per stage (in = kept + dropped + quarantined)",
                    ["stage", "files in", "kept", "dropped", "quarantined", "bytes in", "bytes kept", "balanced", "seconds"])
    for stage, b in stages.items():
        funnel.add_row(stage, f"{b['in']:,}", f"{b['kept']:,}", f"{sum(b['dropped'].values()):,}",
                       f"{sum(b['quarantined'].values()):,}", f"{b.get('in_bytes', 0):,}", f"{b['kept_bytes']:,}",
                       "yes" if books_balance(b) else "[red]NO[/red]", f"{b.get('seconds', 0):.1f}")
    console.print(funnel)

    reasons = _table("Dropped and quarantined, by reason", ["stage", "status", "reason", "files"])
    for stage, b in stages.items():
        for status in ("dropped", "quarantined"):
            for reason, n in sorted(b[status].items(), key=lambda kv: -kv[1]):
                reasons.add_row(stage, status, reason, f"{n:,}")
    console.print(reasons)

    if stages:
        tokens = (manifest or {}).get("tokens", {}).get("by_source", {})
        sources = _table("Per source and stage: files and bytes in → kept",
                         ["source", "stage", "files in", "files kept", "bytes in", "bytes kept"])
        for src in next(iter(stages.values()))["by_source"]:
            for stage, b in stages.items():
                v = b["by_source"].get(src, {})
                sources.add_row(src, stage, f"{v.get('in', 0):,}", f"{v.get('kept', 0):,}", f"{v.get('in_bytes', 0):,}",
                                f"{v.get('kept_bytes', 0):,}")
            if src in tokens:
                sources.add_row(src, "tokens in the shards", "", "", "", f"{tokens[src]:,}")
        console.print(sources)

        per_stage = [s for s in stages if s != "01_ingest"]
        flow = _table("Per language: files kept after each stage (MB kept)", ["language"] + per_stage)
        languages = sorted({lang for s in per_stage for lang in stages[s].get("by_language", {})} - {"unknown"})
        for lang in languages:
            cells = []
            for s_name in per_stage:
                v = stages[s_name].get("by_language", {}).get(lang, {})
                cells.append(f"{v.get('kept', 0):,} ({v.get('kept_bytes', 0) / 1e6:.1f})")
            flow.add_row(lang, *cells)
        console.print(flow)

    dedup = [s for s in ("05_exact_dedup", "06_near_dedup") if s in stages]
    if dedup:
        removed = _table("Duplicates removed (files, % of those in)",
                         ["", *(s.split("_", 1)[1].replace("_", " ") for s in dedup)])
        for group in ("by_source", "by_language"):
            keys = sorted({k for s in dedup for k in stages[s].get(group, {})})
            for key in keys:
                cells = []
                for s_name in dedup:
                    v = stages[s_name].get(group, {}).get(key, {})
                    gone = v.get("in", 0) - v.get("kept", 0) - v.get("quarantined", 0)
                    cells.append(f"{gone:,} ({100 * gone / v['in']:.1f}%)" if v.get("in") else "-")
                removed.add_row(("source " if group == "by_source" else "") + key, *cells)
        console.print(removed)

    clusters = stages.get("06_near_dedup", {}).get("clusters")
    if clusters:
        console.print(f"[bold]Near-duplicate clusters:[/bold] {clusters['clusters']:,}, {clusters['removed']:,} files removed, "
                      "each next to its kept file")
        console.print("cluster sizes (files × clusters): " +
                      ", ".join(f"{k}×{v:,}" for k, v in clusters["size_histogram"].items()))
        similarity = clusters.get("similarity_histogram", {})
        if similarity:
            most = max(similarity.values())
            console.print("[bold]Removed files by their estimated Jaccard similarity to the kept file:[/bold]")
            hist = _table(None, ["similarity", "files", ""])
            for low, n in similarity.items():
                hist.add_row(f"{low}–{float(low) + 0.05:.2f}", f"{n:,}", "█" * max(1, round(30 * n / most)))
            console.print(hist)
        top = _table("Largest clusters", ["size", "kept (survivor)", "removed, for example"])
        for c in clusters["largest"]:
            top.add_row(str(c["size"]), c["survivor"], "\n".join(c["members"]))
        console.print(top)

    final = final_languages(stats)
    tokens = (manifest or {}).get("tokens", {}).get("by_language", {})
    total_bytes = sum(v["bytes"] for v in final.values()) or 1
    langs = _table("Languages kept (share of bytes) next to CodeGeeX-13B's corpus",
                   ["language", "files", "bytes", "share", "CodeGeeX-13B", "tokens", "bytes/token"])
    for lang in sorted(final, key=lambda k: -final[k]["bytes"]):
        v = final[lang]
        ntok = tokens.get(lang)
        langs.add_row(lang, f"{v['files']:,}", f"{v['bytes']:,}", f"{100 * v['bytes'] / total_bytes:.2f}%", codegeex_share(lang),
                      f"{ntok:,}" if ntok else "-", f"{v['bytes'] / ntok:.2f}" if ntok else "-")
    console.print(langs)

    redactions = stages.get("04_clean", {}).get("redactions", {})
    if redactions:
        console.print("[bold]Secrets and personal data redacted[/bold] (in files kept): " +
                      ", ".join(f"{k} {v:,}" for k, v in redactions.items()))
    contaminated = {r: n for r, n in stages.get("04_clean", {}).get("dropped", {}).items() if r.startswith("benchmark:")}
    if contaminated:
        bench = _table("Dropped as benchmark contamination", ["benchmark item", "files"])
        for reason, n in sorted(contaminated.items()):
            bench.add_row(reason.removeprefix("benchmark:"), f"{n:,}")
        console.print(bench)

    comments = stages.get("07_tag", {}).get("comment_languages", {})
    if comments:
        total = sum(comments.values())
        console.print("[bold]Natural language of comments[/bold] (sampled files): " +
                      ", ".join(f"{k} {100 * v / total:.1f}%" for k, v in list(comments.items())[:10]))

    if manifest:
        console.print(f"[bold]shards:[/bold] {len(manifest['shards'])}  rows {manifest['rows']:,} × {manifest['row_length']:,} ids"
                      f"  tokens {manifest['tokens']['total']:,}  vocabulary {manifest['tokenizer']['vocab_size']:,}")
        docs = manifest.get("documents", {})
        if docs.get("kind") == "repo":
            console.print(f"[bold]repository documents:[/bold] {docs['files']:,} files of {docs['repositories']:,} repositories "
                          f"in {docs['documents']:,} documents ({manifest['config']['packing']['order']} order)")
            console.print(f"  imports: {docs['resolved']:,} of {docs['references']:,} resolved to a file of the repository, "
                          f"{docs['edges']:,} dependencies, {docs['cycles_broken']:,} cycles broken")
        fim = manifest.get("fim", {})
        if fim:
            files = fim.get("psm_files", 0) + fim.get("spm_files", 0)
            kept = stages.get("10_opt_out", stages.get("08_tokenize", {})).get("kept", 0)   # in the shards
            console.print(f"[bold]fill-in-the-middle:[/bold] {files:,} of {kept:,} files ({100 * files / max(1, kept):.1f}%): "
                          f"PSM {fim.get('psm_files', 0):,} files / {fim.get('psm_tokens', 0):,} tokens, "
                          f"SPM {fim.get('spm_files', 0):,} files / {fim.get('spm_tokens', 0):,} tokens")


def compare(a: dict, b: dict, name_a: str, name_b: str) -> dict:
    """The difference between two runs: files and bytes kept per stage, bytes and tokens per language."""
    stages_a, stages_b = a["stats"].get("stages", {}), b["stats"].get("stages", {})
    out = {"runs": [name_a, name_b], "stages": {}, "languages": {}, "tokens": {}}
    for stage in sorted(set(stages_a) | set(stages_b)):
        sa, sb = stages_a.get(stage, {}), stages_b.get(stage, {})
        out["stages"][stage] = {k: [sa.get(k), sb.get(k)] for k in ("in", "kept", "kept_bytes")}
    la, lb = final_languages(a["stats"]), final_languages(b["stats"])
    for lang in sorted(set(la) | set(lb)):
        out["languages"][lang] = [la.get(lang, {}).get("bytes", 0), lb.get(lang, {}).get("bytes", 0)]
    ta = (a.get("manifest") or {}).get("tokens", {})
    tb = (b.get("manifest") or {}).get("tokens", {})
    out["tokens"] = {"total": [ta.get("total"), tb.get("total")]}
    return out


def render_compare(diff: dict, console: Console) -> None:
    name_a, name_b = diff["runs"]
    stages = _table(f"{name_a} → {name_b}: per stage", ["stage", "kept A", "kept B", "Δ files", "bytes kept A", "bytes kept B", "Δ bytes"])
    for stage, v in diff["stages"].items():
        (_, _), (ka, kb), (ba, bb) = v["in"], v["kept"], v["kept_bytes"]
        stages.add_row(stage, _n(ka), _n(kb), _delta(ka, kb), _n(ba), _n(bb), _delta(ba, bb))
    console.print(stages)
    langs = _table("Bytes kept per language", ["language", "A", "B", "Δ"])
    for lang, (x, y) in diff["languages"].items():
        langs.add_row(lang, _n(x), _n(y), _delta(x, y))
    console.print(langs)
    ta, tb = diff["tokens"]["total"]
    console.print(f"[bold]tokens:[/bold] {_n(ta)} → {_n(tb)} ({_delta(ta, tb)})")


def _n(x) -> str:
    return "-" if x is None else f"{x:,}"


def _delta(x, y) -> str:
    if x is None or y is None:
        return "-"
    return f"{y - x:+,}" + (f" ({100 * (y - x) / x:+.1f}%)" if x else "")
