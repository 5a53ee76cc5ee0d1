"""The runs an increment (`codecorpus build --base RUN`, pipeline.increment) is built on: RUN and
the increments before it, checked before any work starts — a finished build with the settings
that decide duplicates and ids as this config's, every run of its chain unchanged since."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from codecorpus.pipeline.config import BuildConfig
from codecorpus.pipeline.errors import BuildError
from codecorpus.pipeline.rundir import RunDir

MUST_MATCH = (      # the settings an increment shares with its base: (config key or section, what they are)
    ("dedup.exact.enabled", "dedup"), ("dedup.near.enabled", "dedup"), ("dedup.near.num_perm", "dedup"),
    ("dedup.near.ngram", "dedup"), ("dedup.near.threshold", "dedup"), ("dedup.near.seed", "dedup"),
    ("dedup.near.exact_jaccard", "dedup"), ("tokenizer", "tokenizer"), ("packing.seq_length", "row length"))


def _differences(key: str, theirs, mine) -> list[tuple[str, object, object]]:
    """(key, theirs, mine) of each setting under `key` that differs."""
    if isinstance(theirs, dict) and isinstance(mine, dict):
        return [d for k in sorted(set(theirs) | set(mine)) for d in _differences(f"{key}.{k}", theirs.get(k), mine.get(k))]
    return [] if theirs == mine else [(key, theirs, mine)]


@dataclass(frozen=True)
class Chain:
    """The finished runs an increment is deduplicated against, oldest first (the base last), each
    (path, manifest sha256)."""
    runs: tuple[tuple[str, str], ...]

    @property
    def base(self) -> RunDir:
        return RunDir(self.runs[-1][0])

    def dirs(self) -> list[RunDir]:
        return [RunDir(path) for path, _ in self.runs]

    def entry(self) -> dict:
        """What the increment's manifest says of its base."""
        path, sha = self.runs[-1]
        return {"path": path, "manifest_sha256": sha, "chain": [{"path": p, "manifest_sha256": s} for p, s in self.runs]}


def _setting(config: dict, dotted: str):
    for part in dotted.split("."):
        config = config.get(part, {}) if isinstance(config, dict) else None
    return config


def open_chain(base_path: Path, cfg: BuildConfig, out: Path) -> Chain:
    """The chain ending at `base_path`, checked before any work: a finished build (or increment)
    with this config's dedup, tokenizer and row length, every earlier run of its chain unchanged."""
    base, shown = RunDir(base_path), base_path        # messages name RUN as the user gave it
    if base.root == RunDir(out).root:
        raise BuildError(f"--base {shown}: the run being built; an increment is a new run folder")
    if not os.path.isdir(base.root):
        raise BuildError(f"--base {shown}: no such run folder")
    if not os.path.isfile(base.manifest_path) or not os.path.isfile(base.stats_path) or base.read_json(base.stats_path).get("status") != "complete":
        raise BuildError(f"--base {shown}: not a finished build (no manifest.json): build it to the end first")
    manifest_bytes = Path(base.manifest_path).read_bytes()
    manifest = json.loads(manifest_bytes)
    if "opt_out" in manifest:
        raise BuildError(f"--base {shown}: a removal (codecorpus remove); an increment is built on a build or an increment")
    ours = cfg.model_dump(mode="json")
    for key, what in MUST_MATCH:
        for name, theirs, mine in _differences(key, _setting(manifest["config"], key), _setting(ours, key))[:1]:
            raise BuildError(f"--base {shown}: built with other {what} settings ({name} = {theirs!r} there, {mine!r} "
                             f"in this config); an increment uses its base's")
    earlier = manifest.get("base", {}).get("chain", [])
    for run in earlier:
        if _sha256_of(Path(run["path"]) / "manifest.json") != run["manifest_sha256"]:
            raise BuildError(f"--base {shown}: {run['path']}, a run of its chain, is gone or changed since {shown} was built on it")
    chain = Chain(tuple((r["path"], r["manifest_sha256"]) for r in earlier)
                  + ((base.root, hashlib.sha256(manifest_bytes).hexdigest()),))
    for run in chain.dirs():
        if not os.path.isdir(run.files("kept")) or not os.path.isdir(run.stage_dir("06_near_dedup")):
            raise BuildError(f"--base {shown}: the records of {run.root} are gone (stages/); an increment reads them")
    return chain


def _sha256_of(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
