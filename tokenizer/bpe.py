"""Train and load the corpus's byte-level BPE (52,224 ids).

A byte-level BPE trained with HF `tokenizers` to exactly `vocab_size` ids (52,224 by default), with
`<|endoftext|>` (EOD) as id 0 and the other special tokens (tokenizer/special.py) as ids 1–6. What the BPE may merge is set by the pre-tokenizer, chosen for code by
measurement (bench/tokenizer.py, on packages the BPE never saw):

  code  (default) GPT-4's split — words with one leading non-letter, digits in groups of 1–3,
        punctuation runs with the line breaks after them — except that a line break also takes the
        next line's indentation (`):\n        ` and `\n\n    ` are one piece each, so the BPE can
        make them one token): indentation is most of code's whitespace. Whitespace is left to the BPE.
  gpt4  GPT-4's split as published (cl100k's pattern), whitespace left to the BPE.
  gpt2  GPT-2's split plus CodeGeeX's whitespace tokens: a run of n spaces, 2 ≤ n ≤ 10, is one
        added token, longer runs split longest-first (10, 10, 3 for 23). CodeGeeX's scheme.

Everything is in `tokenizer.json` (a Split + ByteLevel pre-tokenizer, or ByteLevel and added
tokens): no Python-side pre-processing, so `transformers` loads it as it is. `<|endoftext|>` and the
other special tokens live in the BPE vocabulary only, not among the added tokens: text that spells
one is split by the pre-tokenizer like any other text and can never become its id; only the
pipeline puts special ids into the shards.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from codecorpus import storage
from codecorpus.tokenizer.errors import VocabularyTooSmall  # noqa: F401 (re-exported)
from codecorpus.tokenizer.special import EOD_TOKEN, SPECIAL_TOKENS  # noqa: F401 (EOD_TOKEN re-exported)
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

SPACE_RUNS = range(2, 11)
_SPACE_RUN = re.compile(r" {2,}")
_GPT4_WORDS = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
GPT4_PATTERN = _GPT4_WORDS + r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
CODE_PATTERN = _GPT4_WORDS + r"""[ \t]*|\s*[\r\n]+[ \t]*|\s+(?!\S)|\s+"""     # + the next line's indentation
PRE_TOKENIZERS = {"code": CODE_PATTERN, "gpt4": GPT4_PATTERN, "gpt2": None}


def _pre_tokenizer(name: str):
    pattern = PRE_TOKENIZERS[name]
    if pattern is None:
        return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    return pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
                                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])


def _without_space_runs(texts: Iterable[str]) -> Iterator[str]:
    # Runs of spaces never reach the BPE model at encoding time (they are added tokens), so merges
    # learned on them would be ids that are never used; cut them out of the training text.
    for text in texts:
        yield _SPACE_RUN.sub("\n", text)


def train_bpe(texts: Iterable[str], vocab_size: int = 52_224, min_frequency: int = 2, pre_tokenizer: str = "code") -> Tokenizer:
    """Train on an iterator of texts; the result has exactly `vocab_size` ids."""
    if pre_tokenizer not in PRE_TOKENIZERS:
        raise ValueError(f"pre_tokenizer must be one of {', '.join(PRE_TOKENIZERS)} (got {pre_tokenizer!r})")
    space_runs = SPACE_RUNS if PRE_TOKENIZERS[pre_tokenizer] is None else range(0)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = _pre_tokenizer(pre_tokenizer)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(space_runs),
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_without_space_runs(texts) if space_runs else texts, trainer=trainer)
    tok.add_tokens([AddedToken(" " * n, normalized=False, special=False) for n in space_runs])
    spec = json.loads(tok.to_str())
    spec["added_tokens"] = [t for t in spec["added_tokens"] if t["content"] not in SPECIAL_TOKENS]
    tok = Tokenizer.from_str(json.dumps(spec))
    if tok.get_vocab_size() != vocab_size:
        raise VocabularyTooSmall(
            f"the tokenizer sample gave only {tok.get_vocab_size():,} of {vocab_size:,} ids: "
            "raise tokenizer.sample_bytes, add input, or lower tokenizer.vocab_size", got=tok.get_vocab_size())
    return tok


def load_tokenizer(path: str | Path) -> Tokenizer:
    """A tokenizer.json, from the disk or from object storage (`s3://…`, a run built there)."""
    return Tokenizer.from_str(storage.read_text(str(path)))
