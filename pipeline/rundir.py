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

A stage's output appears only when complete: it is written under a temporary name and renamed. In
object storage (`--out s3://…`), which has no rename, it is written in place and counts only once
state.json says so.
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

from codecorpus import storage
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
    """A run folder on a disk or in object storage (`s3://bucket/prefix`); its paths are strings."""

    def __init__(self, root: str | Path):
        self.root = str(root).rstrip("/") if storage.is_remote(str(root)) else str(Path(root).resolve())

    @property
    def remote(self) -> bool:
        return storage.is_remote(self.root)

    def path(self, *names: str) -> str:
        return storage.join(self.root, *names)

    @property
    def stages(self) -> str:
        return self.path("stages")

    @property
    def shards(self) -> str:
        return self.path("shards")

    @property
    def tokenizer_path(self) -> str:
        return self.path("tokenizer", "tokenizer.json")

    @property
    def manifest_path(self) -> str:
        return self.path("manifest.json")

    @property
    def stats_path(self) -> str:
        return self.path("stats.json")

    def stage_dir(self, name: str) -> str:
        return self.path("stages", name)

    def files(self, part: str) -> str:
        """A part of the per-file pass's output: `kept`, `rejects`, `bands` or `signatures`."""
        return self.path("stages", FILES, part)

    @property
    def work(self) -> str:
        return self.path("work")

    def prepare(self) -> None:
        """Create the folder and prove it is writable before any work starts. A folder that holds other
        things than a run's is refused: a build never mixes its files with someone else's."""
        if self.remote:
            return self._prepare_remote()
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise RunDirError(f"output folder {self.root} is a file, not a folder; choose another --out")
        if os.path.isdir(self.root) and not self.is_run():
            self._refuse_foreign(os.listdir(self.root))
        try:
            os.makedirs(self.root, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".write-test-"):
                pass
        except OSError as exc:
            raise RunDirError(f"output folder {self.root} is not writable: {exc.strerror or exc}") from None
        for sub in ("stages", "tokenizer", "work"):
            os.makedirs(self.path(sub), exist_ok=True)

    def _prepare_remote(self) -> None:
        """The same checks in object storage: what is under the prefix, and a test object written and deleted."""
        probe = self.path(f".write-test-{os.getpid()}")
        try:
            if storage.is_file(self.root):
                raise RunDirError(f"output {self.root} is an object, not a folder; choose another --out")
            if not self.is_run():
                self._refuse_foreign([storage.basename(e.path) for e in storage.list_dir(self.root)])
            storage.write_bytes(probe, b"")
            storage.remove(probe)
        except OSError as exc:
            raise RunDirError(f"output folder {self.root} is not writable: {storage.describe_error(exc)}") from None

    def _refuse_foreign(self, names: list[str]) -> None:
        foreign = sorted(n for n in names if n not in RUN_ENTRIES and not n.startswith(".write-test-"))
        if foreign:
            raise RunDirError(f"output folder {self.root} is not empty and not a codecorpus run (it holds "
                              f"{', '.join(foreign[:3])}{', …' if len(foreign) > 3 else ''}); choose another --out")

    def temp_for(self, final: str) -> str:
        """Where an output is written before publish(): beside it on a disk (renamed into place when
        complete); in object storage, where a rename is a copy of every object, in place — there a
        step counts as done only once state.json, written after, says so."""
        tmp = final if self.remote else final + ".tmp"
        storage.remove(tmp)
        return tmp

    @staticmethod
    def publish(tmp: str, final: str) -> None:
        """Put a completed output in place (replacing an older one): on a disk atomically, by renames;
        in object storage it was written in place (temp_for), and an empty folder is made to exist."""
        if tmp == final:
            storage.keep_folder(final)
        elif os.path.exists(final):
            old = final + ".old"
            shutil.rmtree(old, ignore_errors=True)
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True) if os.path.isdir(old) else os.unlink(old)
        else:
            os.rename(tmp, final)

    def write_json(self, path: str, data: dict) -> None:
        storage.write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")

    def read_json(self, path: str) -> dict:
        return json.loads(storage.read_text(path))

    @property
    def state_path(self) -> str:
        return self.path("state.json")

    def read_state(self) -> dict:
        return self.read_json(self.state_path) if storage.is_file(self.state_path) else {}

    def write_state(self, state: dict) -> None:
        self.write_json(self.state_path, state)

    def forget(self) -> None:
        """Make the next build start over: no step is up to date, no partition or checkpoint reused."""
        storage.remove(self.state_path)
        if self.remote:   # stages written in place: their partitions' marks (partitions.PartitionedStage)
            leftovers = {e.path for e in storage.walk_files(self.root) if e.path.endswith((".fingerprint", "/FINGERPRINT"))}
        else:
            root = Path(self.root)
            leftovers = {str(p) for p in [*root.joinpath("stages").glob("*.partial"), *root.rglob("*.fingerprint")]}
        for leftover in sorted(leftovers):
            storage.remove(leftover)

    def checkpoint_is(self, path: str, fingerprint: str) -> bool:
        """Whether `path` holds a finished intermediate result made under `fingerprint`."""
        mark = path + ".fingerprint"
        return storage.exists(path) and storage.is_file(mark) and storage.read_text(mark) == fingerprint

    def mark_checkpoint(self, path: str, fingerprint: str) -> None:
        storage.write_text(path + ".fingerprint", fingerprint)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One build at a time per run folder (the lock goes with the process, even on kill -9). Object
        storage has no such lock: there, running one build at a time per run is the user's part."""
        if self.remote:
            yield
            return
        with open(self.path(".lock"), "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunDirError(f"another codecorpus build is running in {self.root}") from None
            yield

    def is_run(self) -> bool:
        return any(storage.is_file(p) for p in (self.stats_path, self.manifest_path, self.state_path))
