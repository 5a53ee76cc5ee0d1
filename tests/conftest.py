"""Fixtures built at run time from real code already on the machine (the Python standard library)."""
from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import psutil
import pytest

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def stdlib_files(pattern: str = "*.py", limit: int | None = None, min_bytes: int = 0) -> list[Path]:
    files = [p for p in sorted(STDLIB.glob(pattern)) if p.is_file() and p.stat().st_size >= min_bytes]
    return files[:limit] if limit else files


@pytest.fixture
def stdlib_texts() -> list[str]:
    return [p.read_text(encoding="utf-8") for p in stdlib_files(limit=60, min_bytes=2000)]


def make_scraped_tree(root: Path) -> Path:
    """A small scraped-GitHub folder of real stdlib packages, one repository each, plus a duplicate."""
    for package in ("json", "email", "http", "urllib", "xmlrpc", "wsgiref", "html", "logging"):
        shutil.copytree(STDLIB / package, root / f"python__{package}", ignore=shutil.ignore_patterns("__pycache__", "test*"))
    # A fork: the same code again, one file lightly edited — exact and near duplicates for dedup.
    shutil.copytree(root / "python__json", root / "fork__json")
    decoder = root / "fork__json" / "decoder.py"
    decoder.write_text(decoder.read_text().replace("def ", "def  ", 3) + "\n# a small edit in the fork\n")
    return root


@pytest.fixture
def scraped_tree(tmp_path: Path) -> Path:
    return make_scraped_tree(tmp_path / "repos")


def make_pile(path: Path, docs: list[tuple[str, str]]) -> Path:
    """A Pile shard: one JSON line per (pile_set_name, text), compressed by the suffix (.zst, .gz or none)."""
    import gzip
    import json

    import zstandard
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps({"text": t, "meta": {"pile_set_name": s}}) + "\n" for s, t in docs).encode()
    if path.name.endswith(".zst"):
        data = zstandard.ZstdCompressor(level=3).compress(data)
    elif path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def make_codeparrot_parquet(path: Path, files: list[Path], text_column: str = "code", row_group_size: int = 10) -> Path:
    """A github-code-shaped Parquet file from real files (repo_name, path, code, language, license, size)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    path.parent.mkdir(parents=True, exist_ok=True)
    texts = [f.read_text(encoding="utf-8") for f in files]
    table = pa.table({"repo_name": [f"python/{f.parent.name}" for f in files], "path": [f.name for f in files],
                      text_column: texts, "language": ["Python"] * len(files),
                      "license": ["mit" if i % 4 else "gpl-3.0" for i in range(len(files))],
                      "size": [len(t.encode()) for t in texts]})
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def make_repo_archive(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    """A repository archive (.tar.gz, .tgz or .zip) with the given members, written in memory."""
    import io
    import tarfile
    import zipfile
    if path.name.endswith(".zip"):
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members.items():
                zf.writestr(name, data)
        return path
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    return path


# -- the small real corpus the end-to-end tests build (once per session) --------------------------
TINY_MODEL = """
[model]
hidden_size = 32
num_layers = 1
num_heads = 2
ffn_size = 64
seq_length = 128
dropout = 0.0
"""  # a model that trains in seconds on CPU (the end-to-end and distributed tests)

BUILD = """
[[sources]]
name = "scraped"
paths = ["{repos}"]

[tokenizer]
vocab_size = 2048
sample_bytes = 4_000_000

[packing]
seq_length = 512

[shards]
target_bytes = 262_144

[ray]
num_cpus = {cpus}
"""

MIXED = """
[[sources]]
name = "github"
paths = ["{root}/repos", "{root}/http.tar.gz"]

[[sources]]
name = "pile"
kind = "pile"
paths = ["{root}/*.jsonl.zst"]

[[sources]]
name = "codeparrot"
kind = "codeparrot"
paths = ["{root}/gc.parquet", "{root}/clean.json.gz"]

[licenses]
keep = ["mit"]

