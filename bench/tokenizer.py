"""The BPE trainer's throughput and the tokenizer's bytes per token, per language, on held-out files.

Files: this interpreter's standard library and site-packages (Python, C and C++ headers, Cython,
JavaScript, HTML, CSS …), language by path, split 80/20 by a hash of the path. The 52,224-id BPE is
trained on the 80% (capped at --mb), timed; bytes per token is measured on the held-out 20%.

    .venv/bin/python -m bench.tokenizer [--mb N]   (as a module, so that `tokenizer` is the package, not this file)
"""
from __future__ import annotations

import argparse
import sysconfig
import time
import zlib
from collections import defaultdict
from pathlib import Path

from stages.langid import language_of
from stages.tag import tagged
from tokenizer.bpe import train_bpe


def collect(limit_bytes: int) -> tuple[list[str], dict[str, list[str]]]:
    train, held_out = [], defaultdict(list)
    size = 0
    roots = {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"]}
    for root in sorted(roots):
        for path in sorted(Path(root).rglob("*")):
            if not path.is_file() or path.stat().st_size > 200_000 or path.stat().st_size < 200:
                continue
            lang = language_of(str(path))
            if lang is None:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            if zlib.crc32(str(path).encode()) % 5 == 0:
                held_out[lang].append(text)
            elif size < limit_bytes:
                train.append(tagged(text, lang))
                size += len(text.encode())
    return train, held_out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=40)
    args = parser.parse_args()
    train, held_out = collect(int(args.mb * 1e6))
    mb = sum(len(t.encode()) for t in train) / 1e6
    t0 = time.perf_counter()
    tok = train_bpe(train, vocab_size=52_224)
    seconds = time.perf_counter() - t0
    print(f"training: {mb:.1f} MB in {seconds:.1f} s = {mb / seconds:.2f} MB/s (52,224 ids, this machine's cores)")
    print(f"{'language':<14}{'files':>8}{'MB':>9}{'bytes/token':>13}")
    for lang in sorted(held_out, key=lambda k: -len(held_out[k])):
        texts = held_out[lang]
        nbytes = sum(len(t.encode()) for t in texts)
        ntokens = sum(len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False))
        print(f"{lang:<14}{len(texts):>8,}{nbytes / 1e6:>9.2f}{nbytes / max(ntokens, 1):>13.2f}")


if __name__ == "__main__":
    main()
