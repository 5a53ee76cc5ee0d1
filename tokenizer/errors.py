"""Tokenizer errors shown to the user as one line."""
from codecorpus.errors import CodecorpusError


class VocabularyTooSmall(CodecorpusError, ValueError):
    """The training sample does not hold enough distinct merges for the requested vocabulary."""

    def __init__(self, message: str, got: int = 0):
        super().__init__(message)
        self.got = got
