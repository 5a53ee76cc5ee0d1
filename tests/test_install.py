"""Installed as a new user installs it: `pip install codecorpus` (no extras) into a fresh venv that
already holds PyPI's `tokenizer` (Icelandic text) and `trainer` (Coqui's, on PyTorch) — two packages
whose names were once ours at the top of site-packages. Nothing of theirs is overwritten, `pip
check` is clean, the only top-level package of ours is `codecorpus`, the demo config builds a corpus
without any extra, and a command that needs an extra says which in one line."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCAL_WHEELS = Path("/opt/wheels")    # where this kind of machine keeps PyTorch's CPU wheel (else PyPI's)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kwargs)


def record_intact(venv_python: Path, dist: str) -> list[str]:
    """Files of an installed distribution whose bytes differ from its RECORD (what a clobber leaves)."""
    script = (
        "import base64, hashlib, sys\nfrom importlib import metadata\n"
        "bad = []\nfor f in metadata.distribution(sys.argv[1]).files:\n"
        "    if f.hash is None: continue\n"
        "    data = f.locate().read_bytes()\n"
        "    digest = base64.urlsafe_b64encode(hashlib.new(f.hash.mode, data).digest()).rstrip(b'=').decode()\n"
        "    if digest != f.hash.value: bad.append(str(f))\nprint('\\n'.join(bad))\n")
    return [line for line in run([str(venv_python), "-c", script, dist]).stdout.splitlines() if line]


@pytest.mark.slow
def test_install_beside_pypis_tokenizer_and_trainer_then_build_without_extras(tmp_path):
    venv = tmp_path / "venv"
    assert run([sys.executable, "-m", "venv", str(venv)]).returncode == 0
    python, pip = venv / "bin" / "python", [str(venv / "bin" / "python"), "-m", "pip", "--quiet", "--disable-pip-version-check"]
    links = ["--find-links", str(LOCAL_WHEELS)] if LOCAL_WHEELS.is_dir() else []
    theirs = run([*pip, "install", *links, "torch==2.13.0", "tokenizer==3.7.0", "trainer==0.0.36"])
    assert theirs.returncode == 0, theirs.stderr[-2000:]
    ours = run([*pip, "install", str(ROOT)])                       # a wheel, as from PyPI: no extras
    assert ours.returncode == 0, ours.stderr[-2000:]

    check = run([*pip, "check"])
    assert check.returncode == 0, check.stdout + check.stderr
    assert record_intact(python, "tokenizer") == [] and record_intact(python, "trainer") == []
    works = run([str(python), "-c", "import tokenizer, trainer\n"
                 "assert [t.txt for t in tokenizer.tokenize('Halló heimur.') if t.txt] == ['Halló', 'heimur', '.']\n"
                 "from trainer import Trainer, TrainerArgs\nTrainerArgs()\nprint(trainer.__version__)"], cwd=tmp_path)
    assert works.returncode == 0 and works.stdout.strip() == "v0.0.36", works.stderr[-2000:]

    # what codecorpus put at the top of site-packages: its package, its metadata, nothing else
    listing = run([str(python), "-c", "from importlib import metadata\n"
                   "print('\\n'.join(sorted({f.parts[0] for f in metadata.distribution('codecorpus').files})))"]).stdout.split()
    assert [p for p in listing if not p.startswith("..")] == ["codecorpus", "codecorpus-0.2.0.dist-info"], listing
    assert run([str(python), "-c", "import mindspore"]).returncode != 0    # really no extra

    codecorpus = str(venv / "bin" / "codecorpus")
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    build = run([codecorpus, "build", str(ROOT / "configs" / "demo.toml"), "--out", str(tmp_path / "demo")], cwd=tmp_path, env=env)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    assert "done:" in build.stdout and list((tmp_path / "demo" / "shards").glob("*.arrow"))
    assert run([codecorpus, "stats", str(tmp_path / "demo")], env=env).returncode == 0

    for command, extra in ((["train", str(ROOT / "configs" / "model-tiny.toml"), "--data", str(tmp_path / "demo")], "train"),
                           (["show", str(tmp_path / "demo")], "inspect")):
        proc = run([codecorpus, *command], env=env)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert proc.stderr.strip().count("\n") == 0 and f"pip install 'codecorpus[{extra}]'" in proc.stderr, proc.stderr
