"""Near-dedup at scale on Ray: wall time and peak RSS per worker as the number of documents grows.

Documents are made inside the Ray tasks (the driver never holds them) from real files of this
machine (standard library and site-packages `.py`, first 4 KB) with random edits seeded by the
document number: document i is file i mod F with a few lines changed, so each file yields a
cluster of near-duplicates. The build's own near-dedup runs on them: batch MinHash signatures and
band keys (the per-file pass's `band_rows`), the file shuffle by bucket key (pipeline.shuffle),
candidate pairs per bucket, their verification by signatures (two shuffles by id), then the
components by distributed large-star/small-star rounds of shuffles, a shuffle by component that keeps
files in order, and the marking: a shuffle of the documents' ids and the removed ids by id. Memory: a sampler thread reads every Ray worker process
(tasks and the shuffle's aggregator actors) twice a second — its own private memory, and apart from
it the object-store pages it has touched (see WorkerMemory) — and the tasks that compute edges
report their process's lifetime peak RSS. Reported per size and per phase: wall time, documents/s,
the largest worker's own memory and object-store pages, files removed; then how time and memory grow between sizes, and the rate
per core to extrapolate from.

    .venv/bin/python -m bench.dedup_scale [--sizes 100000,300000,1000000] [--cpus N]
"""
from __future__ import annotations

import argparse
import random
import resource
import shutil
import sysconfig
import tempfile
import threading
import time
from pathlib import Path

import psutil

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet  # noqa: F401 (pa.parquet)
import ray
import ray.data

from codecorpus.pipeline.ray_runtime import tune_ray_data, worker_env
from codecorpus.pipeline.config import RayConfig
from codecorpus.pipeline.dedup import keep_in_order_by_shuffles, verified_edges
from codecorpus.pipeline.shuffle import shuffle
from codecorpus.stages import near_dedup
from codecorpus.stages.exact_dedup import add_content_hash
from codecorpus.stages.per_file import NearDedupSettings, band_rows
from codecorpus.storage import parquet_files

DOC_BYTES = 4096


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _base(path: str) -> list[str]:
    # not functools.lru_cache: this module may run as __main__, whose functions Ray ships by value
    return Path(path).read_text(encoding="utf-8", errors="replace")[:DOC_BYTES].splitlines()


def make_docs(batch: dict, files: list[str]) -> pa.Table:
    ids, texts, ranks = [], [], []
    for i in batch["id"].tolist():
        rng = random.Random(i)
        lines = list(_base(files[i % len(files)]))
        for k in rng.sample(range(len(lines)), min(len(lines), 2)):
            lines[k] = lines[k] + f"  # edit {rng.randrange(1000)}"
        ids.append(f"doc{i:09d}")
        ranks.append(f"{i:012d}")
        texts.append("\n".join(lines))
    return pa.table({"id": ids, "rank_key": ranks, "text": texts})


def signature_rows(batch: pa.Table, bands: int, rows: int, out: str) -> pa.Table:
    """Writes the batch's band rows and signatures (as the per-file pass does, to `out`/bands and
    `out`/signatures) and returns how many documents it wrote."""
    keyed, signatures = band_rows(add_content_hash(batch), NearDedupSettings(256, 5, 1, bands, rows))
    name = f"{batch.column('id')[0].as_py()}.parquet"
    for kind, table in (("bands", keyed), ("signatures", signatures)):
        pa.parquet.write_table(table, str(Path(out) / kind / name))
    return pa.table({"docs": [batch.num_rows]})


