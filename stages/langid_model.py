"""The programming language of a file from its content alone: a linear model over hashed code tokens.

Features are computed for a whole batch at once on the UTF-8 bytes (stages.minhash's code tokens:
runs of word bytes and single punctuation bytes) of each file's head — after a long leading comment
block, a licence — and tail: every token as
written and in lower case, and every pair of neighbouring tokens in lower case, hashed into 2^bits buckets, log-scaled counts, L2-normalised.
A multinomial logistic regression (scikit-learn, trained by bench/train_langid.py on path-labelled
files of public packages) turns them into a probability per language; the weights ship in
`langid_model.npz` beside this file (float16), with the list of packages they were trained on in
`langid_model.json`. No Python runs per token: one sparse product scores a batch.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
from scipy import sparse

from codecorpus.stages.minhash import _mix, _token_hashes, _utf8

MODEL_PATH = Path(__file__).with_name("langid_model.npz")
HEAD_BYTES = 1536      # the features read a file's first HEAD_BYTES characters…
TAIL_BYTES = 512       # …and its last TAIL_BYTES (a licence header or an HTML page's CSS can fill the head)
BITS = 18
LICENCE_MIN = 400      # a leading comment block at least this long is skipped (a licence says nothing of the language)
_LEADING_COMMENTS = re.compile(
    r"\ufeff?(?:[ \t]*(?://|/\*|\*|#(?!\s*(?:include|import|define|if|pragma|!))|--|;|%|\(\*|\{|=begin|\"\"\")[^\n]*\n|[ \t]*\n)+")


def _skip_licence(text: str) -> str:
    """`text` without its leading comment block when that block is long (a licence header): the features then
    see code, not the same MIT or GPL text that heads files of every language. The file's first line stays."""
    first_line = text.find("\n") + 1
    for start in (0, first_line):          # the block may follow a first line of code: `<?php`, `#!…`, `'use strict'`
        match = _LEADING_COMMENTS.match(text, start, start + 16384)
        if match is not None and match.end() - start >= LICENCE_MIN:
            return text[:first_line] + text[match.end():]
    return text


def features(texts: pa.Array | pa.ChunkedArray | list[str], bits: int = BITS, head: int = HEAD_BYTES,
             tail: int = TAIL_BYTES) -> sparse.csr_matrix:
    """(files, 2^bits) sparse matrix of hashed token and token-pair features of each file's head and tail."""
    if not isinstance(texts, list):
        texts = texts.to_pylist()
    cut = head + tail
    texts = [_skip_licence(x) if x else "" for x in texts]
    texts = pa.array([t if len(t) <= cut else f"{t[:head]}\n{t[-tail:] if tail else ''}" for t in texts], pa.large_string())
    data, offsets = _utf8(texts)
    n = len(offsets) - 1
    if n == 0 or offsets[-1] == offsets[0]:
        return sparse.csr_matrix((n, 1 << bits), dtype=np.float32)
    tokens, owner, folded = _token_hashes(data, offsets, lower=True)
    same = owner[1:] == owner[:-1]
    with np.errstate(over="ignore"):
        pairs = _mix(folded[:-1] * np.uint64(0x9E3779B97F4A7C15) + folded[1:])[same]
        folded = _mix(folded ^ np.uint64(0x5851F42D4C957F2D))
    cols = (np.r_[tokens, folded, pairs] >> np.uint64(64 - bits)).astype(np.int64)
    rows = np.r_[owner, owner, owner[:-1][same]]
    # one entry per (file, feature) with its count: a sort of the combined keys
    keys, counts = np.unique((rows << bits) | cols, return_counts=True)
    values = np.log1p(counts.astype(np.float32))
    key_rows = keys >> bits
    norms = np.sqrt(np.bincount(key_rows, weights=values * values, minlength=n)).astype(np.float32)
    values /= np.maximum(norms, 1e-6)[key_rows]
    indptr = np.r_[0, np.cumsum(np.bincount(key_rows, minlength=n))]
    return sparse.csr_matrix((values, (keys & ((1 << bits) - 1)).astype(np.int32), indptr), shape=(n, 1 << bits))


class LanguageModel:
    """Weights (2^bits × languages) and biases of the trained model."""

    def __init__(self, classes: list[str], weights: np.ndarray, bias: np.ndarray, bits: int = BITS, head: int = HEAD_BYTES):
        self.classes, self.weights, self.bias, self.bits, self.head = list(classes), weights, bias, bits, head

    @classmethod
    def load(cls, path: str | Path = MODEL_PATH) -> "LanguageModel":
        with np.load(path, allow_pickle=False) as npz:
            return cls([str(c) for c in npz["classes"]], npz["weights"].astype(np.float32), npz["bias"].astype(np.float32),
                       int(npz["bits"]), int(npz["head"]))

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, classes=np.array(self.classes), weights=self.weights.astype(np.float16),
                            bias=self.bias.astype(np.float32), bits=self.bits, head=self.head)

    def probabilities(self, texts, head: int | None = None, tail: int = TAIL_BYTES) -> np.ndarray:
        """Per text and language; `head`/`tail`: read less of each file (faster, less sure)."""
        scores = np.asarray(features(texts, self.bits, self.head if head is None else head, tail) @ self.weights) + self.bias
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        return scores / scores.sum(axis=1, keepdims=True)

    def predict(self, texts, head: int | None = None, tail: int = TAIL_BYTES) -> tuple[list[str], np.ndarray]:
        """(the most likely language of each text, its probability)."""
        p = self.probabilities(texts, head, tail)
        best = p.argmax(axis=1)
        return [self.classes[i] for i in best], p[np.arange(len(best)), best]


@functools.lru_cache(maxsize=1)
def model() -> LanguageModel:
    """The shipped model, loaded once per process."""
    return LanguageModel.load()
