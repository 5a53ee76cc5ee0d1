"""A Parquet sink that also summarises what it writes, so a stage's statistics come from the write
tasks themselves (one small summary per task) instead of a second pass over the stage's output."""
from __future__ import annotations

from ray.data._internal.datasource.parquet_datasink import ParquetDatasink
from ray.data.block import BlockAccessor

from stages.summary import merge, summarize


class SummarizingParquetSink(ParquetDatasink):
    def __init__(self, path: str, min_rows_per_file: int):
        super().__init__(path, min_rows_per_file=min_rows_per_file)
        self.summaries: list[dict] = []

    def write(self, blocks, ctx) -> list[dict]:
        blocks = [b for b in blocks if BlockAccessor.for_block(b).num_rows() > 0]
        summaries = [summarize(BlockAccessor.for_block(b).to_arrow()) for b in blocks]
        super().write(blocks, ctx)
        return summaries

    def on_write_complete(self, write_result) -> None:
        super().on_write_complete(write_result)
        self.summaries = [s for task in write_result.write_returns if task for s in task]

    def stage_stats(self) -> dict:
        return merge(self.summaries)
