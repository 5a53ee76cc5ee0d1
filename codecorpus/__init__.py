"""codecorpus: build code-pretraining corpora on Ray, the way CodeGeeX-13B's was built, and pretrain from them.

One installed package; the repository's folders are its subpackages (pyproject.toml maps them):

- `codecorpus.stages`     pure functions on Arrow batches (ingest, language, filters, dedup, tags, packing)
- `codecorpus.pipeline`   the build engine: config, run folder, Ray execution, books
- `codecorpus.tokenizer`  the corpus's byte-level BPE and CodeGeeX's tokenizer
- `codecorpus.trainer`    the MindSpore trainer that reads the shards (extra: `codecorpus[train]`)
- `codecorpus.interface`  what a person uses: the CLI, stats, show/query/serve, progress
"""
from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("codecorpus")
except _metadata.PackageNotFoundError:   # imported from a source tree that was never installed
    __version__ = "0+unknown"
