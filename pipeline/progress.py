"""What a build shows while a step runs: a live line per step on a terminal, plain lines elsewhere.

On a terminal (rich): the step's partitions done of all, the files and MB they read, the rate, the
time elapsed and the time left; the line goes when the step ends and its one summary line stays. When
stdout is not a terminal (CI, a log file, `| tee`), only a plain progress line every PLAIN_EVERY
seconds of a long step, then the summary lines. Ray's own lines never come here: the CLI sends them
to the run's log (`build.log`) unless `--verbose`.
"""
from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

PLAIN_EVERY = 30.0    # seconds between two plain progress lines of one step

Advance = Callable[[int, int], None]      # (files, bytes) of one finished partition


class BuildView:
    """Where a build's lines go: `echo` for the lines that stay, `step` for a step's live progress."""

    def __init__(self, live: bool | None = None, console: Console | None = None):
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.live = self.console.is_terminal if live is None else live

    def echo(self, line: str) -> None:
        if self.live:
            self.console.print(line, markup=False)
        else:
            print(line, flush=True)

    @contextlib.contextmanager
    def step(self, name: str, total: int) -> Iterator[Advance]:
        """A step of `total` partitions; the caller calls the yielded function once per finished one."""
        if self.live:
            yield from self._live(name, total)
        else:
            yield from self._plain(name, total)

    def _live(self, name: str, total: int) -> Iterator[Advance]:
        columns = (TextColumn(f"  {name:<15}"), BarColumn(bar_width=5), MofNCompleteColumn(),
                   TextColumn("{task.fields[files]:,} files {task.fields[mb]:,.1f} MB {task.fields[rate]:,.1f} MB/s"),
                   TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(compact=True))
        started = time.monotonic()
        with Progress(*columns, console=self.console, transient=True) as bar:
            task = bar.add_task(name, total=total, files=0, mb=0.0, rate=0.0)
            seen = {"files": 0, "bytes": 0}

            def advance(files: int, nbytes: int) -> None:
                seen["files"] += files
                seen["bytes"] += nbytes
                mb = seen["bytes"] / 1e6
                bar.update(task, advance=1, files=seen["files"], mb=mb, rate=mb / max(time.monotonic() - started, 1e-3))

            yield advance

    def _plain(self, name: str, total: int) -> Iterator[Advance]:
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


def quiet_view() -> BuildView:
    """Plain lines to stdout: what a library caller or a test gets."""
    return BuildView(live=False)
