"""What a build shows while a step runs: a live line per step on a terminal, plain lines elsewhere.

On a terminal (rich): the step's partitions done of all, the files and MB they read, the rate, the
time elapsed and the time left; the line goes when the step ends and its one summary line stays. When
stdout is not a terminal (CI, a log file, `| tee`), the engine's plain lines (codecorpus.pipeline.view).
Ray's own lines never come here: the CLI sends them to the run's log (`build.log`) unless `--verbose`.
"""
from __future__ import annotations

import contextlib
import time
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from codecorpus.pipeline.view import Advance, PlainView


class BuildView(PlainView):
    """A live progress line per step on a terminal (`live`, by default when stdout is one)."""

    def __init__(self, live: bool | None = None, console: Console | None = None):
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.live = self.console.is_terminal if live is None else live

    def echo(self, line: str) -> None:
        if self.live:
            self.console.print(line, markup=False)
        else:
            super().echo(line)

    @contextlib.contextmanager
    def step(self, name: str, total: int) -> Iterator[Advance]:
        if not self.live:
            with super().step(name, total) as advance:
                yield advance
            return
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
