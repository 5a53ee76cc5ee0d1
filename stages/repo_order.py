"""A repository's files in dependency order (DeepSeek-Coder), cut into documents of bounded length.

`resolve` turns a file's import references (stages/imports.py) into files of the same repository:
by path relative to the importing file, or by the import's path as a suffix of a repository path
(`a.b.c` → `…/a/b/c.py`), the candidate nearest the importing file winning, ties by path. The
dependency order takes the import cycles (strongly connected components) in topological order, so
that every import outside a cycle points backwards, and inside a cycle repeatedly takes the file
with the fewest dependencies not yet placed (DeepSeek-Coder's rule, which never stops on a cycle);
ties go to the file more files import, then by path. `random` and `path` orders are offered too. `cut` splits the ordered files into documents of at most `max_tokens` (with their header and
end-of-document token) at file boundaries; a file longer than that is a document of its own.
"""
from __future__ import annotations

import heapq
import posixpath
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import xxhash
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

_EXTENSIONS = {
    "js": ["", ".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".d.ts", "/index.ts", "/index.tsx", "/index.js", "/index.jsx"],
    "jvm": [".java", ".kt", ".scala"],
    "go": [".go"],
}


class RepoIndex:
    """The paths of one repository, searchable by their last components."""

    def __init__(self, paths: list[str], repo: str = ""):
        self.paths = set(paths)
        self.package = repo.rsplit("/", 1)[-1]   # a repository named after the package it holds
        self.by_name: dict[str, list[str]] = defaultdict(list)
        self.by_tail: dict[str, list[str]] = defaultdict(list)   # by their last two components (`pkg/__init__.py`)
        self.by_dir: dict[str, list[str]] = defaultdict(list)
        for p in sorted(paths):
            self.by_name[posixpath.basename(p)].append(p)
            self.by_tail["/".join(p.rsplit("/", 2)[-2:])].append(p)
            self.by_dir[posixpath.dirname(p)].append(p)
        self.dirs_by_name: dict[str, list[str]] = defaultdict(list)
        for d in sorted(self.by_dir):
            self.dirs_by_name[posixpath.basename(d)].append(d)

    def with_suffix(self, rel: str) -> list[str]:
        """Paths equal to `rel` or ending in `/rel`."""
        tail = rel.rsplit("/", 2)[-2:]
        candidates = self.by_tail.get("/".join(tail), ()) if len(tail) == 2 else self.by_name.get(rel, ())
        return [p for p in candidates if p == rel or p.endswith("/" + rel)]

    def dirs_with_suffix(self, rel: str) -> list[str]:
        return [d for d in self.dirs_by_name.get(posixpath.basename(rel), ()) if d == rel or d.endswith("/" + rel)]


def _nearest(importer: str, candidates: list[str]) -> list[str]:
    """The candidate sharing the longest directory prefix with the importer (ties: the first by path)."""
    if len(candidates) <= 1:
        return candidates
    here = posixpath.dirname(importer).split("/")

    def shared(p: str) -> int:
        n = 0
        for a, b in zip(here, posixpath.dirname(p).split("/")):
            if a != b:
                break
            n += 1
        return n
    return [max(sorted(candidates), key=shared)]


def _first(index: RepoIndex, importer: str, options: list[str]) -> list[str]:
    """The nearest file matching the first option (a path suffix) that matches any."""
    for rel in options:
        rel = posixpath.normpath(rel).lstrip("/")
        if rel and not rel.startswith(".."):
            found = index.with_suffix(rel)
            if found:
                return _nearest(importer, found)
    return []


def _relative(index: RepoIndex, importer: str, target: str, extensions: list[str]) -> list[str]:
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(importer), target))
    for ext in extensions:
        if joined + ext in index.paths:
            return [joined + ext]
    if target.endswith(".js"):   # TypeScript imports `./x.js` for `x.ts`
        return _relative(index, importer, target[:-3], extensions)
    return []


def _python(index: RepoIndex, importer: str, base: list[str] | None, module: str, names: list[str]) -> list[str]:
    """`from module import names` (or `import module`): exactly under the folder `base` (a relative
    import, or the repository's root), or, `base` None, anywhere the module path is a path's suffix."""
    parts = [p for p in (base or []) + module.split(".") if p]

    def module_file(path: list[str]) -> list[str]:
        rel = "/".join(path)
        options = [rel + ".py", rel + "/__init__.py"] if rel else ["__init__.py"]
        if base is not None:
            return [o for o in options if o in index.paths][:1]
        return _first(index, importer, options) if rel else []
    submodules = [f for name in names for f in module_file(parts + [name])]
    return submodules or module_file(parts)   # `from pkg import mod` needs mod, not all of pkg


