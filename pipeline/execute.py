"""How a stage's records are computed on Ray, and the books that come back. Two shapes:

- `map_stage`: each record on its own, one partition per upstream file (or slice of one), written
  partition by partition under the stage's fingerprint, so a crash loses at most the partitions being
  written and the same command goes on where it stopped;
- `shuffle_stage`: whole hash partitions by a key of its inputs (codecorpus.pipeline.shuffle).

Each returns the stage's merged books (records in = kept + dropped + quarantined, per source and
language); what to do with them (check, keep, report) is the caller's.
"""
from __future__ import annotations

from typing import Callable

import pyarrow as pa

from codecorpus import storage
from codecorpus.pipeline.errors import BuildError
from codecorpus.pipeline.partitions import PartitionedStage, file_partitions, map_file
from codecorpus.pipeline.rundir import RunDir
from codecorpus.pipeline.shuffle import shuffle, write_reduced
from codecorpus.pipeline.view import PlainView
from codecorpus.stages.summary import merge


class StageRunner:
    """Runs stages into `run`, with `partitions` hash partitions for shuffles, reporting to `view`."""

    def __init__(self, run: RunDir, view: PlainView, partitions: int = 0):
        self.run = run
        self.view = view
        self.partitions = partitions

    def echo(self, line: str) -> None:
        self.view.echo(line)

    def run_partitions(self, name: str, work: PartitionedStage, payloads: list[dict], produce: Callable, kwargs: dict) -> list[dict]:
        """`produce(payload, **kwargs)` for each payload not yet written under `work`; returns every
        partition's summary once all are written."""
        total = len(payloads)
        done = len(work.done())
        if done:
            self.echo(f"  {name:<15} resuming: {done:,} of {total:,} partitions already written")
        with self.view.step(name, total - done) as advance:
            work.run(payloads, produce, kwargs, advance)
        written = work.done()
        if len(written) != total:
            raise BuildError(f"{name}: {len(written)} of {total} partitions written")
        return work.summaries()

    def map_stage(self, stage: str, fingerprint: str, upstream: str, fn: Callable[..., pa.Table], fn_kwargs: dict) -> dict:
        """`fn` over each file of `upstream`, written as stage `stage`; returns its books."""
        work = PartitionedStage(self.run.stage_dir(stage), fingerprint)
        summaries = self.run_partitions(stage, work, file_partitions(upstream), map_file, {"fn": fn, "fn_kwargs": fn_kwargs})
        work.publish(self.run.publish)
        return merge(summaries)

    def shuffle_stage(self, stage: str, inputs: dict[str, list[str]], key: str, fn: Callable[..., pa.Table],
                      columns: dict | None = None, schemas: dict | None = None) -> dict:
        """`fn` over whole hash partitions by `key` of `inputs`, written as stage `stage`; returns its books."""
        final = self.run.stage_dir(stage)
        tmp = self.run.temp_for(final)
        storage.make_dirs(tmp)
        summaries = shuffle(inputs, key, self.partitions, storage.join(self.run.work, "shuffle"), write_reduced,
                            {"out_dir": tmp, "fn": fn}, columns=columns, schemas=schemas)
        self.run.publish(tmp, final)
        return merge([s for s in summaries if s])
