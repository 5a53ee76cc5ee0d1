"""Does a FIM build teach infilling? The tiny model trained on the same corpus with `fim.rate = 0`
and `fim.rate = 0.5`, then measured on files of packages that are not in the training input.

Training input: this interpreter's standard library and site-packages (tests and the held-out
packages excluded), files of 200 B–1.5 KB, built twice with `configs/demo.toml`'s other filters:
once without FIM, once with `[fim] rate = 0.5, spm_rate = 0.5`. The files are short and the rows
512 tokens so that, as in a real run (2,048-token rows for CodeGeeX, 8,192 for StarCoder2, where most
files fit whole), a transformed file's prefix, suffix and middle are mostly in one row: with whole
stdlib files in 128-token rows (this bench's first version) the middle's start was almost never in
the context of the prefix it continues, and the FIM model could not learn to use the suffix. The
tokenizer (1,024 ids, so that a model small enough for a CPU learns something in minutes) is trained
on the same seeded sample in both builds, so the ids are the same. The model (MODEL below: the tiny
model's shape on 512-token rows) trains the same number of steps, same seed, same data order on each.

Held-out (chosen before any result was looked at): the pure-Python packages `click`, `jinja2` and
`rich` from site-packages. From each held-out file a window of code is cut at seeded points into
prefix / middle / suffix (the middle 10–40% of the window), and the model is measured (nats per
middle token, the EOD after the middle not counted) on
  (a) infilling: the middle given the PSM prompt tag <fim_prefix> prefix <fim_suffix> suffix
      <fim_middle> — the layout an editor sends;
  (a1) the same middle tokens given only what comes before them (tag, prefix): left to right, no
      suffix. (a1) − (a) is what seeing the suffix is worth to the model;
  (a2) the middle given the PSM prompt with another window's suffix: (a2) − (a) is what *this*
      suffix is worth inside the same layout, apart from the layout itself;
  (b) left to right: mean loss on the window's tokens given the tag line, as ordinary training sees them.

    .venv/bin/python -m bench.fim [--steps 700] [--windows 400] [--keep DIR]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np
import xxhash

from codecorpus.stages.tag import LANGUAGE_TAGS
from codecorpus.tokenizer.bpe import load_tokenizer
from codecorpus.tokenizer.special import fim_prompt_ids, special_ids
from codecorpus.trainer.train import checkpoint_steps

HELD_OUT = ("click", "jinja2", "rich")
SEQ, BATCH = 512, 8                 # 4,096 tokens a step
MIN_BYTES, MAX_BYTES = 200, 1536    # training files; most fit a 512-token row whole
SPAN = 600                          # characters of a held-out window
ROOT = Path(__file__).resolve().parents[1]
CONFIG = """
[[sources]]
name = "stdlib"
kind = "scraped"
paths = ["python:stdlib"]
exclude = ["site-packages/*", "dist-packages/*", "test/*", "*/test/*", "*/tests/*", "idlelib/*", "lib2to3/*"]
max_file_bytes = {max_bytes}

[[sources]]
name = "site-packages"
kind = "scraped"
paths = ["python:site-packages"]
exclude = [{held_out}, "*/test/*", "*/tests/*"]
max_file_bytes = {max_bytes}
priority = 1

[filters]
min_bytes = {min_bytes}
max_bytes = {max_bytes}

[tokenizer]
vocab_size = 1024
sample_bytes = 16_000_000

[packing]
seq_length = {seq}

[fim]
rate = {rate}
spm_rate = 0.5
"""


MODEL = """
[model]
hidden_size = 128
num_layers = 2
num_heads = 4
ffn_size = 512
seq_length = {seq}
vocab_multiple = 128
dropout = 0.0

