"""Fill-in-the-middle (Bavarian et al. 2022, as StarCoder and StarCoder2 train it), decided per file.

A file chosen with probability `rate` (by a seeded hash of its id, so the choice does not depend on
workers, blocks or retries) is cut at two points drawn uniformly over its characters — Unicode code
points, so a multi-byte character is never split — into prefix, middle and suffix, each encoded on
its own, and written with the special tokens (their ids by role, as tokenizer/special.py gives them) as

    PSM: <fim_prefix> prefix <fim_suffix> suffix <fim_middle> middle
    SPM: <fim_prefix> <fim_suffix> suffix <fim_middle> prefix middle     (StarCoder's SPM)

a share `spm_rate` of them in SPM. The language tag stays in front, outside the transformed text.
In a repository document (StarCoder2) the repository is chosen with `rate`, then each of its files
with `file_rate`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import xxhash

PSM, SPM = "psm", "spm"
_SCALE = float(2**64)


@dataclass(frozen=True)
class FimSettings:
    rate: float = 0.0
    spm_rate: float = 0.5
    file_rate: float = 0.5
    seed: int = 0


def _unit(seed: int, key: str) -> float:
    return xxhash.xxh64_intdigest(key.encode("utf-8", "surrogatepass"), seed=seed) / _SCALE


def choose(settings: FimSettings, file_id: str, repo_key: str | None = None) -> str | None:
    """PSM, SPM or None (left to right) for one file; `repo_key` when it is read in a repository document."""
    if settings.rate <= 0:
        return None
    if repo_key is None:
        chosen = _unit(settings.seed + 11, file_id) < settings.rate
    else:
        chosen = _unit(settings.seed + 11, repo_key) < settings.rate and _unit(settings.seed + 15, file_id) < settings.file_rate
    if not chosen:
        return None
    return SPM if _unit(settings.seed + 12, file_id) < settings.spm_rate else PSM


def split_points(settings: FimSettings, file_id: str, length: int) -> tuple[int, int]:
    """The two cut points (0 ≤ a ≤ b ≤ length), uniform over the text's code points."""
    a = xxhash.xxh64_intdigest(file_id.encode(), seed=settings.seed + 13) % (length + 1)
    b = xxhash.xxh64_intdigest(file_id.encode(), seed=settings.seed + 14) % (length + 1)
    return (a, b) if a <= b else (b, a)


def transform(text: str, mode: str, cuts: tuple[int, int], encode: Callable[[str], list[int]], ids: dict[str, int]) -> list[int]:
    """The ids of `text` in FIM order `mode`, cut at `cuts`."""
    a, b = cuts
    prefix, middle, suffix = encode(text[:a]), encode(text[a:b]), encode(text[b:])
    if mode == SPM:
        return [ids["fim_prefix"], ids["fim_suffix"], *suffix, ids["fim_middle"], *prefix, *middle]
    return [ids["fim_prefix"], *prefix, ids["fim_suffix"], *suffix, ids["fim_middle"], *middle]


def untransform(tokens: list[int], ids: dict[str, int]) -> tuple[str, list[int], list[int], list[int]]:
    """(mode, prefix ids, middle ids, suffix ids) of a transformed file's ids (tests, inspection)."""
    pre, mid, suf = ids["fim_prefix"], ids["fim_middle"], ids["fim_suffix"]
    if tokens[:2] == [pre, suf]:
        m = tokens.index(mid)
        suffix, rest = tokens[2:m], tokens[m + 1:]
        return SPM, rest, [], suffix   # SPM's prefix and middle are one run: the caller splits them by text
    if tokens[0] != pre:
        raise ValueError("not a FIM-transformed file")
    s, m = tokens.index(suf), tokens.index(mid)
    return PSM, tokens[1:s], tokens[m + 1:], tokens[s + 1:m]