def _rust(index: RepoIndex, importer: str, value: str, kind: str) -> list[str]:
    here = posixpath.dirname(importer)
    stem = posixpath.splitext(posixpath.basename(importer))[0]
    own_dir = here if stem in ("mod", "lib", "main") else posixpath.join(here, stem)
    if kind == "rsmod":
        return [p for p in (f"{own_dir}/{value}.rs", f"{own_dir}/{value}/mod.rs") if p.lstrip("/") in index.paths][:1]
    root_kind, _, path = value.partition(":")
    parts = [p for p in path.split("::") if p]
    if root_kind == "crate":
        root = importer.split("/src/")[0] + "/src" if "/src/" in importer else ("src" if importer.startswith("src/") else here)
    elif root_kind == "super":
        root = posixpath.dirname(own_dir)
    else:
        root = own_dir
    for n in range(len(parts), 0, -1):
        rel = posixpath.normpath(posixpath.join(root, *parts[:n])).lstrip("/")
        for candidate in (rel + ".rs", rel + "/mod.rs"):
            if candidate in index.paths:
                return [candidate]
    return []


def resolve(index: RepoIndex, importer: str, ref: str, namespaces: dict[str, list[str]]) -> list[str]:
    """The repository's files one reference names (none for another package's)."""
    kind, _, value = ref.partition(":")
    if kind == "py":
        module, _, names = value.partition("|")
        found = _python(index, importer, None, module, names.split(",") if names else [])
        head, _, rest = module.partition(".")
        if not found and head == index.package:     # the repository is the package: its files at the root
            found = _python(index, importer, [], rest, names.split(",") if names else [])
        return found
    if kind == "pyrel":
        dots, _, rest = value.partition(":")
        module, _, names = rest.partition("|")
        base = posixpath.dirname(importer)
        for _ in range(int(dots) - 1):
            base = posixpath.dirname(base)
        return _python(index, importer, base.split("/") if base else [], module, names.split(",") if names else [])
    if kind == "rel":
        ext = posixpath.splitext(importer)[1]
        if ext in (".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs", ".vue"):
            return _relative(index, importer, value, _EXTENSIONS["js"])
        return _relative(index, importer, value, [""]) or _first(index, importer, [value])
    if kind == "jvm":
        parts = value.split(".")
        for n in range(len(parts), 1, -1):   # a.b.C, then a.b for a.b.C.member (static, nested)
            found = _first(index, importer, ["/".join(parts[:n]) + e for e in _EXTENSIONS["jvm"]])
            if found:
                return found
        return []
    if kind in ("jvmpkg", "go"):
        parts = value.split(".") if kind == "jvmpkg" else value.split("/")
        if kind == "go" and "." not in parts[0]:
            return []                          # the standard library
        exts = tuple(_EXTENSIONS["jvm" if kind == "jvmpkg" else "go"])
        for n in range(len(parts) if kind == "jvmpkg" else 1, len(parts) + 1):
            rel = "/".join(parts[len(parts) - n:]) if kind == "go" else "/".join(parts)
            dirs = index.dirs_with_suffix(rel)
            if dirs:
                d = _nearest(importer + "/x", dirs)[0] if len(dirs) > 1 else dirs[0]
                return [p for p in index.by_dir[d] if p.endswith(exts) and not p.endswith("_test.go")]
        return []
    if kind == "ns":
        return namespaces.get(value, [])
    if kind in ("rsmod", "rsuse"):
        return _rust(index, importer, value, kind)
    if kind == "php":
        parts = value.split("\\")
        options = ["/".join(parts[len(parts) - n:]) + ".php" for n in range(len(parts), 1, -1)]
        found = _first(index, importer, options)
        if not found and len(index.by_name.get(parts[-1] + ".php", ())) == 1:
            found = index.by_name[parts[-1] + ".php"]
        return found
    return []


def dependencies(paths: list[str], refs: list[list[str]], provides: list[list[str]], repo: str = "") -> tuple[list[set[int]], list[int]]:
    """For each file, the files (indices) it depends on, and how many of its references name a file
    of the repository."""
    index = RepoIndex(paths, repo)
    position = {p: i for i, p in enumerate(paths)}
    namespaces: dict[str, list[str]] = defaultdict(list)
    for p, names in zip(paths, provides):
        for name in names:
            namespaces[name.partition(":")[2]].append(p)
    deps: list[set[int]] = []
    resolved: list[int] = []
    for i, (path, file_refs) in enumerate(zip(paths, refs)):
        mine: set[int] = set()
        found = 0
        for ref in file_refs:
            targets = {position[t] for t in resolve(index, path, ref, namespaces)}
            found += bool(targets)
            mine |= targets - {i}
        deps.append(mine)
        resolved.append(found)
    return deps, resolved


