"""CodeGeeX's own tokenizer, built from GPT-2's `vocab.json` and `merges.txt` (GPT-2's BPE plus GPT-J's extra tokens, 52,224 rows).

GPT-2's byte-level BPE (50,257 ids, `<|endoftext|>` = 50256) plus GPT-J's 143 `<|extratoken_N|>`
ids: 50,400 in all. A run of n spaces, 2 ≤ n ≤ 10, is `<|extratoken_{n+8}|>` (id 50264 + n),
matched longest-first before the BPE sees the text — so those nine ids carry the spaces themselves.
codecorpus's special tokens other than `<|endoftext|>` (tokenizer/special.py) follow as ids
50,400–50,405, in the vocabulary only (text never becomes them), within the 52,224 embedding rows.
"""
from __future__ import annotations

import json
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

from codecorpus.tokenizer.bpe import SPACE_RUNS
from codecorpus.tokenizer.special import SPECIAL_TOKENS

EXTRA_TOKENS = 143
SPACE_TOKEN_OFFSET = 8   # n spaces ↔ <|extratoken_{n+8}|>


def codegeex_tokenizer(vocab_file: str | Path, merges_file: str | Path) -> Tokenizer:
    vocab: dict[str, int] = json.loads(Path(vocab_file).read_text(encoding="utf-8"))
    base = len(vocab)
    lines = Path(merges_file).read_text(encoding="utf-8").splitlines()
    merges = [tuple(line.split(" ")) for line in lines if line and not line.startswith("#version")]
    for k in range(1, EXTRA_TOKENS + 1):
        n = k - SPACE_TOKEN_OFFSET
        vocab[" " * n if n in SPACE_RUNS else f"<|extratoken_{k}|>"] = base + k - 1
    for name in SPECIAL_TOKENS:
        vocab.setdefault(name, len(vocab))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_tokens([AddedToken(" " * n, normalized=False, special=False) for n in SPACE_RUNS])  # ids already in vocab
    return tok
