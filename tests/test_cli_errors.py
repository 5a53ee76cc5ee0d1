"""Every user mistake in every subcommand: exit status 2, one line on stderr naming the argument and
what it allows, no traceback. The table holds what new users hit, plus non-numbers where numbers go,
empty strings, paths that do not exist or are files, and ids out of range."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import STDLIB

ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIG = ROOT / "configs" / "model-tiny.toml"


def codecorpus(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codecorpus", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, stdin=subprocess.DEVNULL)


def one_line_error(proc: subprocess.CompletedProcess, *expected: str) -> str:
    err = proc.stderr.strip()
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-1000:], err[-2000:])
    assert "Traceback" not in err and err.count("\n") == 0 and err, err[-2000:]
    for words in expected:
        assert words in err, (words, err)
    return err


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> dict[str, str]:
    """Things the table points at: a build config, a file, an empty and a non-empty folder, a small
    tokenizer, a text file too small to train 1,000 ids on, a JSON file that is not a tokenizer."""
    from codecorpus.tokenizer.bpe import train_bpe

    root = tmp_path_factory.mktemp("cli")
    (root / "code").mkdir()
    (root / "code" / "a.py").write_text((STDLIB / "json" / "decoder.py").read_text())
    config = root / "build.toml"
    config.write_text(f'[[sources]]\nname = "s"\npaths = ["{root / "code"}"]\n')
    (root / "a-file").write_text("not a folder\n")
    (root / "empty").mkdir()
    (root / "someone-elses").mkdir()
    (root / "someone-elses" / "notes.txt").write_text("mine\n")
    tok = train_bpe([p.read_text() for p in sorted((STDLIB / "json").glob("*.py"))], vocab_size=400)
    tok.save(str(root / "tokenizer.json"))
    (root / "tiny.txt").write_text("x = 1\n")
    (root / "manifest.json").write_text(json.dumps({"format": "codecorpus-shards/1"}))
    return {k: str(v) for k, v in dict(root=root, config=config, file=root / "a-file", empty=root / "empty",
                                         foreign=root / "someone-elses", tok=root / "tokenizer.json", tiny=root / "tiny.txt",
                                         manifest=root / "manifest.json", nowhere=root / "nowhere", out=root / "out").items()}


CASES = [  # (arguments, words the one line must hold); {name} is a path from `places`
    ([], "required: command"),
    (["bogus"], "invalid choice"),
    (["build"], "codecorpus build: error", "config"),
    (["build", ""], "argument config", "empty"),
    (["build", "{nowhere}.toml"], "config file not found"),
    (["build", "{config}", "--out", "{file}"], "is a file, not a folder"),
    (["build", "{config}", "--out", "{foreign}"], "not empty and not a codecorpus run", "notes.txt"),
    (["build", "{config}", "--out", ""], "argument --out", "empty"),
    (["build", "{config}", "--out", "{out}", "--bogus"], "codecorpus build: error", "unrecognized arguments: --bogus"),
    (["build", "{config}", "--out", "{out}", "--address", "127.0.0.1:1"], "--address 127.0.0.1:1", "nothing answers"),
    (["build", "{config}", "--out", "{out}", "--address", "no-port"], "not HOST:PORT"),
    (["stats", "{nowhere}"], "no such folder"),
    (["stats", "{file}"], "a file, not a run folder"),
    (["stats", "{empty}"], "not a codecorpus run"),
    (["stats", "{empty}", "--compare", "{empty}", "--html", "x.html"], "--compare and --html"),
    (["show", "{nowhere}"], "no such run folder"),
    (["show", "{empty}", "--limit", "-1"], "argument --limit", "≥ 0"),
    (["show", "{empty}", "--limit", "many"], "argument --limit", "not a whole number"),
    (["show", "{empty}", "--sample", "0"], "argument --sample", "≥ 1"),
    (["show", "{empty}", "--grep", "[unclosed"], "argument --grep", "not a regular expression"),
    (["show", "{empty}", "--stage", "99_nothing"], "--stage 99_nothing", "01_ingest", "08_tokenize"),
    (["show", "{empty}", "--language", "Klingon"], "--language Klingon", "Python"),
    (["show", "{empty}", "--id", ""], "argument --id", "empty"),
    (["show", "{empty}", "--limt", "3"], "codecorpus show: error", "unrecognized arguments: --limt"),
    (["query", "{nowhere}", "select 1"], "no such run folder"),
    (["query", "{empty}", ""], "argument sql", "empty"),
    (["serve", "{empty}", "--port", "0"], "argument --port", "from 1 to 65,535"),
    (["serve", "{empty}", "--port", "70000"], "argument --port"),
    (["serve", "{empty}", "--port", "http"], "argument --port"),
    (["train", "{nowhere}.toml", "--data", "{empty}"], "config file not found"),
    (["train", str(TINY_CONFIG), "--data", "{nowhere}"], "no manifest.json"),
    (["train", str(TINY_CONFIG), "--data", "{empty}", "--steps", "0"], "argument --steps", "≥ 1"),
    (["train", str(TINY_CONFIG), "--data", "{empty}", "--steps", "-5"], "argument --steps"),
    (["train", str(TINY_CONFIG), "--data", "{empty}", "--log-every", "x"], "argument --log-every"),
    (["train", str(TINY_CONFIG), "--data", "{empty}", "--nodes", "2", "--node-rank", "2"], "--node-rank 2", "0 … 1"),
    (["train", str(TINY_CONFIG), "--data", "{empty}", "--master-port", "0"], "argument --master-port"),
    (["train", str(TINY_CONFIG)], "the following arguments are required: --data"),
    (["train", str(ROOT / "configs" / "model-13b.toml"), "--data", "{empty}", "--nproc", "8", "--nodes", "192"],
     "train.device = 'Ascend'", "no Ascend on this machine"),            # refused before msrun starts 1,536 ranks
    (["export", "{empty}", "--files", "0"], "argument --files"),
    (["export", "{empty}", "--format", "parquet"], "argument --format", "mindrecord"),
    (["tokenizer"], "codecorpus tokenizer: error", "action"),
    (["tokenizer", "train", "{nowhere}.txt", "--out", "{empty}"], "no such file or folder"),
    (["tokenizer", "train", "{tiny}", "--out", "{file}"], "--out", "a file, not a folder"),
    (["tokenizer", "train", "{tiny}", "--out", "{empty}", "--vocab-size", "100"], "argument --vocab-size", "≥ 258"),
    (["tokenizer", "train", "{tiny}", "--out", "{empty}", "--vocab-size", "1000"], "of 1,000 ids", "--vocab-size"),
    (["tokenizer", "train", "{tiny}", "--out", "{empty}", "--min-frequency", "0"], "argument --min-frequency"),
    (["tokenizer", "encode", "--tokenizer", "{nowhere}", "x"], "no tokenizer.json there"),
    (["tokenizer", "encode", "--tokenizer", "{manifest}", "x"], "not a tokenizer.json"),
    (["tokenizer", "decode", "--tokenizer", "{tok}", "--", "-1"], "id -1 is out of range", "0 … 399"),
    (["tokenizer", "decode", "--tokenizer", "{tok}", "400"], "id 400 is out of range"),
    (["tokenizer", "decode", "--tokenizer", "{tok}", "1", "two"], "'two' is not an id"),
]


def in_process(args: list[str], capsys) -> subprocess.CompletedProcess:
    """`codecorpus ARGS` run by its `main` in this process (what the console script calls): its exit
    status, and what it printed. An exception that escapes `main` fails the test as a traceback would."""
    from codecorpus.interface.cli import main

    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out.out, out.err)


@pytest.mark.parametrize("case", CASES, ids=[" ".join(c[0])[:60] or "(none)" for c in CASES])
def test_a_mistake_is_one_line_and_exit_2(case, places, capsys):
    args = [a.format(**places) for a in case[0]]
    one_line_error(in_process(args, capsys), *case[1:])


@pytest.mark.parametrize("args, words", [
    (["show", "{empty}", "--limit", "-1"], "argument --limit"),
    (["tokenizer", "decode", "--tokenizer", "{tok}", "--", "-1"], "id -1 is out of range"),
    (["build", "{config}", "--out", "{out}", "--address", "127.0.0.1:1"], "nothing answers"),
])
def test_the_installed_command_says_the_same(args, words, places):
    """A few of the table's cases through the real `codecorpus` process: its exit status and stderr."""
    one_line_error(codecorpus(*[a.format(**places) for a in args], cwd=Path(places["root"])), words)


