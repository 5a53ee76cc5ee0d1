"""The command line's argument checking: every mistake is one line naming the argument and what it
allows, exit status 2, never a traceback and never the top-level usage for a subcommand's flag."""
from __future__ import annotations

import argparse
import re
import sys

from codecorpus.errors import CodecorpusError


class UserError(CodecorpusError):
    """A mistake in the command's arguments; printed as one line."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, whose errors are one line on stderr: `codecorpus show: error: argument --limit: …`."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(2)

    def parse_args(self, args=None, namespace=None):
        """An unknown flag is reported by the subcommand it was given to, with its usage."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            getattr(parsed, "parser", self).error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed


def whole(minimum: int, maximum: int | None = None):
    """An argparse type: a whole number in [minimum, maximum]."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            allowed = f"from {minimum:,} to {maximum:,}" if maximum is not None else f"≥ {minimum:,}"
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number {allowed}")
        return value
    return parse


def regex(text: str) -> str:
    """An argparse type: a regular expression that compiles."""
    try:
        re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a regular expression ({exc})") from None
    return text


def nonempty(text: str) -> str:
    """An argparse type: a path or name that is not the empty string."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty value")
    return text


def one_of(value: str, allowed: list[str], what: str) -> str:
    """`value` as spelled in `allowed` (case aside), or an error listing them."""
    by_case = {a.lower(): a for a in allowed}
    if value.lower() in by_case:
        return by_case[value.lower()]
    shown = ", ".join(allowed) if allowed else "none in this run"
    raise UserError(f"{what} {value}: not one of {shown}")
