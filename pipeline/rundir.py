"""The run directory: where a build keeps each stage's output, the tokenizer, shards and books.

    RUN/
      stages/NN_name/      each stage's records (Parquet), kept + dropped + quarantined, with reasons
      stages/06_near_dedup.clusters/   removed near-duplicates and the file each one duplicates
      stages/09_documents/ repository documents (packing.documents = "repo"): each file's document and position
      tokenizer/tokenizer.json
      shards/shard-NNNNN.arrow
      manifest.json        config, input fingerprint, package versions, per-stage books, shards
      stats.json           per-stage books, written after every stage (readable while a build runs)
      state.json           each finished step's fingerprint and books: what the next build may skip
      build.log            Ray's own log lines (the CLI sends them here unless --verbose)
      stages/NN_name.partial/   a stage being written: its finished partitions (kept by a crash)
      work/                intermediate results (near-dedup verified edges), with their fingerprints

A stage's output appears only when complete: it is written under a temporary name and renamed.
The stage and step names below are the one place the engine and the inspection tools take them from.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from codecorpus.errors import CodecorpusError


FILES = "files"                    # the per-file pass's output: kept/ (records with text), rejects/, bands/, signatures/
PER_FILE_STEP = "01-04_per_file"   # the step that makes it (the books of stages 01_ingest … 04_clean)
PER_FILE_STAGES = ("01_ingest", "02_language", "03_filter", "04_clean")
SHUFFLE_STAGES = ("05_exact_dedup", "06_near_dedup", "08_tokenize")   # their records are keys, without text
STAGES = (*PER_FILE_STAGES, *SHUFFLE_STAGES)                            # the stages that drop or quarantine files
CLUSTERS = "06_near_dedup.clusters"  # removed near duplicates and the kept file each one duplicates
DOCUMENTS = "09_documents"           # repository documents: each file's document and position in it
RUN_ENTRIES = {"stages", "tokenizer", "work", "shards", "export", "build.log", "stats.json", "manifest.json", "state.json",
               ".lock"}                # what a run folder holds (README: "What a run folder holds")


class RunDirError(CodecorpusError, RuntimeError):
    """The run directory cannot be used; the message says why."""


class RunDir:
    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    @property
    def stages(self) -> Path:
        return self.root / "stages"

    @property
    def shards(self) -> Path:
        return self.root / "shards"

    @property
    def tokenizer_path(self) -> Path:
        return self.root / "tokenizer" / "tokenizer.json"

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    @property
    def stats_path(self) -> Path:
        return self.root / "stats.json"

    def stage_dir(self, name: str) -> Path:
        return self.stages / name

    def files(self, part: str) -> Path:
        """A part of the per-file pass's output: `kept`, `rejects`, `bands` or `signatures`."""
        return self.stages / FILES / part

    @property
    def work(self) -> Path:
        return self.root / "work"

    def prepare(self) -> None:
        """Create the folder and prove it is writable before any work starts. A folder that holds other
        things than a run's is refused: a build never mixes its files with someone else's."""
        if self.root.exists() and not self.root.is_dir():
            raise RunDirError(f"output folder {self.root} is a file, not a folder; choose another --out")
        if self.root.is_dir() and not self.is_run():
            foreign = sorted(n for n in os.listdir(self.root) if n not in RUN_ENTRIES and not n.startswith(".write-test-"))
            if foreign:
                raise RunDirError(f"output folder {self.root} is not empty and not a codecorpus run (it holds "
                                  f"{', '.join(foreign[:3])}{', …' if len(foreign) > 3 else ''}); choose another --out")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".write-test-"):
                pass
        except OSError as exc:
            raise RunDirError(f"output folder {self.root} is not writable: {exc.strerror or exc}") from None
        for sub in ("stages", "tokenizer", "work"):
            (self.root / sub).mkdir(exist_ok=True)

    def temp_for(self, final: Path) -> Path:
        tmp = final.with_name(final.name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
        return tmp

    @staticmethod
    def publish(tmp: Path, final: Path) -> None:
        """Atomically put a completed output in place (replacing an older one)."""
        if final.exists():
            old = final.with_name(final.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()
        else:
            tmp.rename(final)

    def write_json(self, path: Path, data: dict) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)

    def read_json(self, path: Path) -> dict:
        return json.loads(path.read_text(encoding="utf-8"))

    @property
    def state_path(self) -> Path:
        return self.root / "state.json"

    def read_state(self) -> dict:
        return self.read_json(self.state_path) if self.state_path.is_file() else {}

    def write_state(self, state: dict) -> None:
        self.write_json(self.state_path, state)

    def forget(self) -> None:
        """Make the next build start over: no step is up to date, no partition or checkpoint reused."""
        self.state_path.unlink(missing_ok=True)
        for leftover in [*self.stages.glob("*.partial"), *self.root.rglob("*.fingerprint")]:
            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()

    @staticmethod
    def _mark(path: Path) -> Path:
        return path.with_name(path.name + ".fingerprint")

    def checkpoint_is(self, path: Path, fingerprint: str) -> bool:
        """Whether `path` holds a finished intermediate result made under `fingerprint`."""
        mark = self._mark(path)
        return path.exists() and mark.is_file() and mark.read_text() == fingerprint

    def mark_checkpoint(self, path: Path, fingerprint: str) -> None:
        tmp = self._mark(path).with_suffix(".tmp")
        tmp.write_text(fingerprint)
        os.replace(tmp, self._mark(path))

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One build at a time per run folder (the lock goes with the process, even on kill -9)."""
        with open(self.root / ".lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunDirError(f"another codecorpus build is running in {self.root}") from None
            yield

    def is_run(self) -> bool:
        return self.stats_path.is_file() or self.manifest_path.is_file() or self.state_path.is_file()