def _fewest_waiting(members: list[int], paths: list[str], deps: list[set[int]]) -> tuple[list[int], list[int]]:
    """DeepSeek-Coder's walk over `members`: the file with the fewest dependencies not yet placed
    first (ties: the file more files import, then by path); returns the order and the files placed while still waiting (a cycle broken)."""
    inside = set(members)
    waiting = {i: len(deps[i] & inside) for i in members}
    users: dict[int, list[int]] = defaultdict(list)
    for i in members:
        for j in deps[i] & inside:
            users[j].append(i)
    heap = [(waiting[i], -len(users[i]), paths[i], i) for i in members]
    heapq.heapify(heap)
    placed: set[int] = set()
    out, broken = [], []
    while heap:
        count, _, _, i = heapq.heappop(heap)
        if i in placed or count != waiting[i]:
            continue
        placed.add(i)
        if count:
            broken.append(i)
        out.append(i)
        for u in users[i]:
            if u not in placed:
                waiting[u] -= 1
                heapq.heappush(heap, (waiting[u], -len(users[u]), paths[u], u))
    return out, broken


def dependency_order(paths: list[str], deps: list[set[int]]) -> tuple[list[int], list[int], list[int]]:
    """Indices in dependency order, the files placed to break a cycle, and each file's cycle
    (an import cycle's number, -1 for a file in none). The import cycles
    (strongly connected components) are ordered as a whole first — every edge outside a cycle points
    backwards — and inside each, files are taken by DeepSeek-Coder's fewest-waiting rule."""
    n = len(paths)
    if n == 0:
        return [], [], []
    rows = [i for i, d in enumerate(deps) for _ in d]
    cols = [j for d in deps for j in d]
    graph = csr_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n, n))
    _, label = connected_components(graph, directed=True, connection="strong")
    members: dict[int, list[int]] = defaultdict(list)
    for i in sorted(range(n), key=paths.__getitem__):
        members[int(label[i])].append(i)
    needs = {c: {int(label[j]) for i in m for j in deps[i]} - {c} for c, m in members.items()}
    users: dict[int, list[int]] = defaultdict(list)
    for c, needed in needs.items():
        for d in needed:
            users[d].append(c)
    waiting = {c: len(needed) for c, needed in needs.items()}
    heap = [(paths[m[0]], c) for c, m in members.items() if not waiting[c]]
    heapq.heapify(heap)
    out, broken = [], []
    while heap:
        _, c = heapq.heappop(heap)
        inner, b = _fewest_waiting(members[c], paths, deps) if len(members[c]) > 1 else (members[c], [])
        out += inner
        broken += b
        for u in users[c]:
            waiting[u] -= 1
            if not waiting[u]:
                heapq.heappush(heap, (paths[members[u][0]], u))
    cycles = {c: k for k, c in enumerate(sorted(c for c, m in members.items() if len(m) > 1))}
    return out, broken, [cycles.get(int(label[i]), -1) for i in range(n)]


@dataclass
class RepoOrder:
    order: list[int]                 # the files' indices in document order
    depends_on: list[set[int]]       # per file, the files it imports (dependencies order only)
    resolved: list[int]              # per file, its references that name a file of the repository
    cycle: list[int]                 # per file, its import cycle's number, or -1
    broke: set[int] = field(default_factory=set)   # files placed while still waiting: a cycle broken there

    @property
    def cycles_broken(self) -> int:
        return len(self.broke)


def order_files(paths: list[str], ids: list[str], refs: list[list[str]], provides: list[list[str]], how: str,
                seed: int, repo: str = "") -> RepoOrder:
    """The files' order (`dependencies`, `random` or `path`) and what resolving found."""
    none = [-1] * len(paths)
    if how == "path":
        return RepoOrder(sorted(range(len(paths)), key=lambda i: (paths[i], ids[i])), [set() for _ in paths], [0] * len(paths), none)
    if how == "random":
        key = lambda i: (xxhash.xxh64_intdigest(ids[i].encode(), seed=seed + 21), ids[i])  # noqa: E731
        return RepoOrder(sorted(range(len(paths)), key=key), [set() for _ in paths], [0] * len(paths), none)
    deps, resolved = dependencies(paths, refs, provides, repo)
    order, broken, cycle = dependency_order(paths, deps)
    return RepoOrder(order, deps, resolved, cycle, set(broken))


def cut(tokens: list[int], header: int, max_tokens: int) -> list[int]:
    """Each file's document number, the files taken in order: a document holds its header, its files
    and one end-of-document token, at most `max_tokens` unless one file alone is longer."""
    documents, doc, used = [], 0, None
    for n in tokens:
        if used is not None and used + n > max_tokens:
            doc, used = doc + 1, None
        used = (header + 1 if used is None else used) + n
        documents.append(doc)
    return documents