def test_the_commands_that_go_right_still_do(places):
    """The other side of the table: the same arguments, corrected, are accepted."""
    assert codecorpus("tokenizer", "decode", "--tokenizer", places["tok"], "0", "399").returncode == 0
    out = Path(places["root"]) / "trained"
    assert codecorpus("tokenizer", "train", str(STDLIB / "json"), "--out", str(out), "--vocab-size", "300").returncode == 0
    assert (out / "tokenizer.json").is_file()          # a folder of text files is read, file by file
    assert codecorpus("--version").stdout.startswith("codecorpus ")


@pytest.mark.slow
def test_an_address_that_listens_but_is_no_ray_cluster_ends_in_seconds(places, tmp_path):
    """A port where something listens (here a bare TCP server) but no Ray head answers: one line once
    `ray.join_timeout` (3 s here; 20 s by default) has passed, not Ray's minutes of retries in the run's log."""
    import socket
    import time

    config = tmp_path / "impatient.toml"
    config.write_text(Path(places["config"]).read_text() + "\n[ray]\njoin_timeout = 3\n")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        address = f"127.0.0.1:{server.getsockname()[1]}"
        started = time.monotonic()
        proc = codecorpus("build", str(config), "--out", str(Path(places["root"]) / "no-ray"), "--address", address)
        took = time.monotonic() - started
    one_line_error(proc, f"--address {address}", "no Ray cluster answered within 3 s")
    assert 3 < took < 20, took
    assert not (Path(places["root"]) / "no-ray").exists()      # nothing written for a build that never started
