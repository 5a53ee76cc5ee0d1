"""Fixtures built at run time from real code already on the machine (the Python standard library)."""
from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

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
