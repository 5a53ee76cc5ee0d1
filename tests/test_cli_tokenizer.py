"""`codecorpus tokenizer train|encode|decode` from the command line, on real stdlib files."""
import subprocess
import sys

from conftest import stdlib_files


def cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "codecorpus", "tokenizer", *args], input=stdin,
                          capture_output=True, text=True, timeout=300)


def test_train_encode_decode_round_trip(tmp_path):
    files = [str(p) for p in stdlib_files(limit=60)]
    proc = cli("train", *files, "--out", str(tmp_path), "--vocab-size", "2000")
    assert proc.returncode == 0, proc.stderr
    assert "2,000 ids" in proc.stdout and (tmp_path / "tokenizer.json").is_file()
    text = open(files[0], encoding="utf-8").read()
    ids = cli("encode", "--tokenizer", str(tmp_path / "tokenizer.json"), stdin=text).stdout
    assert all(i.isdigit() for i in ids.split())
    back = cli("decode", "--tokenizer", str(tmp_path / "tokenizer.json"), stdin=ids).stdout
    assert back == text


def test_decode_rejects_non_integers(tmp_path):
    files = [str(p) for p in stdlib_files(limit=30)]
    cli("train", *files, "--out", str(tmp_path), "--vocab-size", "1000")
    proc = cli("decode", "--tokenizer", str(tmp_path), "12", "abc")
    assert proc.returncode == 2 and "'abc' is not an id" in proc.stderr