[train]
batch_size = {batch}
learning_rate = 3e-3
min_learning_rate = 3e-4
warmup_steps = 20
decay_steps = {steps}
device = "CPU"
"""


def codecorpus(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "codecorpus", *args], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        raise SystemExit(proc.stdout[-2000:] + proc.stderr[-2000:])
    return proc.stdout


def windows(tok, count: int, max_tokens: int) -> list[dict]:
    """Seeded windows of held-out files, each cut into prefix, middle and suffix (characters)."""
    purelib = Path(sysconfig.get_paths()["purelib"])
    files = sorted(p for pkg in HELD_OUT for p in (purelib / pkg).rglob("*.py") if p.stat().st_size > 2 * SPAN)
    if not files:
        raise SystemExit(f"none of {HELD_OUT} is installed in {purelib}")
    out = []
    for k in range(count):
        path = files[xxhash.xxh64_intdigest(f"file{k}".encode()) % len(files)]
        text = path.read_text(encoding="utf-8")
        h = [xxhash.xxh64_intdigest(f"{k}:{j}".encode()) for j in range(3)]
        span = SPAN
        start = h[0] % max(1, len(text) - span)
        start = text.rfind("\n", 0, start) + 1            # windows start at a line
        window = text[start:start + span]
        mid_len = int(span * (0.1 + 0.3 * (h[1] % 1000) / 1000))
        a = h[2] % max(1, len(window) - mid_len)
        out.append({"prefix": window[:a], "middle": window[a:a + mid_len], "suffix": window[a + mid_len:], "path": str(path)})
    tag = LANGUAGE_TAGS["Python"] + "\n"
    return [w for w in out if len(fim_prompt_ids(tok, w["prefix"], w["suffix"], language_tag=tag)) +
            len(tok.encode(w["middle"]).ids) <= max_tokens and len(tok.encode(tag + w["prefix"] + w["middle"] + w["suffix"]).ids) <= max_tokens]


def losses(checkpoint: Path, model_config: Path, vocab: int, sets: dict[str, list[tuple[list[int], int, int]]]) -> dict[str, float]:
    """For each set, the mean next-token loss over the scored positions of its samples (ids, first
    scored, end); the checkpoint is loaded and the forward compiled once for all sets."""
    import mindspore as ms
    from codecorpus.trainer.config import TrainConfig
    from codecorpus.trainer.model import CodeGeeX
    import tomllib

    cfg = TrainConfig.model_validate(tomllib.loads(model_config.read_text()))
    ms.set_context(mode=ms.GRAPH_MODE)           # one compiled forward for every batch
    ms.set_device("CPU")
    model = CodeGeeX(cfg.model, vocab)
    state = {k.removeprefix("model."): v for k, v in ms.load_checkpoint(str(checkpoint)).items()}
    not_loaded, _ = ms.load_param_into_net(model, state)
    assert not not_loaded, not_loaded
    model.set_train(False)
    return {name: _mean_loss(model, cfg.model.seq_length, samples) for name, samples in sets.items()}


def _mean_loss(model, seq: int, samples: list[tuple[list[int], int, int]]) -> float:
    import mindspore as ms
    from mindspore import ops

    total, count = 0.0, 0
    for start in range(0, len(samples), 16):                    # 16 samples a forward pass
        chunk = samples[start:start + 16]
        x = np.zeros((16, seq), np.int32)                      # one shape: compiled once
        for row, (ids, _, _) in enumerate(chunk):
            x[row, :len(ids)] = ids
        positions = np.broadcast_to(np.arange(seq, dtype=np.int32), x.shape).copy()
        logits = model(ms.Tensor(x), ms.Tensor(positions), ms.Tensor(np.zeros_like(x)))
        logp = ops.log_softmax(logits.astype(ms.float32), -1).asnumpy()
        for row, (ids, lo, hi) in enumerate(chunk):
            for pos in range(lo, hi):                          # predict ids[pos] from position pos - 1
                total -= logp[row, pos - 1, ids[pos]]
                count += 1
    return total / count


def evaluation_sets(tok, chosen: list[dict], max_tokens: int) -> dict[str, list[tuple[list[int], int, int]]]:
    """(ids, first scored, end) per window for (a), (a1), (a2) and (b)."""
    tag = LANGUAGE_TAGS["Python"] + "\n"
    head = tok.encode(tag).ids
    sets = {"a": [], "a1": [], "a2": [], "b": []}
    for k, w in enumerate(chosen):
        middle = tok.encode(w["middle"]).ids
        prompt = fim_prompt_ids(tok, w["prefix"], w["suffix"], language_tag=tag)
        sets["a"].append((prompt + middle, len(prompt), len(prompt) + len(middle)))
        left = head + (tok.encode(w["prefix"]).ids if w["prefix"] else [])
        sets["a1"].append((left + middle, len(left), len(left) + len(middle)))
        other = chosen[(k + len(chosen) // 2) % len(chosen)]["suffix"][:len(w["suffix"])]   # another window's, as long
        swapped = fim_prompt_ids(tok, w["prefix"], other, language_tag=tag)
        sets["a2"].append((swapped + middle, len(swapped), len(swapped) + len(middle)))
        body = tok.encode(w["prefix"] + w["middle"] + w["suffix"]).ids
        sets["b"].append((head + body, len(head), len(head) + len(body)))
    fits = [all(len(sets[k][i][0]) <= max_tokens for k in sets) for i in range(len(chosen))]
    return {k: [s for s, ok in zip(v, fits) if ok] for k, v in sets.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=700)
    ap.add_argument("--windows", type=int, default=400)
    ap.add_argument("--keep", type=Path, help="keep the builds and checkpoints in this folder (default: a temporary one)")
    args = ap.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    with (contextlib.nullcontext(str(args.keep)) if args.keep else tempfile.TemporaryDirectory()) as tmp:
        tmp = Path(tmp)
        model_config = tmp / "model.toml"
        model_config.write_text(MODEL.format(steps=args.steps, seq=SEQ, batch=BATCH))
        held_out = ", ".join(f'"{p}/*"' for p in HELD_OUT)
        runs, timings = {}, {}
        for rate in (0.0, 0.5):
            cfg = tmp / f"fim{rate}.toml"
            cfg.write_text(CONFIG.format(rate=rate, seq=SEQ, min_bytes=MIN_BYTES, max_bytes=MAX_BYTES, held_out=held_out))
            t0 = time.time()
            codecorpus("build", str(cfg), "--out", str(tmp / f"run{rate}"))
            timings[rate] = time.time() - t0
            runs[rate] = tmp / f"run{rate}"
        m0, m5 = (json.loads((runs[r] / "manifest.json").read_text()) for r in (0.0, 0.5))
        assert m0["tokenizer"]["sha256"] == m5["tokenizer"]["sha256"], "the two builds' tokenizers differ"
        print(f"builds: rate 0 {timings[0.0]:.0f}s, rate 0.5 {timings[0.5]:.0f}s; {m5['stages']['08_tokenize']['kept']:,} files, "
              f"{m0['tokens']['total']:,} tokens without FIM; FIM {m5['fim']}")
        tok = load_tokenizer(runs[0.0] / "tokenizer" / "tokenizer.json")
        sets = evaluation_sets(tok, windows(tok, args.windows, SEQ), SEQ)
        print(f"held out: {len(sets['a'])} windows of {SPAN} characters from {', '.join(HELD_OUT)} (site-packages); "
              f"{args.steps} steps of {BATCH} × {SEQ} tokens")
        results = {}
        for rate in (0.0, 0.5):
            out = tmp / f"train{rate}"
            t0 = time.time()
            codecorpus("train", str(model_config), "--data", str(runs[rate]), "--steps", str(args.steps), "--out-dir", str(out),
                       "--log-every", str(args.steps))
            seconds = time.time() - t0
            steps = checkpoint_steps(out / "rank_0")
            ckpt = steps[max(steps)]
            vocab = json.loads((runs[rate] / "manifest.json").read_text())["tokenizer"]["vocab_size"]
            results[rate] = losses(ckpt, model_config, vocab, sets) | {"s": seconds}
        print(f"\n{'model':<16}{'(a) middle | PSM':>18}{'(a1) | prefix only':>20}{'(a2) | other suffix':>21}"
              f"{'(b) left to right':>19}{'train s':>9}")
        for rate, r in results.items():
            print(f"{'fim.rate = ' + str(rate):<16}{r['a']:>18.3f}{r['a1']:>20.3f}{r['a2']:>21.3f}{r['b']:>19.3f}{r['s']:>9.0f}")
        r0, r5 = results[0.0], results[0.5]
        print(f"\ninfilling, nats per middle token: the FIM model {r5['a']:.3f} against the left-to-right model's {r0['a']:.3f} "
              f"(perplexity ×{np.exp(r0['a'] - r5['a']):.2f}); given the prefix alone {r5['a1']:.3f} (the suffix is worth "
              f"{r5['a1'] - r5['a']:+.3f}), given another window's suffix {r5['a2']:.3f} ({r5['a2'] - r5['a']:+.3f}). "
              f"Left to right (b) the FIM model gives up {r5['b'] - r0['b']:+.3f} nats/token ({100 * (r5['b'] - r0['b']) / r0['b']:+.1f}%).")


if __name__ == "__main__":
    os.environ.setdefault("GLOG_v", "3")
    main()
