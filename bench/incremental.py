"""A corpus that grows: an increment (`codecorpus build --base`) against a full build from scratch.

Input: the demo's (this interpreter's standard library and site-packages, each top-level folder a
repository, the demo's filters and dedup settings), hard-linked into two folders per source by a
seeded split of the repositories — a repository is never split: ~90% of them the base, the others
(~10%) the increment. Three builds, each `codecorpus build` in a fresh process as a user runs it:

1. the base: the base's repositories;
2. the increment: the others, `--base` the base (reads only its own input);
3. the full build: all of them from scratch, same settings.

The full build lists the base's sources before the increment's (source priority, dedup's first
tie-break): a file of the base is then the copy it keeps, as an increment must (the base's shards
are out already; an increment never removes a base file). Agreement, read from the runs' records,
not from what the increment reports: of the new files the full build removes as duplicates of base
files (exact: a base file has the content hash; near: the clusters table names a base file), the
share the increment removes; of the new files the full build keeps, the share the increment keeps.
The base's shards are hashed before and after.

`--more` adds this interpreter's base installation's site-packages and /usr/include (C headers) as
two more sources, split the same way: a larger input, to see how the ratio moves with size.

    .venv/bin/python -m bench.incremental [--share 0.1] [--more] [--cluster] [--keep DIR]
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as pads
import xxhash

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"stdlib": (sysconfig.get_paths()["stdlib"], {"site-packages", "dist-packages", "test", "__pycache__"}),
           "site-packages": (sysconfig.get_paths()["purelib"], {"__pycache__"})}
MORE = {"base-interpreter": (str(Path(sys.base_prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"),
                             {"__pycache__"}),
        "c-headers": ("/usr/include", set())}   # --more: the base interpreter's own packages and the C headers too
SETTINGS = (ROOT / "configs" / "demo.toml").read_text().split("[filters]", 1)[1]   # the demo's filters, dedup, tokenizer…


def split_input(tmp: Path, share: float, sources: dict = SOURCES) -> dict[str, dict[str, Path]]:
    """Each source's repositories hard-linked (a copy across filesystems) into tmp/base-NAME or
    tmp/new-NAME: in the order of a seeded hash of their names, repositories go to the increment
    while it holds at most `share` of the source's text (text_bytes); loose files stay with the base."""
    roots = {}
    for name, (src, skip) in sources.items():
        base, new = tmp / f"base-{name}", tmp / f"new-{name}"
        base.mkdir(parents=True)
        new.mkdir(parents=True)
        folders = [e for e in os.scandir(src) if e.is_dir(follow_symlinks=False) and e.name not in skip]
        size = {e.name: text_bytes(Path(e.path)) for e in folders}
        budget, chosen = share * sum(size.values()), set()
        for e in sorted(folders, key=lambda e: xxhash.xxh64_intdigest(f"{name}/{e.name}".encode(), seed=7)):
            if size[e.name] <= budget:
                chosen.add(e.name)
                budget -= size[e.name]
        for entry in folders:
            shutil.copytree(entry.path, (new if entry.name in chosen else base) / entry.name, copy_function=_link,
                            ignore=shutil.ignore_patterns("__pycache__"), symlinks=True)
        for entry in os.scandir(src):
            if entry.is_file(follow_symlinks=False):
                _link(entry.path, base / entry.name)
        roots[name] = {"base": base, "new": new}
    return roots


def text_bytes(folder: Path) -> int:
    """About what a build reads of a folder: files up to 1 MB without a NUL byte in their first 4 KB,
    outside test folders (the demo's excludes)."""
    total = 0
    for path in folder.rglob("*"):
        if path.is_symlink() or not path.is_file() or {"test", "tests"} & set(path.relative_to(folder).parts[:-1]):
            continue
        size = path.stat().st_size
        if size <= 1 << 20:
            with path.open("rb") as fh:
                total += size if b"\0" not in fh.read(4096) else 0
    return total


