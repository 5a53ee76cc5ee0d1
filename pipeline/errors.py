"""Errors the CLI reports to the user as one line (kept free of heavy imports, so `stats` starts fast)."""


class BuildError(RuntimeError):
    """The build cannot go on; the message says why."""
