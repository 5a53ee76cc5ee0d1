"""Quality filters of CodeGeeX / CodeParrot-clean / StarCoder, every threshold configurable.

Each filter is a small class whose `reason` returns why a file is dropped, or None to keep it. It
reads a file's `Figures` — byte size, longest and mean line (lines as `str.splitlines` cuts them),
alphanumeric fraction (`str.isalnum`) — which `figures` computes for a whole batch at once in Arrow
and numpy. `apply_filters` records the figures (for the statistics) and marks the first reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from codecorpus.stages import quality_rules, quality_signals
from codecorpus.stages.license import LicensePolicy
from codecorpus.stages.quality_rules import QualitySettings
from codecorpus.stages.records import mark

# str.splitlines' line boundaries, in RE2 syntax
_LINE_BREAK = r"\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x{85}\x{2028}\x{2029}]"
_ASCII_ALNUM = np.zeros(256, dtype=np.int64)
_ASCII_ALNUM[[*range(48, 58), *range(65, 91), *range(97, 123)]] = 1


class Figures(NamedTuple):
    """What the filters look at, for one file."""
    text: str
    n_bytes: int
    line_max: int
    line_mean: float
    alnum_frac: float


def plain_texts(texts: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One large-string array, nulls as empty texts."""
    texts = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
    return pc.fill_null(texts.cast(pa.large_string()), "")


def split_lines(texts: pa.Array) -> pa.ListArray:
    """Each text's lines, cut where `str.splitlines` cuts them (a final line break leaves an empty last line)."""
    return pc.split_pattern_regex(texts, _LINE_BREAK)


def text_metrics(texts: pa.ChunkedArray | pa.Array, lines: pa.ListArray | None = None,
                 alnum: np.ndarray | None = None) -> dict[str, pa.Array]:
    """Per file, vectorised: UTF-8 bytes, longest line, mean line length (as `str.splitlines`), and
    the fraction of characters that are alphanumeric (as `str.isalnum`; `alnum`: already counted)."""
    texts = plain_texts(texts)
    lines = split_lines(texts) if lines is None else lines
    lengths = pc.utf8_length(pc.list_flatten(lines)).to_numpy(zero_copy_only=False).astype(np.int64)
    starts = np.frombuffer(lines.buffers()[1], dtype=np.int64 if pa.types.is_large_list(lines.type) else np.int32)
    starts = starts[lines.offset: lines.offset + len(lines) + 1] - starts[lines.offset]
    counts = np.diff(starts)
    ends_with_break = pc.match_substring_regex(texts, f"(?:{_LINE_BREAK})$").to_numpy(zero_copy_only=False)
    n = len(texts)
    line_max = np.maximum.reduceat(lengths, starts[:-1]) if n else np.zeros(0, np.int64)
    line_sum = np.add.reduceat(lengths, starts[:-1]) if n else np.zeros(0, np.int64)
    line_count = np.maximum(counts - ends_with_break, 1)
    chars = pc.utf8_length(texts).to_numpy(zero_copy_only=False).astype(np.int64)
    data = texts.buffers()[2]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int64)[texts.offset: texts.offset + n + 1]
    alnum = _alnum(texts, raw, offsets, chars) if alnum is None else alnum
    return {"bytes": pa.array(np.diff(offsets), pa.int64()),
            "line_max": pa.array(line_max, pa.int32()),
            "line_mean": pa.array(line_sum / line_count, pa.float32()),
            "alnum_frac": pa.array(alnum / np.maximum(chars, 1), pa.float32())}


def _alnum(texts: pa.Array, raw: np.ndarray, offsets: np.ndarray, chars: np.ndarray) -> np.ndarray:
    """Per text: its alphanumeric characters (ASCII by a table over the bytes, the rest by Unicode class)."""
    alnum = np.zeros(len(texts), dtype=np.int64)
    nonempty = np.flatnonzero(np.diff(offsets) > 0)
    if len(nonempty):
        alnum[nonempty] = np.add.reduceat(_ASCII_ALNUM[raw[offsets[0]: offsets[-1]]], offsets[nonempty] - offsets[0])
        non_ascii = chars != (np.diff(offsets))        # more bytes than characters: count with Unicode classes
        if non_ascii.any():
            rows = np.flatnonzero(non_ascii)
            rest = pc.replace_substring_regex(texts.take(pa.array(rows)), r"[\x00-\x7f]+", "")   # the non-ASCII characters
            alnum[rows] += pc.count_substring_regex(rest, r"[\p{L}\p{N}]").to_numpy(zero_copy_only=False)
    return alnum


def figures(texts: pa.ChunkedArray | pa.Array) -> list[Figures]:
    metrics = text_metrics(texts)
    columns = [metrics[k].to_numpy(zero_copy_only=False).tolist() for k in ("bytes", "line_max", "line_mean", "alnum_frac")]
    texts = texts.to_pylist()
    return [Figures(t or "", *values) for t, *values in zip(texts, *columns)]


def figures_of(text: str) -> Figures:
    return figures(pa.array([text], pa.large_string()))[0]


