"""Train and load the corpus's byte-level BPE (SPEC §6).

GPT-2's byte-level scheme, trained with HF `tokenizers` to exactly `vocab_size` ids (52,224 by
default): `<|endoftext|>` (EOD, id 0), the BPE vocabulary, and CodeGeeX's whitespace tokens — a
run of n spaces, 2 ≤ n ≤ 10, is one token, longer runs split longest-first (10, 10, 3 for 23).
The whitespace tokens are added tokens, matched leftmost-longest before the BPE sees the text,
so `tokenizer.json` needs no Python-side pre-processing. `<|endoftext|>` lives in the BPE
vocabulary only, not among the added tokens: text that spells it is split by the pre-tokenizer
like any other text and can never become the EOD id; only the pipeline appends EOD ids.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from tokenizer.errors import VocabularyTooSmall  # noqa: F401 (re-exported)
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

EOD_TOKEN = "<|endoftext|>"
SPACE_RUNS = range(2, 11)
_SPACE_RUN = re.compile(r" {2,}")


def _without_space_runs(texts: Iterable[str]) -> Iterator[str]:
    # Runs of spaces never reach the BPE model at encoding time (they are added tokens), so merges
    # learned on them would be ids that are never used; cut them out of the training text.
    for text in texts:
        yield _SPACE_RUN.sub("\n", text)


def train_bpe(texts: Iterable[str], vocab_size: int = 52_224, min_frequency: int = 2) -> Tokenizer:
    """Train on an iterator of texts; the result has exactly `vocab_size` ids."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(SPACE_RUNS),
        min_frequency=min_frequency,
        special_tokens=[EOD_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_without_space_runs(texts), trainer=trainer)
    tok.add_tokens([AddedToken(" " * n, normalized=False, special=False) for n in SPACE_RUNS])
    spec = json.loads(tok.to_str())
    spec["added_tokens"] = [t for t in spec["added_tokens"] if t["content"] != EOD_TOKEN]
    tok = Tokenizer.from_str(json.dumps(spec))
    if tok.get_vocab_size() != vocab_size:
        raise VocabularyTooSmall(
            f"the tokenizer sample gave only {tok.get_vocab_size()} of {vocab_size} ids: "
            "raise tokenizer.sample_bytes, add input, or lower tokenizer.vocab_size"
        )
    return tok


def load_tokenizer(path: str | Path) -> Tokenizer:
    return Tokenizer.from_file(str(path))
