"""Builds on S3-compatible object storage against the same build on the disk: input and run folder on
the disk; input in the store, run folder on the disk; both in the store (`--out s3://…`). Times, the
requests the store answered, and whether the shards are the same bytes.

Input: the demo's first source, this interpreter's standard library (its tests and site-packages
excluded), uploaded to a bucket of moto's S3 server (the one the tests use: moto's standalone server, started
here on 127.0.0.1, in this process). Each build is `codecorpus build` in a fresh process,
starting and stopping its own local Ray, with the demo's filters, dedup and tokenizer settings.
Requests are counted from the server's own request log, by method. Last, the floor: the time the
store alone takes to answer the reads of the input's files, from a process doing nothing else.

    .venv/bin/python -m bench.object_storage [--keep DIR]
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import json
import logging
import os
import re
import sysconfig
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

from bench.incremental import ROOT, SETTINGS, build

SOURCE = """[[sources]]
name = "stdlib"
kind = "scraped"
paths = ["{path}"]
exclude = ["site-packages/*", "dist-packages/*", "test/*", "*/test/*", "*/tests/*"]

"""


class RequestCounter(logging.Handler):
    """Counts the requests in the S3 server's log lines ('"GET /bucket/key HTTP/1.1" 200'), by method."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.counts: collections.Counter = collections.Counter()
        self.heads: set[str] = set()        # the objects asked about (HEAD): the files a build read

    def emit(self, record: logging.LogRecord) -> None:
        found = re.search(r'"(?:\x1b\[[0-9;]*m)*([A-Z]+) /([^ ?]+)', record.getMessage())   # werkzeug colours some lines
        if found:
            self.counts[found.group(1)] += 1
            if found.group(1) == "HEAD":
                self.heads.add(urllib.parse.unquote(found.group(2)))


FLOOR = """
import sys, time
from concurrent.futures import ThreadPoolExecutor
from codecorpus import storage
files = sys.stdin.read().split()
started = time.time()
with ThreadPoolExecutor(16) as pool:
    sum(map(len, pool.map(storage.read_bytes, files)))
print(time.time() - started)
"""


def store_floor(urls: list[str]) -> float:
    """Seconds the store takes to answer the reads of `urls` (a HEAD and a GET each, as pyarrow reads an
    object), 16 at a time, by a separate process doing nothing else: what reading them in the
    per-file pass cannot beat, whatever codecorpus does."""
    proc = subprocess.run([sys.executable, "-c", FLOOR], input="\n".join(urls), capture_output=True, text=True, check=True,
                          cwd=ROOT)
    return float(proc.stdout.strip())


@contextlib.contextmanager
def s3_store():
    """(the environment a build needs, the RequestCounter of the server's log): moto's S3 server,
    started here on 127.0.0.1."""
    from moto.server import ThreadedMotoServer

    counter = RequestCounter()
    log = logging.getLogger("werkzeug")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.addHandler(counter)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_ENDPOINT_URL": f"http://{host}:{port}",
               "AWS_REGION": "us-east-1"}, counter
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keep", type=Path, help="keep both runs in this folder")
    args = ap.parse_args()
    import pyarrow.fs as pafs

    with s3_store() as (env, counter):
        os.environ.update(env)                      # for the builds this process starts
        fs = pafs.S3FileSystem(endpoint_override=env["AWS_ENDPOINT_URL"], access_key=env["AWS_ACCESS_KEY_ID"],
                               secret_key=env["AWS_SECRET_ACCESS_KEY"], region="us-east-1", allow_bucket_creation=True)
        fs.create_dir("bench")
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        started = time.time()
        for entry in sorted(stdlib.iterdir()):
            if entry.name not in ("site-packages", "dist-packages", "__pycache__") and not entry.is_symlink():
                pafs.copy_files(str(entry), f"bench/{stdlib.name}/{entry.name}", source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)
        print(f"uploaded {stdlib} to s3://bench/{stdlib.name} in {time.time() - started:.0f}s")
        with (contextlib.nullcontext(str(args.keep)) if args.keep else tempfile.TemporaryDirectory()) as tmp:
            tmp = Path(tmp)
            tmp.mkdir(parents=True, exist_ok=True)
            results = {}
            # the same folder name: the loose files of a root form a repository named after it (ids as on disk)
            builds = {"disk": (str(stdlib), str(tmp / "disk")), "input in the store": (f"s3://bench/{stdlib.name}", str(tmp / "s3-input")),
                      "input and run in the store": (f"s3://bench/{stdlib.name}", "s3://bench/runs/stdlib")}
            for name, (path, out) in builds.items():
                (tmp / "bench.toml").write_text(SOURCE.format(path=path) + "[filters]" + SETTINGS)
                counter.counts.clear()
                counter.heads.clear()
                print(f"== {name}")
                seconds = build(tmp / "bench.toml", out)
                manifest = json.loads(fs.open_input_stream(out[len("s3://"):] + "/manifest.json").read() if out.startswith("s3://")
                                      else Path(out, "manifest.json").read_text())
                results[name] = (seconds, manifest, collections.Counter(counter.counts))
                if name == "input in the store":
                    read = sorted(f"s3://{key}" for key in counter.heads if key.startswith(f"bench/{stdlib.name}/"))
        disk_s, disk_m, _ = results["disk"]
        print(f"\ninput and run folder on the disk: {disk_s:.1f} s")
        for name in ("input in the store", "input and run in the store"):
            seconds, manifest, requests = results[name]
            print(f"{name}: {seconds:.1f} s = {seconds / disk_s:.2f}× the disk's"
                  + (" (target for the whole build on object storage: ≤ 1.5×)" if "run" in name else "")
                  + f"; {sum(requests.values()):,} requests ({', '.join(f'{m} {n:,}' for m, n in requests.most_common())})"
                  + f"; same shards (names, rows, sha256): {manifest['shards'] == disk_m['shards']}")
        print(f"files listed: {disk_m['stages']['01_ingest']['in']:,}")
        counter.counts.clear()
        floor = store_floor(read)
        print(f"the store alone answering the input's reads ({len(read):,} files, those the build read, 16 at a time, "
              f"by a process doing nothing else): {floor:.1f} s for {sum(counter.counts.values()):,} requests; "
              f"the whole build on the disk: {disk_s:.1f} s")


if __name__ == "__main__":
    main()
