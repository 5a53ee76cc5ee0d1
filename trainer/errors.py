"""Errors the trainer reports to the user as one line."""

from codecorpus.errors import CodecorpusError


class TrainerError(CodecorpusError, RuntimeError):
    """Shards, manifest or config the trainer cannot use; the message says why."""
