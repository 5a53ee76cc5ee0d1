"""Does a FIM build teach infilling? The tiny model trained on the same corpus with `fim.rate = 0`
and `fim.rate = 0.5`, then measured on files of packages that are not in the training input.

Training input: this interpreter's standard library (tests excluded), built twice with
`configs/demo.toml`'s filters: once without FIM, once with `[fim] rate = 0.5, spm_rate = 0.5`. The
tokenizer (1,024 ids, so that a model small enough for a CPU learns something in minutes) is trained
on the same seeded sample in both builds, so the ids are the same. The model (MODEL below: the tiny
model's shape on 128-token rows) trains the same number of steps, same seed, same data order on each.

Held-out (chosen before any result was looked at): the pure-Python packages `click`, `jinja2` and
`rich` from site-packages — none is in the standard library. From each held-out file a window of
code is cut at seeded points into prefix / middle / suffix (the middle 10–40% of the window), and
the model is measured on
  (a) infilling: mean loss on the middle's tokens (and the EOD that ends it) given the PSM prompt
      tag <fim_prefix> prefix <fim_suffix> suffix <fim_middle> — the layout an editor sends;
  (a1) the same middle tokens given only what comes before them (tag, prefix): left to right, no
      suffix. (a1) − (a) is what seeing the suffix is worth to the model: infilling proper, apart
      from how well the model knows code in general;
  (b) left to right: mean loss on the window's tokens given the tag line, as ordinary training sees them.

    .venv/bin/python -m bench.fim [--steps 1000] [--windows 400]
"""
from __future__ import annotations