class WorkerMemory:
    """The largest memory of any Ray worker process (name `ray::…`) while it runs, in MB, sampled twice a
    second and split the way /proc/PID/smaps allows: the process's own private memory (heap, Arrow
    buffers, Python objects) and the pages of Ray's shared-memory object store it has touched. Linux
    counts a shared page touched by one process only as that process's "private" (USS) memory, so a
    worker that wrote many blocks into the object store shows them in its USS although they belong to
    the store (bounded by `object_store_memory`, spilled to disk beyond it)."""

    def __init__(self, every: float = 0.5):
        self.every, self.own, self.store, self.rss, self.who = every, 0.0, 0.0, 0.0, ""
        self.phase, self.own_by_phase, self.store_by_phase, self.who_by_phase, self.seconds_by_phase = "", {}, {}, {}, {}
        # the growth of a process's own memory while one task runs (a reused worker keeps what earlier
        # tasks left in its heap; the growth is what the task itself added)
        self.task_low: dict[tuple[int, str], float] = {}
        self.growth, self.growth_who, self.growth_by_phase = 0.0, "", {}
        self.phase_started = time.perf_counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)

    def enter(self, phase: str) -> None:
        now = time.perf_counter()
        if self.phase:
            self.seconds_by_phase[self.phase] = now - self.phase_started
        self.phase, self.phase_started = phase, now

    @staticmethod
    def measure(proc: psutil.Process) -> tuple[float, float, float]:
        """(own private MB, object-store MB mapped privately, RSS MB) of one process."""
        own = store = rss = 0.0
        for m in proc.memory_maps(grouped=True):
            private = (m.private_clean + m.private_dirty) / 2**20
            if "plasma" in m.path or m.path.startswith("/dev/shm"):
                store += private
            else:
                own += private
            rss += m.rss / 2**20
        return own, store, rss

    def sample(self) -> None:
        while not self.stop.wait(self.every):
            for proc in psutil.process_iter(["name"]):
                try:
                    name = " ".join(proc.cmdline()[:1])
                    if not name.startswith("ray::") or "IDLE" in name:
                        continue
                    own, store, rss = self.measure(proc)
                except (psutil.Error, OSError):
                    continue
                if own > self.own:
                    self.own, self.who = own, name[:60]
                low = self.task_low.setdefault((proc.pid, name), own)
                self.task_low[(proc.pid, name)] = min(low, own)
                grown = own - self.task_low[(proc.pid, name)]
                if grown > self.growth:
                    self.growth, self.growth_who = grown, name[:60]
                self.growth_by_phase[self.phase] = max(self.growth_by_phase.get(self.phase, 0.0), grown)
                if own > self.own_by_phase.get(self.phase, 0.0):
                    self.own_by_phase[self.phase], self.who_by_phase[self.phase] = own, name[:60]
                self.store_by_phase[self.phase] = max(self.store_by_phase.get(self.phase, 0.0), store)
                self.store, self.rss = max(self.store, store), max(self.rss, rss)

    def __enter__(self) -> "WorkerMemory":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def _count_removed(docs: pa.Table, removed: pa.Table, partition: int) -> int:
    return int(pc.sum(pc.is_in(docs.column("id"), value_set=removed.column("id").combine_chunks())).as_py() or 0)


