"""Encoding at tiktoken's speed with exactly the ids of a `tokenizers` byte-level BPE.

A byte-level BPE in GPT-2's scheme (the corpus's own and CodeGeeX's) is rebuilt as a
`tiktoken.Encoding`: every vocabulary entry as raw bytes, its id as its rank (BPE ids grow in merge
order, which is what tiktoken's merge loop follows), and the pre-tokenizer's regex as the pattern.
The space-run tokens — added tokens of 2 to 10 spaces, matched longest-first before the BPE — are
written as the noncharacters U+FDD2…U+FDDA, which the pattern keeps as pieces of their own and
treats as whitespace in its look-ahead, exactly where the added-token split puts a piece boundary.

`fast_encoder(tokenizer)` gives None for a tokenizer of another shape (callers then use
`tokenizers`), and a text that itself holds one of the stand-in noncharacters U+FDD0…U+FDDF is
encoded by `tokenizers`. tests/test_tokenizer.py checks id identity on real code of many languages.
"""
from __future__ import annotations

import json
import re
from typing import Callable

from tokenizers import Tokenizer

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_STANDIN_BASE = 0xFDD0
_RESERVED = re.compile("[\ufdd0-\ufddf]")


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in for each byte (what byte-level vocabularies are written in)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def _pre_tokenizer_pattern(spec: dict | None) -> str | None:
    """The regex of a ByteLevel pre-tokenizer (GPT-2's) or of a Split followed by a regex-less
    ByteLevel; None for anything else."""
    if not spec:
        return None
    if spec["type"] == "ByteLevel" and spec.get("use_regex", True) and not spec.get("add_prefix_space"):
        return GPT2_PATTERN
    if spec["type"] == "Sequence" and len(spec["pretokenizers"]) == 2:
        split, byte_level = spec["pretokenizers"]
        if (split["type"] == "Split" and "Regex" in split["pattern"] and split.get("behavior") == "Isolated"
                and not split.get("invert") and byte_level["type"] == "ByteLevel" and not byte_level.get("use_regex", True)
                and not byte_level.get("add_prefix_space")):
            return split["pattern"]["Regex"]
    return None


def _with_space_runs(pattern: str, runs: list[int]) -> str:
    """The pattern with the stand-ins of `runs` as pieces of their own, never inside another piece,
    and counted as whitespace by `(?!\\S)` (a piece boundary follows them, as after an added token)."""
    if not runs:
        return pattern
    standins = "".join(chr(_STANDIN_BASE + n) for n in runs)
    pattern = pattern.replace(r"(?!\S)", rf"(?![^\s{standins}])")
    pattern = pattern.replace(r"[^\s\p{L}\p{N}]", rf"[^\s\p{{L}}\p{{N}}{standins}]")
    return f"[{standins}]|{pattern}"


def fast_encoder(tok: Tokenizer) -> Callable[[str], list[int]] | None:
    """A function text → ids equal to `tok.encode(text, add_special_tokens=False).ids`, or None."""
    try:
        import tiktoken
    except ImportError:  # pragma: no cover - tiktoken is a dependency
        return None
    spec = json.loads(tok.to_str())
    model = spec["model"]
    pattern = _pre_tokenizer_pattern(spec.get("pre_tokenizer"))
    if model["type"] != "BPE" or spec.get("normalizer") or pattern is None or model.get("dropout") \
            or model.get("continuing_subword_prefix") or model.get("end_of_word_suffix") or model.get("byte_fallback"):
        return None
    runs: dict[int, int] = {}
    for added in spec.get("added_tokens", []):
        content = added["content"]
        if set(content) == {" "} and 2 <= len(content) <= 10:
            runs[len(content)] = added["id"]
        else:
            return None       # another kind of added token: leave it to `tokenizers`
    decode = {v: k for k, v in _bytes_to_unicode().items()}
    vocab = {token: i for token, i in model["vocab"].items() if i not in runs.values()}   # CodeGeeX lists the runs there too
    try:
        ranks = {bytes(decode[ch] for ch in token): i for token, i in vocab.items()}
    except KeyError:          # not a byte-level vocabulary
        return None
    if len(ranks) != len(vocab) or not all(bytes([b]) in ranks for b in range(256)):
        return None
    for n, i in runs.items():
        ranks[chr(_STANDIN_BASE + n).encode()] = i
    if len(set(ranks.values())) != len(ranks):
        return None
    encoding = tiktoken.Encoding(name="codecorpus", pat_str=_with_space_runs(pattern, sorted(runs)),
                                 mergeable_ranks=ranks, special_tokens={})
    replacements = [(" " * n, chr(_STANDIN_BASE + n)) for n in sorted(runs, reverse=True)]
    if runs and sorted(runs) != list(range(2, max(runs) + 1)):
        return None           # longest-first replacement needs every run length below the longest

    def encode(text: str) -> list[int]:
        if _RESERVED.search(text):
            return tok.encode(text, add_special_tokens=False).ids
        for spaces, standin in replacements:
            if spaces in text:
                text = text.replace(spaces, standin)
        return encoding.encode_ordinary(text)

    return encode