import argparse
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
ROOT = Path(__file__).resolve().parents[1]
CONFIG = """
[[sources]]
name = "stdlib"
kind = "scraped"
paths = ["python:stdlib"]
exclude = ["site-packages/*", "dist-packages/*", "test/*", "*/test/*", "*/tests/*", "idlelib/*", "lib2to3/*"]

[filters]
max_bytes = 102400

[tokenizer]
vocab_size = 1024
sample_bytes = 16_000_000

[packing]
seq_length = 128

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
seq_length = 128
vocab_multiple = 128
dropout = 0.0

[train]
batch_size = 16
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
    files = sorted(p for pkg in HELD_OUT for p in (purelib / pkg).rglob("*.py") if p.stat().st_size > 1500)
    if not files:
        raise SystemExit(f"none of {HELD_OUT} is installed in {purelib}")
    out = []
    for k in range(count):
        path = files[xxhash.xxh64_intdigest(f"file{k}".encode()) % len(files)]
        text = path.read_text(encoding="utf-8")
        h = [xxhash.xxh64_intdigest(f"{k}:{j}".encode()) for j in range(3)]
        span = 220
        start = h[0] % max(1, len(text) - span)
        start = text.rfind("\n", 0, start) + 1            # windows start at a line
        window = text[start:start + span]
        mid_len = int(span * (0.1 + 0.3 * (h[1] % 1000) / 1000))
        a = h[2] % max(1, len(window) - mid_len)
        out.append({"prefix": window[:a], "middle": window[a:a + mid_len], "suffix": window[a + mid_len:], "path": str(path)})
    tag = LANGUAGE_TAGS["Python"] + "\n"
    return [w for w in out if len(fim_prompt_ids(tok, w["prefix"], w["suffix"], language_tag=tag)) +
            len(tok.encode(w["middle"]).ids) + 1 <= max_tokens and len(tok.encode(tag + w["prefix"] + w["middle"] + w["suffix"]).ids) <= max_tokens]


def losses(checkpoint: Path, model_config: Path, vocab: int, samples: list[tuple[list[int], int, int]]) -> float:
    """Mean next-token loss over the scored positions of each sample (ids, first scored, end)."""
    import mindspore as ms
    from mindspore import ops
    from codecorpus.trainer.config import TrainConfig
    from codecorpus.trainer.model import CodeGeeX
    import tomllib

    cfg = TrainConfig.model_validate(tomllib.loads(model_config.read_text()))
    ms.set_context(mode=ms.PYNATIVE_MODE)
    ms.set_device("CPU")
    model = CodeGeeX(cfg.model, vocab)
    state = {k.removeprefix("model."): v for k, v in ms.load_checkpoint(str(checkpoint)).items()}
    not_loaded, _ = ms.load_param_into_net(model, state)
    assert not not_loaded, not_loaded
    model.set_train(False)
    seq = cfg.model.seq_length
    total, count = 0.0, 0
    for ids, lo, hi in samples:
        x = np.zeros((1, seq), np.int32)
        x[0, :len(ids)] = ids
        logits = model(ms.Tensor(x), ms.Tensor(np.arange(seq, dtype=np.int32)[None]), ms.Tensor(np.zeros((1, seq), np.int32)))
        logp = ops.log_softmax(logits[0].astype(ms.float32), -1).asnumpy()
        for pos in range(lo, hi):                              # predict ids[pos] from position pos - 1
            total -= logp[pos - 1, ids[pos]]
            count += 1
    return total / count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--windows", type=int, default=400)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_config = tmp / "model.toml"
        model_config.write_text(MODEL.format(steps=args.steps))
        runs, timings = {}, {}
        for rate in (0.0, 0.5):
            cfg = tmp / f"fim{rate}.toml"
            cfg.write_text(CONFIG.format(rate=rate))
            t0 = time.time()
            codecorpus("build", str(cfg), "--out", str(tmp / f"run{rate}"))
            timings[rate] = time.time() - t0
            runs[rate] = tmp / f"run{rate}"
        m0, m5 = (json.loads((runs[r] / "manifest.json").read_text()) for r in (0.0, 0.5))
        assert m0["tokenizer"]["sha256"] == m5["tokenizer"]["sha256"], "the two builds' tokenizers differ"
        print(f"builds: rate 0 {timings[0.0]:.0f}s, rate 0.5 {timings[0.5]:.0f}s; {m5['stages']['08_tokenize']['kept']:,} files, "
              f"FIM {m5['fim']}")
        tok = load_tokenizer(runs[0.0] / "tokenizer" / "tokenizer.json")
        ids = special_ids(tok)
        tag = LANGUAGE_TAGS["Python"] + "\n"
        chosen = windows(tok, args.windows, 128)
        infill, before_only, l2r = [], [], []
        for w in chosen:
            prompt = fim_prompt_ids(tok, w["prefix"], w["suffix"], language_tag=tag)
            middle = tok.encode(w["middle"]).ids + [ids["eod"]]
            infill.append((prompt + middle, len(prompt), len(prompt) + len(middle)))
            head = tok.encode(tag).ids
            left = head + (tok.encode(w["prefix"]).ids if w["prefix"] else [])
            before_only.append((left + middle, len(left), len(left) + len(middle)))
            body = tok.encode(w["prefix"] + w["middle"] + w["suffix"]).ids
            l2r.append((head + body, len(head), len(head) + len(body)))
        print(f"held out: {len(chosen)} windows of {', '.join(HELD_OUT)} (site-packages)")
        results = {}
        for rate in (0.0, 0.5):
            out = tmp / f"train{rate}"
            t0 = time.time()
            codecorpus("train", str(model_config), "--data", str(runs[rate]), "--steps", str(args.steps), "--out-dir", str(out),
                       "--log-every", str(args.steps))
            steps = checkpoint_steps(out / "rank_0")
            ckpt = steps[max(steps)]
            vocab = json.loads((runs[rate] / "manifest.json").read_text())["tokenizer"]["vocab_size"]
            results[rate] = (losses(ckpt, model_config, vocab, infill), losses(ckpt, model_config, vocab, before_only),
                             losses(ckpt, model_config, vocab, l2r), time.time() - t0)
        print(f"\n{'model':<16}{'(a) middle | PSM':>18}{'(a1) middle | prefix':>22}{'suffix worth':>14}{'(b) left to right':>19}"
              f"{'train s':>9}")
        for rate, (a, a1, b, t) in results.items():
            print(f"{'fim.rate = ' + str(rate):<16}{a:>18.3f}{a1:>22.3f}{a1 - a:>+14.3f}{b:>19.3f}{t:>9.0f}")
        (a0, c0, b0, _), (a5, c5, b5, _) = results[0.0], results[0.5]
        print(f"\ninfilling (loss per middle token, nats): the FIM model {a5:.3f} given prefix and suffix vs {c5:.3f} given the prefix "
              f"alone (the suffix is worth {c5 - a5:+.3f}); the left-to-right model {a0:.3f} vs {c0:.3f} ({c0 - a0:+.3f}). "
              f"FIM model vs left-to-right model on (a): {a5:.3f} vs {a0:.3f} (perplexity ×{np.exp(a0 - a5):.2f}). "
              f"Left to right (b) the FIM model gives up {b5 - b0:+.3f} nats/token ({100 * (b5 - b0) / b0:+.1f}%) at {args.steps} steps")


if __name__ == "__main__":
    os.environ.setdefault("GLOG_v", "3")
    main()