def run(n: int, files: list[str], work: Path, docs_per_partition: int, cpus: int) -> dict:
    bands, rows = near_dedup.lsh_params(0.7, 256)
    # a fixed share per shuffle partition (what `ray.shuffle_partitions` should be set to on a cluster)
    partitions = max(2 * cpus, n // docs_per_partition)
    scratch = work / "shuffle"
    start = time.perf_counter()
    memory = WorkerMemory().__enter__()
    memory.enter("signatures")
    docs = ray.data.range(n, override_num_blocks=max(4, n // 5000)).map_batches(
        make_docs, batch_format="numpy", batch_size=1000, fn_kwargs={"files": files})
    out, ids_dir = work / f"per-file-{n}", work / f"ids-{n}"
    for kind in ("bands", "signatures"):
        (out / kind).mkdir(parents=True)
    written = sum(int(b["docs"].sum()) for b in docs.map_batches(
        signature_rows, batch_format="pyarrow", batch_size=2500, fn_kwargs={"bands": bands, "rows": rows, "out": str(out)}
    ).iter_batches(batch_format="numpy"))
    assert written == n
    edges_dir = work / f"edges-{n}"
    edges_dir.mkdir()
    memory.enter("verified edges")
    verified_edges(parquet_files(out / "bands"), parquet_files(out / "signatures"), edges_dir, work / f"verify-{n}", partitions,
                   0.7, exact_jaccard=False, exact_dedup=True)
    candidates = sum(pa.parquet.ParquetFile(f).metadata.num_rows for f in parquet_files(edges_dir))
    memory.enter("components")
    removed_files, rounds = keep_in_order_by_shuffles(parquet_files(edges_dir), work / f"components-{n}", partitions)
    # the marking, as the build does it: the documents' ids and the removed ids shuffled by id
    memory.enter("marking")
    docs.select_columns(["id"]).write_parquet(str(ids_dir))
    counts = shuffle({"docs": parquet_files(ids_dir), "removed": removed_files}, "id", partitions, scratch, _count_removed,
                     columns={"removed": ["id"]}, schemas={"removed": pa.schema([("id", pa.string())])})
    removed = sum(counts)
    seconds = time.perf_counter() - start
    memory.enter("")
    memory.__exit__()
    return {"docs": n, "seconds": seconds, "rss_mb": memory.rss, "removed": removed, "rounds": rounds,
            "worker_own_mb": memory.own, "task_growth_mb": memory.growth, "growth_who": memory.growth_who, "worker_store_mb": memory.store, "worker_rss_mb": memory.rss, "largest": memory.who,
            "edges": candidates,
            "phases": {k: (memory.seconds_by_phase.get(k, 0.0), memory.own_by_phase.get(k, 0.0), memory.store_by_phase.get(k, 0.0),
                           memory.who_by_phase.get(k, ""), memory.growth_by_phase.get(k, 0.0)) for k in memory.seconds_by_phase}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--cpus", type=int, default=None)
    parser.add_argument("--docs-per-partition", type=int, default=2500)
    defaults = RayConfig()
    parser.add_argument("--read-task-bytes", type=int, default=defaults.read_task_bytes,
                        help="uncompressed Parquet of one read task (ray.read_task_bytes; Ray's own default is 128 MiB)")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="leave Arrow's allocator its default of keeping freed pages (ray.release_freed_memory = false)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    files = sorted(str(p) for root in dict.fromkeys((sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"]))
                   for p in Path(root).rglob("*.py") if 2048 <= p.stat().st_size)
    settings = RayConfig(read_task_bytes=args.read_task_bytes, release_freed_memory=not args.keep_freed_memory)
    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": worker_env(settings)})
    tune_ray_data(settings)
    cpus = int(ray.cluster_resources()["CPU"])
    work = Path(tempfile.mkdtemp(prefix="bench-dedup-scale-"))
    print(f"{len(files):,} real base files; {cpus} CPUs; file shuffles by plain Ray tasks; "
          f"{args.read_task_bytes / 2**20:.0f} MiB per Parquet read task, "
          f"freed memory {'kept by' if args.keep_freed_memory else 'returned at once by'} Arrow's allocator")
    results = []
    try:
        for n in sizes:
            r = run(n, files, work, args.docs_per_partition, cpus)
            results.append(r)
            print(f"  {n:>9,} docs: {r['seconds']:7.1f} s  {n / r['seconds']:7.0f} docs/s  ({n / r['seconds'] / cpus:5.0f} per core)  "
                  f"largest worker's own memory {r['worker_own_mb']:6.0f} MB ({r['largest']}), object-store pages in a worker "
                  f"{r['worker_store_mb']:6.0f} MB, RSS {r['worker_rss_mb']:6.0f} MB, edge tasks' peak RSS {r['rss_mb']:6.0f} MB  "
                  f"verified edges {r['edges']:,}  removed {r['removed']:,}  component rounds {r['rounds']}")
            print(f"      the largest growth of a worker's own memory during one task: {r['task_growth_mb']:.0f} MB ({r['growth_who']})")
            for k, (t, own, store, who, grown) in r["phases"].items():
                print(f"      {k:<16} {t:7.1f} s  largest worker's own memory {own:6.0f} MB ({who}), grown within a task "
                      f"{grown:6.0f} MB, object-store pages {store:6.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for a, b in zip(results, results[1:]):
        print(f"  ×{b['docs'] / a['docs']:.1f} docs → ×{b['seconds'] / a['seconds']:.2f} time, "
              f"×{b['worker_own_mb'] / max(a['worker_own_mb'], 1):.2f} largest worker's own memory, "
              f"×{b['task_growth_mb'] / max(a['task_growth_mb'], 1):.2f} largest growth within a task, "
              f"×{b['worker_store_mb'] / max(a['worker_store_mb'], 1):.2f} object-store pages, "
              f"×{b['rss_mb'] / max(a['rss_mb'], 1):.2f} edge tasks' peak RSS")
    rate = results[-1]["docs"] / results[-1]["seconds"] / cpus
    print(f"rate at the largest size: {rate:.0f} documents/s per core → 200M files on 1,000 cores ≈ "
          f"{200e6 / (rate * 1000) / 60:.0f} min (documents of ≤ {DOC_BYTES} bytes; scale by the mean file size)")


if __name__ == "__main__":
    main()
