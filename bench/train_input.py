"""The trainer's input pipeline against what a CPU training step of the tiny model consumes.

Builds shards at run time from this interpreter's standard library (a 4,096-id BPE trained on it,
files packed into 2,049-id rows; the model gets the demo's 52,224 embedding rows), then measures, in the same run:
  - the input pipeline alone: ShardSamples → MindSpore GeneratorDataset → batches (samples/s, tokens/s)
  - training steps of configs/model-tiny.toml's model on those batches (tokens/s)
and prints the ratio. Target: the input pipeline delivers ≥ 10× what a training step consumes.
Then the same model on 2 data-parallel CPU processes (`codecorpus train … --nproc 2`, msrun): tokens/s
per rank from each rank's step log, next to the one-process figure.

    .venv/bin/python -m bench.train_input [--rows N] [--steps N]
"""
from __future__ import annotations

import argparse
import json
from os import cpu_count
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np

from codecorpus.pipeline.config import parse_toml
from codecorpus.stages.pack import pack_rows, shard_schema, write_shard
from codecorpus.tokenizer.bpe import EOD_TOKEN, train_bpe
from codecorpus.trainer.config import TrainConfig
from codecorpus.trainer.data import ShardSamples, make_dataset


VOCAB = 52_224  # the model is sized as for the demo's shards (ids come from a smaller BPE, all < VOCAB)


def make_run(root: Path, rows: int) -> None:
    files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
    texts = [f.read_text(encoding="utf-8", errors="replace") for f in files]
    tok = train_bpe(texts, vocab_size=4096)
    eod = tok.token_to_id(EOD_TOKEN)
    ids = np.concatenate([np.array(e.ids + [eod], dtype=np.int32) for e in tok.encode_batch(texts)])
    while len(ids) < rows * 2049:
        ids = np.concatenate([ids, ids])
    packed, _ = pack_rows(ids[: rows * 2049], 2049, eod)
    (root / "shards").mkdir(parents=True)
    write_shard(root / "shards" / "shard-00000.arrow", packed, shard_schema(2049, VOCAB))
    (root / "manifest.json").write_text(json.dumps({
        "format": "codecorpus-shards/1", "row_length": 2049, "seq_length": 2048,
        "tokenizer": {"vocab_size": VOCAB, "eod_id": eod, "path": "tokenizer/tokenizer.json", "sha256": ""},
        "shards": [{"shard": "shard-00000.arrow", "rows": len(packed)}]}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=15)
    args = parser.parse_args()
    cfg = TrainConfig.model_validate(parse_toml("configs/model-tiny.toml"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_run(root, args.rows)
        samples = ShardSamples(root, cfg.model.seq_length, 0, json.loads((root / "manifest.json").read_text()))
        batch = cfg.train.batch_size
        t0 = time.perf_counter()
        n = 0
        for _ in make_dataset(samples, batch, seed=1).create_tuple_iterator(output_numpy=True):
            n += 1
        seconds = time.perf_counter() - t0
        input_tokens = n * batch * cfg.model.seq_length / seconds
        print(f"input pipeline: {n * batch / seconds:,.0f} samples/s of {cfg.model.seq_length + 1} ids "
              f"({n * batch / seconds / samples.windows_per_row:,.0f} rows/s of 2,049 ids), {input_tokens:,.0f} tokens/s")

        from codecorpus.trainer.train import train
        lines: list[str] = []
        overrides = {"steps": args.steps, "log_every": 1, "out_dir": str(root / "ckpt"), "resume": False}
        train(cfg, str(root), overrides=overrides, echo=lines.append)
        rates = [float(line.split("tokens/s ")[1].split()[0].replace(",", "")) for line in lines if line.startswith("step")]
        step_tokens = float(np.median(rates[2:]))  # the first steps include compilation
        print(f"training step (tiny model, CPU): {step_tokens:,.0f} tokens/s (median of {len(rates) - 2} steps)")
        print(f"ratio input / training: {input_tokens / step_tokens:,.1f}x (target ≥ 10x)")

        import subprocess
        import sys
        out = root / "dp2"
        done = subprocess.run([str(Path(sys.executable).parent / "codecorpus"), "train", "configs/model-tiny-dp2.toml", "--data", str(root),
                               "--nproc", "2", "--steps", str(args.steps), "--out-dir", str(out)], capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"2-rank training failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        per_rank = []
        for rank in (0, 1):
            logged = [json.loads(line) for line in (out / f"rank_{rank}" / "steps.jsonl").read_text().splitlines()]
            per_rank.append(float(np.median([s["tokens_per_s"] for s in logged[2:]])))
        print(f"2 data-parallel ranks (msrun, CPU, {cpu_count()} cores): " + ", ".join(f"rank {r} {t:,.0f}" for r, t in enumerate(per_rank))
              + f" tokens/s (median of {args.steps - 2} steps); together {sum(per_rank):,.0f} tokens/s = "
              f"{sum(per_rank) / step_tokens:.2f}x one process")


if __name__ == "__main__":
    main()
