"""The corpus's byte-level BPE (52,224 ids, CodeGeeX's size) and CodeGeeX's own tokenizer."""
from codecorpus.tokenizer.bpe import EOD_TOKEN, load_tokenizer, train_bpe  # noqa: F401
