"""Errors the trainer reports to the user as one line."""


class TrainerError(RuntimeError):
    """Shards, manifest or config the trainer cannot use; the message says why."""
