"""The byte-level BPE tokenizer of the corpus (SPEC §6)."""
from tokenizer.bpe import EOD_TOKEN, load_tokenizer, train_bpe  # noqa: F401
