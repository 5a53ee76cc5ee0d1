"""A batch of files as token ids, laid out as the build's documents ask.

File documents (CodeGeeX): the tag line, the file, `<|endoftext|>`. In repository documents each
file of a source with repositories is `<|file_sep|>PATH\\n`, its tag line and its text, with no EOD
(the repository's `<|repo_name|>NAME\\n` header and the one EOD are added per document when packing,
stages/pack.py), and its import references are kept for ordering (stages/imports.py). A file chosen
for fill-in-the-middle (stages/fim.py) keeps its tag line in front and its text transformed.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from codecorpus.stages import fim
from codecorpus.stages.imports import imports, provides
from codecorpus.stages.tag import LANGUAGE_TAGS


@dataclass(frozen=True)
class Layout:
    fim: fim.FimSettings = field(default_factory=fim.FimSettings)
    repo_sources: tuple[str, ...] | None = None   # None: file documents; else the sources read as repositories


def repo_key(source: str, repo: str) -> str:
    return f"{source}\0{repo}"


def _list_array(lists: list[list[int]]) -> pa.Array:
    lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    flat = np.fromiter(itertools.chain.from_iterable(lists), dtype=np.int32, count=int(lengths.sum()))
    return pa.LargeListArray.from_arrays(pa.array(np.r_[0, np.cumsum(lengths)], pa.int64()), pa.array(flat, pa.int32()))


def encode_batch(batch: pa.Table, encode: Callable[[str], list[int]], special: dict[str, int], layout: Layout) -> pa.Table:
    """`special`: the special tokens' ids by role (tokenizer.special.special_ids). The records with
    their text replaced by `tokens` (and `num_tokens`, `fim`; for repository
    documents `header`, `imports`, `provides`, `repo_doc`)."""
    columns = [batch.column(c).to_pylist() for c in ("id", "source", "repo", "path", "language", "text")]
    repo_sources = set(layout.repo_sources or ())
    tokens, modes, headers, refs, names, in_repo = [], [], [], [], [], []
    header_of: dict[str, list[int]] = {}
    for file_id, source, repo, path, language, text in zip(*columns):
        repo_doc = source in repo_sources and bool(repo) and bool(path)
        key = repo_key(source, repo) if repo_doc else None
        mode = fim.choose(layout.fim, file_id, key)
        tag = LANGUAGE_TAGS[language] + "\n"
        if mode:
            ids = encode(tag) + fim.transform(text, mode, fim.split_points(layout.fim, file_id, len(text)), encode, special)
        else:
            ids = encode(tag + text)
        if repo_doc:
            ids = [special["file_sep"], *encode(path + "\n"), *ids]
            if key not in header_of:
                header_of[key] = [special["repo_name"], *encode(repo + "\n")]
        else:
            ids.append(special["eod"])
        tokens.append(ids)
        modes.append(mode)
        if layout.repo_sources is not None:
            headers.append(header_of[key] if repo_doc else [])
            refs.append(imports(text, language) if repo_doc else [])
            names.append(provides(text, language) if repo_doc else [])
            in_repo.append(repo_doc)
    out = batch.drop_columns([c for c in ("text", "content_hash") if c in batch.column_names])
    token_array = _list_array(tokens)
    out = out.append_column("tokens", token_array).append_column("num_tokens", pc.list_value_length(token_array).cast(pa.int64()))
    out = out.append_column("fim", pa.array(modes, pa.string()))
    if layout.repo_sources is not None:
        out = out.append_column("header", _list_array(headers))
        out = out.append_column("imports", pa.array(refs, pa.list_(pa.string())))
        out = out.append_column("provides", pa.array(names, pa.list_(pa.string())))
        out = out.append_column("repo_doc", pa.array(in_repo, pa.bool_()))
    return out