def _link(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def config(roots: dict[str, dict[str, Path]], parts: tuple[str, ...]) -> str:
    """Sources: the base's then the increment's (priorities 0, 1… then on), the demo's settings."""
    text = ""
    for k, part in enumerate(("base", "new")):
        for j, name in enumerate(roots):
            if part in parts:
                text += (f'[[sources]]\nname = "{part}-{name}"\nkind = "scraped"\npaths = ["{roots[name][part]}"]\n'
                         f'exclude = ["*/test/*", "*/tests/*"]\npriority = {k * len(roots) + j}\n\n')
    return text + "[filters]" + SETTINGS


# the cluster started here authenticates with a token of its own (Ray ≥ 2.59), whatever ~/.ray holds
CLUSTER_ENV = {"RAY_ADDRESS": "", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}


def build(cfg: Path, out: Path, *extra: str, address: str | None = None) -> float:
    started = time.time()
    proc = subprocess.run([sys.executable, "-m", "codecorpus", "build", str(cfg), "--out", str(out), *extra,
                           *(["--address", address] if address else [])], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(CLUSTER_ENV if address else {"RAY_ADDRESS": ""})})
    if proc.returncode:
        raise SystemExit(proc.stdout[-3000:] + proc.stderr[-3000:])
    print(proc.stdout.rstrip())
    return time.time() - started


@contextlib.contextmanager
def ray_cluster(cpus: int):
    """A Ray head on 127.0.0.1 started here (`ray start --head`), its processes stopped after (only
    those whose files are under its own temp dir: never `ray stop`, which stops every Ray here)."""
    import psutil

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp_dir = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    subprocess.run([str(Path(sys.executable).with_name("ray")), "start", "--head", f"--port={port}", f"--num-cpus={cpus}",
                    "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}"], check=True,
                   capture_output=True, env={**os.environ, **CLUSTER_ENV})
    try:
        yield f"127.0.0.1:{port}"
    finally:
        ours = [p for p in psutil.process_iter(["cmdline"]) if any(temp_dir in c for c in p.info["cmdline"] or [])]
        ours += [c for p in ours for c in p.children(recursive=True)]
        for p in ours:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        psutil.wait_procs(ours, timeout=30)


def shard_hashes(run: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((run / "shards").glob("*.arrow"))}


def fates(run: Path) -> dict[str, str]:
    """Each file's fate after near dedup: `kept` or the dedup reason (files the per-file pass dropped left out)."""
    out = {}
    for stage in ("05_exact_dedup", "06_near_dedup"):
        t = pads.dataset(str(run / "stages" / stage), format="parquet").to_table(columns=["id", "status", "reason"])
        for i, s, r in zip(*(t.column(c).to_pylist() for c in ("id", "status", "reason"))):
            out[i] = "kept" if s == "kept" else r
    return out


def removed_for_base(full: Path) -> set[str]:
    """The new files the full build removes as duplicates of base files: exact (a base file has the
    content hash, and the base's sources come first) or near (the clusters table's kept file is the base's)."""
    kept = pads.dataset(str(full / "stages" / "files" / "kept"), format="parquet").to_table(columns=["id", "source", "content_hash"])
    is_base = pc.starts_with(kept.column("source"), "base-")
    base_hashes = kept.filter(is_base).column("content_hash").unique()
    exact = pads.dataset(str(full / "stages" / "05_exact_dedup"), format="parquet").to_table(
        columns=["id"], filter=pc.field("reason") == "exact_duplicate").column("id")
    new = kept.filter(pc.invert(is_base))
    copies = set(new.filter(pc.is_in(new.column("content_hash"), value_set=base_hashes)).column("id").to_pylist())
    out = copies & set(exact.to_pylist())
    clusters = pads.dataset(str(full / "stages" / "06_near_dedup.clusters"), format="parquet").to_table(columns=["id", "survivor_id"])
    base_ids = set(kept.filter(is_base).column("id").to_pylist())
    return out | {i for i, s in zip(clusters.column("id").to_pylist(), clusters.column("survivor_id").to_pylist()) if s in base_ids}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--share", type=float, default=0.1, help="share of the repositories added as the increment")
    ap.add_argument("--keep", type=Path, help="keep the three runs (and the input) in this folder")
    ap.add_argument("--more", action="store_true", help="a larger input: also this interpreter's base installation's "
                    "site-packages and /usr/include (C headers), where they exist")
    ap.add_argument("--cluster", action="store_true", help="the three builds join one Ray cluster started here (as on a "
                    "cluster, where Ray is up before a build), instead of each starting and stopping a local Ray")
    args = ap.parse_args()
    with ray_cluster(2) if args.cluster else contextlib.nullcontext() as address:
        measure(args, address)


