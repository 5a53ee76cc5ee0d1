"""The one root of the errors a user can act on. The CLI catches it alone and prints its message as
one line (exit status 2), so every package's errors (config, run folder, build, tokenizer, trainer,
inspection, a missing extra) derive from it and no list of error types is kept by hand."""


class CodecorpusError(Exception):
    """A mistake or a condition the user can fix; the message says what and, where it can, how."""


class MissingExtra(CodecorpusError):
    """A command needs packages of an optional extra that is not installed."""


def require(module: str, extra: str, what: str):
    """Import `module`, or raise MissingExtra naming the `pip install` that brings it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(f"{what} needs {module.split('.')[0]}, which is not installed: "
                           f"pip install 'codecorpus[{extra}]'") from None
