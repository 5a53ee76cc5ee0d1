"""Tokenizer errors shown to the user as one line."""


class VocabularyTooSmall(ValueError):
    """The training sample does not hold enough distinct merges for the requested vocabulary."""