@dataclass(frozen=True)
class SizeFilter:
    """CodeGeeX: drop files under 1 KB or over 100 KB (UTF-8 bytes)."""
    min_bytes: int
    max_bytes: int

    def reason(self, f: Figures) -> str | None:
        if f.n_bytes < self.min_bytes:
            return "too_small"
        if f.n_bytes > self.max_bytes:
            return "too_large"
        return None


@dataclass(frozen=True)
class LineLengthFilter:
    """StarCoder / CodeParrot: drop data-like files with a very long line or long lines on average."""
    max_line_length: int
    max_mean_line_length: float

    def reason(self, f: Figures) -> str | None:
        if f.line_max > self.max_line_length:
            return "max_line_length"
        if f.line_mean > self.max_mean_line_length:
            return "mean_line_length"
        return None


@dataclass(frozen=True)
class AlnumFilter:
    """CodeParrot-clean: drop files whose fraction of alphanumeric characters is too low."""
    min_fraction: float

    def reason(self, f: Figures) -> str | None:
        return "alnum_fraction" if not f.text or f.alnum_frac < self.min_fraction else None


@dataclass(frozen=True)
class AutogeneratedFilter:
    """Drop generated files: a marker ("auto-generated", "do not edit", …) in the first lines."""
    markers: tuple[str, ...]
    lines: int

    def reason(self, f: Figures) -> str | None:
        # the first `lines` lines lie within this many characters: no need to split the whole file
        head = f.text[: (f.line_max + 2) * self.lines]
        head = "\n".join(head.splitlines()[: self.lines]).lower()
        return "autogenerated" if any(m in head for m in self.markers) else None


def build_filters(cfg) -> list:
    """The filter chain from a FiltersConfig (or anything with the same attributes)."""
    return [
        SizeFilter(cfg.min_bytes, cfg.max_bytes),
        LineLengthFilter(cfg.max_line_length, cfg.max_mean_line_length),
        AlnumFilter(cfg.min_alnum_fraction),
        AutogeneratedFilter(tuple(m.lower() for m in cfg.autogenerated_markers), cfg.marker_lines),
    ]


def first_reason(filters: list, text: str | Figures) -> str | None:
    f = figures_of(text) if isinstance(text, str) else text
    for flt in filters:
        reason = flt.reason(f)
        if reason is not None:
            return reason
    return None


def apply_filters(batch: pa.Table, filters: list, licenses: LicensePolicy | None = None,
                  quality: QualitySettings | None = None) -> pa.Table:
    """Record each file's figures (for the statistics) and mark the first rule that drops it: the
    license policy, then the filters in order, then (given `quality`) the quality rules, whose
    signals are computed for the files still kept and stored in the `quality` column."""
    texts = plain_texts(batch.column("text"))
    lines = split_lines(texts)
    classes = quality_signals.char_classes(texts) if quality is not None else None   # letters and digits: the alphanumerics
    metrics = text_metrics(texts, lines, classes[1] + classes[2] if classes else None)
    for name in ("line_max", "line_mean", "alnum_frac"):
        batch = batch.set_column(batch.schema.get_field_index(name), name, metrics[name])
    license_reasons = ([licenses.reason(x) for x in batch.column("license").to_pylist()] if licenses
                       else [None] * batch.num_rows)
    columns = [metrics[k].to_numpy(zero_copy_only=False).tolist() for k in ("bytes", "line_max", "line_mean", "alnum_frac")]
    reasons = [lr or first_reason(filters, Figures(t or "", *values))
               for lr, t, *values in zip(license_reasons, texts.to_pylist(), *columns)]
    if quality is not None:
        reasons, signals = _quality_reasons(batch, texts, lines, classes, reasons, quality)
        batch = batch.set_column(batch.schema.get_field_index("quality"), "quality", signals)
    return mark(batch, reasons)


def _quality_reasons(batch: pa.Table, texts: pa.Array, lines: pa.ListArray, classes: tuple, reasons: list,
                     quality: QualitySettings) -> tuple[list, pa.Array]:
    """(`reasons` with the quality rules' added for the files still kept, the `quality` column)."""
    todo = np.array([i for i, r in enumerate(reasons) if r is None], dtype=np.int64)
    take = pa.array(todo)
    langs = batch.column("language").take(take).to_pylist()
    paths = batch.column("path").take(take).to_pylist()
    signals = quality_signals.signals(texts.take(take), langs, np.array([bool(p) for p in paths], dtype=bool),
                                      lines.take(take), tuple(c[todo] for c in classes), quality.parse_all)
    found = quality_rules.first_reasons(
        quality_rules.Batch.of(signals, langs, batch.column("id").take(take).to_pylist(), paths), quality)
    reasons = list(reasons)
    for i, reason in zip(todo, found):
        reasons[i] = reason
    where = np.full(batch.num_rows, -1, dtype=np.int64)
    where[todo] = np.arange(len(todo))
    column = signals.take(pa.array(where, mask=where < 0)) if len(todo) else pa.nulls(batch.num_rows, signals.type)
    return reasons, column
