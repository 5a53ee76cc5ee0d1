"""Tokenize + pack + write shards against raw `tokenizers` `encode_batch`, on the same text, same run.

Text: this interpreter's standard library. The tokenizer is a BPE trained here on part of it
(52,224 ids when the sample allows, else fewer). Reported: MB/s of text for the raw
`Tokenizer.encode_batch` (on the tagged text), and for the path the build takes —
`codecorpus.pipeline.tokens.encode_records` over Arrow batches of records (the tag line put in
front, tiktoken-speed encoding, EOD appended), `pack_group` (seeded order, 2,049-id rows) and
`write_shard` — plus the ratio and the peak RSS growth while packing and writing.

    .venv/bin/python -m bench.pack [--mb N]
"""
from __future__ import annotations

import argparse
import resource
import sysconfig
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from codecorpus.pipeline.tokens import encode_records
from codecorpus.stages.pack import add_pack_keys, pack_group
from codecorpus.stages.tag import tagged
from codecorpus.tokenizer.bpe import EOD_TOKEN, VocabularyTooSmall, train_bpe

BATCH = 256


def load(mb: float) -> list[str]:
    texts, total = [], 0
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        texts.append(text)
        total += len(text.encode())
        if total > mb * 1e6:
            break
    return texts


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=30)
    args = parser.parse_args()
    texts = load(args.mb)
    tagged_texts = [tagged(t, "Python") for t in texts]
    mb = sum(len(t.encode()) for t in tagged_texts) / 1e6
    vocab = 52_224
    while True:
        try:
            tok = train_bpe(tagged_texts[::3], vocab_size=vocab)
            break
        except VocabularyTooSmall:
            vocab //= 2
    eod = tok.token_to_id(EOD_TOKEN)
    print(f"{len(texts):,} files, {mb:.1f} MB, tokenizer of {vocab:,} ids")

    t0 = time.perf_counter()
    for i in range(0, len(tagged_texts), BATCH):
        tok.encode_batch(tagged_texts[i : i + BATCH], add_special_tokens=False)
    raw = mb / (time.perf_counter() - t0)
    print(f"raw tokenizers encode_batch:           {raw:6.2f} MB/s")

    before = rss_mb()
    with tempfile.TemporaryDirectory() as out:
        tok.save(str(Path(out) / "tokenizer.json"))
        t0 = time.perf_counter()
        tables = []
        for i in range(0, len(texts), BATCH):
            chunk = texts[i : i + BATCH]
            batch = pa.table({"id": [str(i + j) for j in range(len(chunk))], "source": ["bench"] * len(chunk),
                              "language": ["Python"] * len(chunk), "text": chunk})
            tables.append(encode_records(batch, str(Path(out) / "tokenizer.json")))
        tokens = add_pack_keys(pa.concat_tables(tables), seed=1, num_groups=1)
        entry = pack_group(tokens, out, 2049, vocab, eod).to_pylist()[0]
        ours = mb / (time.perf_counter() - t0)
    print(f"encode + pack + write (the build's path): {ours:6.2f} MB/s  ({entry['rows']:,} rows, {entry['tokens']:,} tokens)")
    print(f"ratio build path / raw: {ours / raw:.2f} (target ≥ 0.80); peak RSS grew {rss_mb() - before:,.0f} MB while packing")


if __name__ == "__main__":
    main()
