"""Rebuild the content language classifier shipped in stages/langid_model.npz.

Trains on the training and validation packages of bench/langid_data.py (every package the features and
rules were tuned on; fetched first: Debian binary and source packages, npm tarballs, PyPI wheels and
sdists, this Python's standard library and some site-packages), never on its test packages, and writes
the weights plus stages/langid_model.json, which lists every package, its version and how many files
of each language it gave. `python -m bench.langid` measures the model on the test packages.

    .venv/bin/python -m bench.train_langid [--per-package N] [--no-fetch]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import time
from collections import Counter

import numpy as np
from sklearn.linear_model import SGDClassifier

from bench.langid_data import TRAIN, VALIDATION, fetch, labelled
from codecorpus.stages.langid_model import BITS, HEAD_BYTES, MODEL_PATH, LanguageModel, features


def version_of(kind: str, name: str) -> str:
    if kind == "deb":
        return subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True).stdout
    if kind == "src":
        from bench.langid_data import _tarballs
        return ", ".join(t.rsplit("/", 1)[-1] for t in _tarballs(name))
    if kind == "python":
        import platform
        from importlib import metadata
        return platform.python_version() if name == "stdlib" else metadata.version({"sklearn": "scikit-learn"}.get(name, name))
    return name.rsplit("@", 1)[-1].rsplit("==", 1)[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-package", type=int, default=400, help="files of one language from one package, at most")
    parser.add_argument("--no-fetch", action="store_true")
    args = parser.parse_args()
    packages = TRAIN + VALIDATION
    if not args.no_fetch:
        fetch(packages)
    t0 = time.time()
    data = labelled(packages, args.per_package)
    texts = [t for items in data.values() for _, _, t in items]
    labels = [lang for lang, items in data.items() for _ in items]
    print(f"{len(texts):,} training files in {len(data)} languages ({time.time() - t0:.0f}s to read)")
    X = features(texts)
    clf = SGDClassifier(loss="log_loss", alpha=2e-6, max_iter=30, tol=1e-4, class_weight="balanced", random_state=0)
    clf.fit(X, labels)
    model = LanguageModel(list(clf.classes_), clf.coef_.T.copy(), clf.intercept_.copy(), BITS, HEAD_BYTES)
    model.save(MODEL_PATH)
    counts: dict[str, Counter] = {}
    for lang, items in data.items():
        for package, _, _ in items:
            counts.setdefault(package, Counter())[lang] += 1
    manifest = {"trained_by": "python -m bench.train_langid", "bits": BITS, "head_bytes": HEAD_BYTES,
                "per_package": args.per_package, "classes": list(clf.classes_),
                "packages": [{"package": f"{k}:{n}", "version": version_of(k, n), "files": dict(counts[f"{k}:{n}"])}
                             for k, n in packages if f"{k}:{n}" in counts],
                # listed, but no file came of them: the archive no longer serves the tarball, or the filters keep none
                "gave_no_files": [f"{k}:{n}" for k, n in packages if f"{k}:{n}" not in counts]}
    MODEL_PATH.with_suffix(".json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"model: {MODEL_PATH} ({MODEL_PATH.stat().st_size / 1e6:.1f} MB), train accuracy "
          f"{np.mean(clf.predict(X) == np.array(labels)):.3f}")
    print(json.dumps({lang: len(items) for lang, items in sorted(data.items())}))


if __name__ == "__main__":
    main()
