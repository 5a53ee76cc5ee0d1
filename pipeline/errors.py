"""Errors the CLI reports to the user as one line (kept free of heavy imports, so `stats` starts fast)."""


from codecorpus.errors import CodecorpusError


class BuildError(CodecorpusError, RuntimeError):
    """The build cannot go on; the message says why."""