def measure(args: argparse.Namespace, address: str | None) -> None:
    with tempfile.TemporaryDirectory(dir=ROOT / "runs" if (ROOT / "runs").is_dir() else None) as scratch:
        tmp = (args.keep or Path(scratch)).resolve()
        more = {k: v for k, v in MORE.items() if args.more and Path(v[0]).is_dir() and v[0] != SOURCES["site-packages"][0]}
        roots = split_input(tmp / "input", args.share, {**SOURCES, **more})
        for name, parts in (("base", ("base",)), ("increment", ("new",)), ("full", ("base", "new"))):
            (tmp / f"{name}.toml").write_text(config(roots, parts))
        print("== base")
        base_s = build(tmp / "base.toml", tmp / "base", address=address)
        before = shard_hashes(tmp / "base")
        print("== increment")
        inc_s = build(tmp / "increment.toml", tmp / "increment", "--base", str(tmp / "base"), address=address)
        print("== full")
        full_s = build(tmp / "full.toml", tmp / "full", address=address)

        full, inc = fates(tmp / "full"), fates(tmp / "increment")
        new = [i for i in inc]                                  # the new files that reached dedup
        dup = removed_for_base(tmp / "full")
        dup_new = [i for i in new if i in dup]
        kept_full = [i for i in new if full.get(i) == "kept"]
        removed = sum(inc[i] != "kept" for i in dup_new)
        kept = sum(inc[i] == "kept" for i in kept_full)
        same = sum(full.get(i) == inc[i] or (full.get(i) != "kept" and inc[i] != "kept") for i in new)
        stats = {n: json.loads((tmp / n / "stats.json").read_text()) for n in ("base", "increment", "full")}
        in_bytes = {n: stats[n]["stages"]["01_ingest"]["in_bytes"] for n in stats}
        print(f"\ninput: base {in_bytes['base'] / 1e6:,.1f} MB, increment {in_bytes['increment'] / 1e6:,.1f} MB "
              f"({in_bytes['increment'] / in_bytes['full']:.1%} of the full build's {in_bytes['full'] / 1e6:,.1f} MB); "
              f"{len(new):,} new files reached dedup")
        print(f"time ({'builds joining one running Ray' if address else 'each build starting and stopping its own local Ray'}): "
              f"base {base_s:.1f} s, increment {inc_s:.1f} s, full build {full_s:.1f} s: "
              f"the increment takes {inc_s / full_s:.1%} of the full build's time (target ≤ 20%)")
        print(f"new files the full build removes as duplicates of base files: {len(dup_new):,}; the increment removes "
              f"{removed:,} = {removed / max(1, len(dup_new)):.4f} (target ≥ 0.99)")
        print(f"new files the full build keeps: {len(kept_full):,}; the increment keeps {kept:,} = "
              f"{kept / max(1, len(kept_full)):.4f} (target ≥ 0.99)")
        print(f"same fate (kept, or removed) in both: {same:,} of {len(new):,} new files = {same / max(1, len(new)):.4f}")
        print(f"base shards unchanged (sha256 of {len(before)} before and after): {shard_hashes(tmp / 'base') == before}")


if __name__ == "__main__":
    main()
