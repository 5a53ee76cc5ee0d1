"""The special tokens a corpus's documents are built with, and the infilling prompt a model is given.

Reserved in every tokenizer codecorpus makes (the trained BPE's first ids, after `<|endoftext|>`;
appended after CodeGeeX's 50,400 ids), but never *added* tokens: text that spells `<fim_middle>`
is split by the pre-tokenizer like any other text and cannot become the special id. Only the
pipeline puts these ids into the shards:

- `<fim_prefix>`, `<fim_suffix>`, `<fim_middle>`, `<fim_pad>`: fill-in-the-middle (Bavarian et al.
  2022; StarCoder's names). `<fim_pad>` is reserved for fixed-length training that pads a
  transformed sample; packed rows never need it.
- `<|repo_name|>`, `<|file_sep|>`: repository documents (Qwen2.5-Coder's format; StarCoder2's
  `<repo_name>`/`<file_sep>` under Qwen's names).
"""
from __future__ import annotations

from tokenizers import Tokenizer

EOD_TOKEN = "<|endoftext|>"
FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX, FIM_PAD = "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>"
REPO_NAME, FILE_SEP = "<|repo_name|>", "<|file_sep|>"
SPECIAL_TOKENS = (EOD_TOKEN, FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX, FIM_PAD, REPO_NAME, FILE_SEP)
ROLES = dict(zip(("eod", "fim_prefix", "fim_middle", "fim_suffix", "fim_pad", "repo_name", "file_sep"), SPECIAL_TOKENS))


class MissingSpecialTokens(ValueError):
    """A tokenizer (e.g. one made by an older codecorpus) without the special tokens a build needs."""


def special_ids(tok: Tokenizer) -> dict[str, int]:
    """Each special token's id in `tok`, by its role (`eod`, `fim_prefix`, … `file_sep`: what the
    stages that lay documents out call them)."""
    ids = {role: tok.token_to_id(name) for role, name in ROLES.items()}
    missing = [ROLES[role] for role, i in ids.items() if i is None]
    if missing:
        raise MissingSpecialTokens(f"the tokenizer has no {', '.join(missing)}: make it again with this codecorpus")
    return ids


def fim_prompt_ids(tok: Tokenizer, prefix: str, suffix: str, spm: bool = False, language_tag: str = "") -> list[int]:
    """What a model trained on a codecorpus FIM build is given to fill in the code between `prefix`
    and `suffix` (an editor's cursor); it then writes the middle and stops at `<|endoftext|>`.

    PSM: TAG <fim_prefix> prefix <fim_suffix> suffix <fim_middle>
    SPM: TAG <fim_prefix> <fim_suffix> suffix <fim_middle> prefix        (StarCoder's SPM)

    `language_tag` is the file's tag line with its line break (e.g. "# language: Python\\n"), as the
    build puts it in front of the transformed text."""
    ids = special_ids(tok)

    def encode(text: str) -> list[int]:
        return tok.encode(text, add_special_tokens=False).ids if text else []

    head = encode(language_tag)
    if spm:
        return [*head, ids["fim_prefix"], ids["fim_suffix"], *encode(suffix), ids["fim_middle"], *encode(prefix)]
    return [*head, ids["fim_prefix"], *encode(prefix), ids["fim_suffix"], *encode(suffix), ids["fim_middle"]]
