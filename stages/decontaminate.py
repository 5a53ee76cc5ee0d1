"""Drop corpus files that contain a benchmark's prompt or solution (HumanEval, HumanEval-X, MBPP).

Benchmark files are jsonl in HumanEval's shape (`task_id`, `prompt`, `canonical_solution`, `test`)
or MBPP's (`task_id`, `text`, `code`, `test_list`). A corpus file is contaminated by an item when
the item's prompt or solution, whitespace removed, is a substring of the file with whitespace
removed, or when at least `threshold` of the item's code-token n-grams occur in the file. N-grams
are hashed into one index, so a file costs one pass over its own n-grams whatever the number of
items; only items that share an n-gram are checked further. The drop reason names the item:
`benchmark:HumanEval/HumanEval/12`.
"""
from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import xxhash

_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+|\S")
_SPACE = re.compile(r"\s+")


def _ngrams(text: str, n: int) -> set[int]:
    tokens = _TOKEN.findall(text)
    return {xxhash.xxh64_intdigest("\0".join(tokens[i:i + n]).encode()) for i in range(max(0, len(tokens) - n + 1))}


def load_items(path: str | Path) -> list[tuple[str, list[str]]]:
    """(item id, [prompt, solution]) for each line of a benchmark jsonl file."""
    name = Path(path).name.split(".")[0]
    items = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            texts = [row.get(k) for k in ("prompt", "canonical_solution", "text", "code")]
            items.append((f"{name}/{row.get('task_id', number)}", [t for t in texts if isinstance(t, str) and t.strip()]))
    return items


class Decontaminator:
    def __init__(self, benchmark_files: list[str], ngram: int = 10, threshold: float = 0.5, min_chars: int = 40):
        self.ngram, self.threshold, self.min_chars = ngram, threshold, min_chars
        self.index: dict[int, set[int]] = defaultdict(set)      # n-gram hash → items holding it
        self.ids: list[str] = []
        self.strings: list[list[str]] = []                      # whitespace-free prompt/solution per item
        self.sizes: list[int] = []
        for path in benchmark_files:
            for item_id, texts in load_items(path):
                k = len(self.ids)
                self.ids.append(item_id)
                self.strings.append([s for s in (_SPACE.sub("", t) for t in texts) if len(s) >= min_chars])
                grams = set().union(*(_ngrams(t, ngram) for t in texts)) if texts else set()
                self.sizes.append(len(grams))
                for g in grams:
                    self.index[g].add(k)

    def __len__(self) -> int:
        return len(self.ids)

    def match(self, text: str) -> str | None:
        """The id of the first benchmark item the text contains, or None."""
        hits: Counter = Counter()
        for g in _ngrams(text, self.ngram):
            for k in self.index.get(g, ()):
                hits[k] += 1
        if not hits:
            return None
        squeezed = _SPACE.sub("", text)
        for k in sorted(hits):
            if hits[k] >= self.threshold * self.sizes[k] or any(s in squeezed for s in self.strings[k]):
                return self.ids[k]
        return None
