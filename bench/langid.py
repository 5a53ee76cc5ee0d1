"""Language identification without a path, on packages the model never saw: accuracy per language,
the confusion matrix, and files per second per core.

The test packages are bench/langid_data.TEST: none is among the training packages or the validation
packages the features and rules were tuned on (the model is trained on both, so `--validation` gives
training figures; earlier test sets are among them once they had been looked at), and they were
chosen before any result on them was seen.
`--fetch` installs or downloads them first. Each file is identified from its content alone
(`stages.langid.languages_of_content`: shebang, modeline, then the content model above the confidence
threshold, 1,024 files at a time as the build does); `unknown` counts as wrong. Targets: ≥ 95% overall
over CodeGeeX's 23 languages, ≥ 90% for every language with ≥ 100 test files, ≥ 5,000 files/s per core.

    .venv/bin/python -m bench.langid [--fetch] [--per-package N] [--min-confidence P]
"""
from __future__ import annotations

import argparse
import time
from collections import Counter

from pygments.lexers import ObjectiveCppLexer
from pygments.token import Keyword, Name, Operator, String

from bench.langid_data import TEST, VALIDATION, fetch, labelled
from codecorpus.stages.langid import CODEGEEX_LANGUAGES, languages_of_content

# Tokens only C++ has (Pygments' Objective-C++ lexer: comments and strings are not code).
CPP_ONLY = {"namespace", "template", "typename", "nullptr", "operator", "using", "virtual", "public", "private",
            "protected", "this", "throw", "try", "catch", "constexpr", "static_cast", "dynamic_cast",
            "reinterpret_cast", "const_cast", "explicit", "friend", "mutable", "noexcept", "decltype"}


def objc_and_cpp_tokens(text: str) -> tuple[bool, bool]:
    """(has Objective-C, has C++) by an independent oracle, Pygments' Objective-C++ lexer: `@`-keywords,
    `@"…"`/`@[…]` literals, `self`/`super` are Objective-C; C++-only keywords, `class Name`, `::` are C++."""
    objc = cpp = False
    previous_kind, previous = String, ""
    for kind, value in ObjectiveCppLexer().get_tokens(text):
        if not value.strip():
            continue
        if (kind in Keyword or kind in String) and value.startswith("@") or kind in Name.Builtin and value in ("self", "super"):
            objc = True
        elif (kind in Keyword or kind in Name.Builtin) and value in CPP_ONLY:
            cpp = True
        elif kind in Name.Class and previous_kind in Keyword and previous == "class":
            cpp = True
        elif kind in Operator and value == ":" and previous_kind in Operator and previous == ":":
            cpp = True
        if objc and cpp:
            break
        previous_kind, previous = kind, value
    return objc, cpp


def report_objcpp(items: list[tuple[str, str, str]], got: list[str]) -> None:
    """Objective-C++ files (`.mm`) by what their code holds, and our accuracy on each kind."""
    groups: dict[str, Counter] = {}
    for (_, _, text), g in zip(items, got):
        objc, cpp = objc_and_cpp_tokens(text)
        kind = {(True, True): "Objective-C and C++", (True, False): "Objective-C only", (False, True): "C++ only",
                (False, False): "neither"}[objc, cpp]
        groups.setdefault(kind, Counter())[g] += 1
    print("\nObjective-C++ (.mm) files by their tokens (Pygments' Objective-C++ lexer, an independent oracle):")
    for kind, counts in sorted(groups.items(), key=lambda kv: -sum(kv[1].values())):
        n = sum(counts.values())
        print(f"  {kind:<20} {n:>5} files: {counts['Objective-C++'] / n:6.1%} called Objective-C++; "
              + ", ".join(f"{k} {v}" for k, v in counts.most_common() if k != "Objective-C++"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fetch", action="store_true", help="install/download the test packages first")
    parser.add_argument("--per-package", type=int, default=100)
    parser.add_argument("--min-confidence", type=float, default=0.3)
    parser.add_argument("--validation", action="store_true", help="the packages tuning was done on (training figures)")
    args = parser.parse_args()
    packages = VALIDATION if args.validation else TEST
    if args.fetch:
        fetch(packages)
    data = labelled(packages, args.per_package)
    languages_of_content(["x = 1\n"], args.min_confidence)                   # load the model before timing
    texts = [t for items in data.values() for _, _, t in items]
    truth = [lang for lang, items in data.items() for _ in items]
    start = time.process_time()
    got = [g or "unknown" for g in languages_of_content(texts, args.min_confidence)]
    seconds = time.process_time() - start
    results: dict[str, Counter] = {}
    for t, g in zip(truth, got):
        results.setdefault(t, Counter())[g] += 1
    order = [lang for lang in CODEGEEX_LANGUAGES if lang in results] + sorted(set(results) - set(CODEGEEX_LANGUAGES))
    print(f"{'language':<14} {'files':>5} {'accuracy':>8}  packages   most common mistakes")
    total_right = total = 0
    for lang in order:
        got_lang, n = results[lang], sum(results[lang].values())
        right = got_lang[lang]
        packages = len({p for p, _, _ in data[lang]})
        mistakes = ", ".join(f"{k} {v}" for k, v in got_lang.most_common() if k != lang)[:70]
        flag = "" if right / n >= 0.9 or n < 100 else "  < 90%"
        print(f"{lang:<14} {n:>5} {right / n:>8.1%}  {packages:>8}   {mistakes}{flag}")
        if lang in CODEGEEX_LANGUAGES:
            total_right += right
            total += n
    covered = [lang for lang in CODEGEEX_LANGUAGES if lang in results]
    print(f"overall over {len(covered)} of CodeGeeX's 23 languages: {total_right / max(total, 1):.1%} of {total:,} files "
          f"(target ≥ 95%); macro {sum(results[l][l] / sum(results[l].values()) for l in covered) / max(len(covered), 1):.1%}")
    missing = [lang for lang in CODEGEEX_LANGUAGES if lang not in results]
    if missing:
        print(f"no test files for: {', '.join(missing)}")
    labels = order + ["unknown"]
    print("\nconfusion matrix (rows: truth, columns: predicted; languages by their first 4 letters)")
    print(" " * 14 + " ".join(f"{l[:4]:>4}" for l in labels))
    for lang in order:
        print(f"{lang:<14}" + " ".join(f"{results[lang].get(l, 0) or '.':>4}" for l in labels))
    if "Objective-C++" in data:
        report_objcpp(data["Objective-C++"], [g for t, g in zip(truth, got) if t == "Objective-C++"])
    print(f"\nspeed: {len(texts) / seconds:,.0f} files/s on one core ({sum(map(len, texts)) / seconds / 1e6:.1f} MB/s of "
          f"characters, CPU time), min confidence {args.min_confidence}")


if __name__ == "__main__":
    main()
