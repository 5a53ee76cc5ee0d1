"""The package's shape: one `codecorpus` package whose modules import each other one way, none too
long, data flowing configs → pipeline → stages → tokenizer → shards → trainer."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import codecorpus

SUBPACKAGES = ("interface", "pipeline", "stages", "tokenizer", "trainer")
MAX_LINES = 400


def modules() -> dict[str, Path]:
    """Every module of the package, by its dotted name, wherever its folder is."""
    found = {f"codecorpus.{p.stem}": p for p in Path(codecorpus.__file__).parent.glob("*.py")}
    for sub in SUBPACKAGES:
        folder = Path(importlib.import_module(f"codecorpus.{sub}").__file__).parent
        found.update({f"codecorpus.{sub}.{p.stem}": p for p in folder.glob("*.py")})
    return {name.removesuffix(".__init__"): path for name, path in found.items()}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The package's modules that `path` imports, at its top or inside functions."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("codecorpus"):
            names = {f"{node.module}.{a.name}" for a in node.names}
            out |= (names & known) or ({node.module} & known)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(path, set(mods)) - {name} for name, path in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), or a module importing itself."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_among_the_modules():
    edges = graph()
    assert len(edges) > 60                       # every module was found, in every folder
    assert cycles(edges) == []


def test_the_cycle_check_finds_a_cycle():
    """The checker itself: the circle build → dedup → build that the package once had is found."""
    edges = graph()
    edges["codecorpus.pipeline.dedup"] = edges["codecorpus.pipeline.dedup"] | {"codecorpus.pipeline.build"}
    assert ["codecorpus.pipeline.build", "codecorpus.pipeline.dedup"] in cycles(edges)


@pytest.mark.parametrize("layer, never", [
    ("codecorpus.stages", ("codecorpus.pipeline", "codecorpus.interface", "codecorpus.trainer", "codecorpus.tokenizer")),
    ("codecorpus.tokenizer", ("codecorpus.pipeline", "codecorpus.interface", "codecorpus.trainer")),
    ("codecorpus.pipeline", ("codecorpus.interface", "codecorpus.trainer")),
    ("codecorpus.trainer", ("codecorpus.pipeline", "codecorpus.interface", "codecorpus.stages")),
])
def test_data_flows_one_way(layer, never):
    """A stage knows nothing of the pipeline; the engine never draws; the trainer needs only the shards."""
    wrong = {(m, i) for m, deps in graph().items() if m.startswith(layer + ".") or m == layer
             for i in deps if i.startswith(never)}
    assert wrong == set()


def test_no_module_is_too_long():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_one_error_root_is_what_the_cli_catches():
    """Every error a user can act on derives from CodecorpusError, and the CLI names no other."""
    from codecorpus.errors import CodecorpusError
    from codecorpus.interface.browse import RunError
    from codecorpus.interface.cli import UserError
    from codecorpus.pipeline.config import ConfigError
    from codecorpus.pipeline.errors import BuildError
    from codecorpus.pipeline.rundir import RunDirError
    from codecorpus.tokenizer.errors import VocabularyTooSmall
    from codecorpus.trainer.errors import TrainerError

    for error in (RunError, UserError, ConfigError, BuildError, RunDirError, VocabularyTooSmall, TrainerError):
        assert issubclass(error, CodecorpusError), error
    cli = Path(importlib.import_module("codecorpus.interface.cli").__file__).read_text()
    caught = {h.type.id for h in ast.walk(ast.parse(cli)) if isinstance(h, ast.ExceptHandler) and isinstance(h.type, ast.Name)}
    assert caught & {"ConfigError", "BuildError", "RunDirError", "TrainerError", "VocabularyTooSmall"} == set()


def test_the_stage_names_agree():
    """The run layout's stage names are the per-file pass's own."""
    from codecorpus.pipeline.rundir import PER_FILE_STAGES
    from codecorpus.stages.per_file import PASS_STAGES

    assert PER_FILE_STAGES == PASS_STAGES


def test_lsh_bands_and_rows_are_datasketchs():
    """Our choice of bands × rows is the one datasketch's MinHashLSH makes (its public `b`, `r`), the
    independent implementation of the same rule, over thresholds and permutation counts."""
    from datasketch import MinHashLSH

    from codecorpus.stages.near_dedup import lsh_params

    for num_perm in (64, 128, 256):
        for threshold in (0.5, 0.7, 0.72, 0.8, 0.85):
            lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
            assert lsh_params(threshold, num_perm) == (lsh.b, lsh.r), (threshold, num_perm)


def test_the_package_shipped_to_a_clusters_workers_imports_on_its_own(tmp_path):
    """What `--address` hands Ray's py_modules: one folder named codecorpus that a worker without
    codecorpus installed imports the build's modules from (here: a fresh interpreter started inside it)."""
    import subprocess
    import sys

    from codecorpus.pipeline.ray_runtime import package_for_workers

    shipped = Path(package_for_workers())
    assert shipped.name == "codecorpus" and (shipped / "__init__.py").is_file()
    script = ("import codecorpus.pipeline.build as b, codecorpus.stages.per_file as s, codecorpus.tokenizer.bpe as t\n"
              "print(b.__file__, s.__file__, t.__file__)")
    proc = subprocess.run([sys.executable, "-c", script], cwd=shipped.parent, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert all(path.startswith(str(shipped)) for path in proc.stdout.split()), proc.stdout
