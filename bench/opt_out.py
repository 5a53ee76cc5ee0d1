"""Opt-outs without a rebuild: `codecorpus remove` of 5% of the demo's repositories, against the build.

The demo (configs/demo.toml: this interpreter's standard library and site-packages, each top-level
folder a repository) is built (or `--run` names a finished build: its time is read from its
stats.json); a seeded 5% of the repositories that have files in its shards are written to an
opt-out file, and `codecorpus remove` cuts a new run without them. Checked by decoding, not by what
`remove` reports: the new shards' documents are exactly the base's tokenized files minus the removed
repositories' (each file once, matched by its token ids), the shards that held none of them are the
base's bytes, and the base's shards are unchanged.

    .venv/bin/python -m bench.opt_out [--run RUN] [--share 0.05]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pyarrow.dataset as pads
import xxhash

from codecorpus.stages.pack import shard_documents

ROOT = Path(__file__).resolve().parents[1]


def codecorpus(*args: str) -> float:
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "codecorpus", *args], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        raise SystemExit(proc.stdout[-2000:] + proc.stderr[-2000:])
    print(proc.stdout.rstrip())
    return time.time() - t0


def digest(ids) -> int:
    return xxhash.xxh64_intdigest(memoryview(ids.astype("int32")).cast("B"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, help="a finished build of configs/demo.toml (default: build one)")
    ap.add_argument("--share", type=float, default=0.05)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.run:
            run = args.run.resolve()
            build_s = json.loads((run / "stats.json").read_text())["elapsed_seconds"]
        else:
            run = tmp / "demo"
            build_s = codecorpus("build", str(ROOT / "configs" / "demo.toml"), "--out", str(run))
        manifest = json.loads((run / "manifest.json").read_text())
        records = pads.dataset(str(run / "stages" / "08_tokenize"), format="parquet").to_table(
            columns=["repo", "tokens", "status"])
        repos = sorted({r for r, s in zip(records.column("repo").to_pylist(), records.column("status").to_pylist())
                        if r and s == "kept"})
        chosen = sorted(repos, key=lambda r: xxhash.xxh64_intdigest(r.encode()))[:max(1, round(args.share * len(repos)))]
        (tmp / "opt-out.txt").write_text("".join(f"{r}\n" for r in chosen))
        before = {e["shard"]: sha256(run / "shards" / e["shard"]) for e in manifest["shards"]}
        remove_s = codecorpus("remove", str(run), "--repos", str(tmp / "opt-out.txt"), "--out", str(tmp / "cut"))

        eod = manifest["tokenizer"]["eod_id"]
        gone, stay = Counter(), Counter()
        removed_set = set(chosen)
        for repo, ids, status in zip(*(records.column(c).to_numpy(zero_copy_only=False) for c in ("repo", "tokens", "status"))):
            if status == "kept":
                (gone if repo in removed_set else stay)[digest(ids[:-1])] += 1
        cut = json.loads((tmp / "cut" / "manifest.json").read_text())
        got = Counter(digest(d) for e in cut["shards"] for d in shard_documents(tmp / "cut" / "shards" / e["shard"], eod))
        held = {e["shard"]: {digest(d) for d in shard_documents(run / "shards" / e["shard"], eod)} for e in manifest["shards"]}
        untouched = [s for s, docs in held.items() if not docs & set(gone)]
        same = all(sha256(tmp / "cut" / "shards" / s) == before[s] for s in untouched)
        base_same = all(sha256(run / "shards" / s) == h for s, h in before.items())
        print(f"\n{len(chosen)} of {len(repos)} repositories removed ({sum(gone.values()):,} files); "
              f"{cut['opt_out']['shards_rewritten']} of {len(manifest['shards'])} shards packed again")
        print(f"build {build_s:.1f} s, remove {remove_s:.1f} s: {remove_s / build_s:.1%} of the build (target ≤ 10%)")
        print(f"new shards hold every other file exactly once and none of the removed: {got == stay}; "
              f"untouched shards byte-identical ({len(untouched)}): {same}; base shards unchanged: {base_same}")


if __name__ == "__main__":
    main()