[filters]
rules = "quality"

[decontamination]
benchmarks = ["{benchmarks}"]

[tokenizer]
vocab_size = 2048
sample_bytes = 4_000_000

[dedup.near]
components = "distributed"      # the large-graph path: shuffles of edges, and tokenize by a shuffle

[packing]
seq_length = 512
documents = "repo"

[fim]
rate = 0.5

[ray]
num_cpus = 2
"""   # every source kind in one build, and the build's every path: MIXED.format(root=…, benchmarks=…)


@pytest.fixture(scope="session")
def mixed_input(tmp_path_factory) -> Path:
    """One folder holding input of every source kind: repository folders and an archive (with a
    secret and an address in one file), Pile files (one cut short), a github-code Parquet file and a
    codeparrot-clean json.gz (with a near duplicate of one of its files); beside it, HumanEval.jsonl holding a "solution" taken from the corpus
    (for decontamination)."""
    import gzip
    import json
    root = tmp_path_factory.mktemp("mixed") / "input"
    repos = make_scraped_tree(root / "repos")
    files = stdlib_files(limit=160, min_bytes=1500)
    pile = make_pile(root / "00.jsonl.zst", [("Github" if i % 4 else "Enron Emails", p.read_text()) for i, p in enumerate(files[:80])])
    (root / "01.jsonl.zst").write_bytes(pile.read_bytes()[:-200])                     # truncated
    make_codeparrot_parquet(root / "gc.parquet", files[80:], row_group_size=25)
    clean = [{"repo_name": f"python/{p.stem}", "path": p.name, "content": p.read_text(), "license": "mit"}
             for p in stdlib_files("*/*.py", limit=30, min_bytes=1500)]
    clean.append({**clean[0], "repo_name": f"fork/{clean[0]['path']}",                  # a near duplicate of the first
                  "content": clean[0]["content"] + "\n# patched in the fork\n"})
    (root / "clean.json.gz").write_bytes(gzip.compress("".join(json.dumps(c) + "\n" for c in clean).encode()))
    members = {f"http-main/{p.name}": p.read_bytes() for p in sorted((STDLIB / "http").glob("*.py"))}
    members["http-main/settings.py"] = ((STDLIB / "sqlite3" / "dump.py").read_bytes()
                                        + b'\nAWS_ACCESS_KEY_ID = "AKIA2E0A8F3B244C9986"\nADMIN = "ops.lead@acme-robotics.io"\n')
    make_repo_archive(root / "http.tar.gz", members)
    decoder = (repos / "python__json" / "decoder.py").read_text()         # a "benchmark solution" taken from the corpus
    body = decoder[decoder.index("def py_scanstring"):][:900]
    (root.parent / "HumanEval.jsonl").write_text(json.dumps({"task_id": "HumanEval/7", "prompt": body[:120],
                                                             "canonical_solution": body[120:], "test": ""}) + "\n")
    return root


@pytest.fixture(scope="session")
def mixed_run(mixed_input) -> Path:
    """The build of mixed_input (MIXED), at mixed_input.parent / "run"."""
    cfg = mixed_input.parent / "mixed.toml"
    cfg.write_text(MIXED.format(root=mixed_input, benchmarks=mixed_input.parent / "HumanEval.jsonl"))
    codecorpus("build", str(cfg), "--out", str(mixed_input.parent / "run"))
    return mixed_input.parent / "run"


def codecorpus(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "codecorpus", *args], capture_output=True, text=True, timeout=900)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    repos = make_scraped_tree(root / "repos")
    return root, repos


def build(root: Path, repos: Path, name: str, cpus: int, extra: str = "") -> Path:
    cfg = root / f"{name}.toml"
    cfg.write_text(BUILD.format(repos=repos, cpus=cpus) + extra)
    codecorpus("build", str(cfg), "--out", str(root / name))
    return root / name


def codecorpus_in_a_terminal(*args: str, columns: int = 100) -> str:
    """Run the CLI with a pseudo-terminal as its stdin, stdout and stderr (as a user's shell gives it);
    returns everything it wrote there, escape sequences included."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "NO_COLOR", "COLUMNS")}
    proc = subprocess.Popen([sys.executable, "-m", "codecorpus", *args], stdin=slave, stdout=slave, stderr=slave,
                            env={**env, "TERM": "xterm-256color"}, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:          # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=900) == 0, b"".join(chunks)[-3000:].decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


@pytest.fixture(scope="session")
def run(corpus):
    """The shared build, run as a user would in a terminal; what it showed is kept in terminal.txt beside it."""
    root, repos = corpus
    cfg = root / "run2.toml"
    cfg.write_text(BUILD.format(repos=repos, cpus=2))
    shown = codecorpus_in_a_terminal("build", str(cfg), "--out", str(root / "run2"))
    (root / "run2.terminal.txt").write_text(shown)
    return root / "run2"




@contextlib.contextmanager
def serving(run: Path):
    """`codecorpus serve RUN` on a free port of 127.0.0.1, answering: yields its base URL; stopped after."""
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "codecorpus", "serve", str(run), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/", timeout=10)
                break
            except urllib.error.HTTPError:
                break                      # it answers (with an error page: the caller looks at it)
            except OSError:
                assert server.poll() is None, server.stderr.read()
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def query(run: Path, sql: str) -> list[dict]:
    """The rows of `codecorpus query RUN SQL --json`."""
    import json

    return [json.loads(line) for line in codecorpus("query", str(run), sql, "--json").stdout.splitlines()]


def served(run: Path, *paths: str) -> list[int]:
    """The HTTP status of each page of `codecorpus serve RUN`."""
    import urllib.error
    import urllib.request

    statuses = []
    with serving(run) as base:
        for path in paths:
            try:
                statuses.append(urllib.request.urlopen(base + path, timeout=30).status)
            except urllib.error.HTTPError as exc:
                statuses.append(exc.code)
    return statuses


@pytest.fixture(scope="session")
def s3_store():
    """An S3-compatible server (moto's standalone server, pip-installed with the test extra: `moto[s3]`, `flask-cors`) on a free
    port of 127.0.0.1, checking credentials as a real store does: one user allowed `s3:*`, a bucket
    `corpus`. Yields {"endpoint", "env" (the variables a build needs), "fs" (pyarrow's filesystem)};
    the server is stopped after the session."""
    import json
    import logging
    import os

    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"     # the three IAM calls below; every request after is checked
    import boto3
    import pyarrow.fs as pafs
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="setup",
                           aws_secret_access_key="setup")
        iam.create_user(UserName="builder")
        iam.put_user_policy(UserName="builder", PolicyName="s3", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="builder")["AccessKey"]
        env = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
               "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1"}
        fs = pafs.S3FileSystem(endpoint_override=endpoint, access_key=env["AWS_ACCESS_KEY_ID"],
                               secret_key=env["AWS_SECRET_ACCESS_KEY"], region="us-east-1", allow_bucket_creation=True)
        fs.create_dir("corpus")
        yield {"endpoint": endpoint, "env": env, "fs": fs}
    finally:
        server.stop()


def wait_for(condition, proc: subprocess.Popen | None = None, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert proc is None or proc.poll() is None, "the build ended before the point it was to be killed at"
        assert time.time() < deadline, "timed out waiting"
        time.sleep(0.005)


def build_and_kill(cfg: Path, out: Path | str, point, log: Path, *extra: str, cwd: Path | None = None) -> str:
    """Start a build (`extra`: more arguments), SIGKILL the driver when `point()` holds, and return what it printed. The local
    Ray it started is killed too (as a machine's crash would), so that nothing leaks into later tests."""
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "codecorpus", "build", str(cfg), "--out", str(out), *extra],
                                stdout=fh, stderr=subprocess.STDOUT, cwd=cwd)
        wait_for(point, proc)
        family = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    for child in family:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    return log.read_text()
