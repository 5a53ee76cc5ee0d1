"""Where a build reports: `echo` for the lines that stay, `step` for a step's progress.

The engine reports to a view it is given and never draws anything itself. `PlainView` (the default:
a library caller, a log file, CI) prints the summary lines and, during a long step, a plain progress
line every PLAIN_EVERY seconds; the command line passes a live terminal view
(codecorpus.interface.progress) built on it.
"""
from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterator

PLAIN_EVERY = 30.0    # seconds between two plain progress lines of one step

Advance = Callable[[int, int], None]      # (files, bytes) of one finished partition


class PlainView:
    """Plain lines to stdout."""

    def echo(self, line: str) -> None:
        print(line, flush=True)

    @contextlib.contextmanager
    def step(self, name: str, total: int) -> Iterator[Advance]:
        """A step of `total` partitions; the caller calls the yielded function once per finished one."""
        started = last = time.monotonic()
        seen = {"done": 0, "files": 0, "bytes": 0}

        def advance(files: int, nbytes: int) -> None:
            nonlocal last
            seen["done"] += 1
            seen["files"] += files
            seen["bytes"] += nbytes
            now = time.monotonic()
            if now - last >= PLAIN_EVERY and seen["done"] < total:
                last = now
                print(f"  {name:<15} {seen['done']:,}/{total:,} partitions, {seen['files']:,} files, "
                      f"{seen['bytes'] / 1e6:,.1f} MB, {now - started:.0f}s", flush=True)

        yield advance
