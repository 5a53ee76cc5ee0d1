"""The `codecorpus` command line: build, remove, stats, show, query, serve, train, export, tokenizer.

User mistakes (a bad config or argument, a missing run, an unwritable folder, a missing extra) end
with exit status 2 and one line saying what is wrong and what is allowed; no traceback. The parser
is here; what each subcommand does is in commands.py.
"""
from __future__ import annotations

import argparse
import sys

from codecorpus.errors import CodecorpusError
from codecorpus.interface.arguments import OneLineParser, UserError, nonempty, regex, whole  # noqa: F401 (UserError: re-exported)
from codecorpus.interface.commands import (cmd_build, cmd_export, cmd_query, cmd_remove, cmd_serve, cmd_show, cmd_stats,
                                           cmd_tokenizer, cmd_train)

SERVE_PORT = 8765
RUN_HELP = "run folder, or a finished run in object storage (s3://bucket/prefix/run)"
SHOW_LIMIT = 20
PORT = whole(1, 65_535)
MIN_VOCAB = 258


def make_parser() -> argparse.ArgumentParser:
    from codecorpus import __version__

    parser = OneLineParser(prog="codecorpus", description="Build code-pretraining corpora on Ray and train from them.")
    parser.add_argument("--version", action="version", version=f"codecorpus {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, func, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.set_defaults(func=func, parser=p)
        return p

    p = command("build", cmd_build, "build a corpus: ingest → filter → dedup → tag → tokenize → shards")
    p.add_argument("config", type=nonempty, help="build config (TOML)")
    p.add_argument("--out", type=nonempty, help="run folder, or s3://bucket/prefix/run in object storage (default: runs/<config name>); "
                   "an existing run goes on, a folder holding anything else is refused")
    p.add_argument("--address", type=nonempty,
                   help="join a running Ray cluster: 'auto' or HOST:PORT (default: $RAY_ADDRESS if set, else start a local Ray)")
    p.add_argument("--force", action="store_true",
                   help="run every step again (default: an existing run goes on: steps whose config and input are "
                        "unchanged are skipped, a half-written stage keeps its finished partitions)")
    p.add_argument("--verbose", action="store_true",
                   help="show Ray's own log lines on the terminal (default: they go to RUN/build.log)")
    p.add_argument("--base", type=nonempty, help="an increment: a finished run (build or increment, never written) whose "
                   "files this build's are deduplicated against; its tokenizer is reused and its shards are not repeated")

    p = command("remove", cmd_remove, "a finished run without the files of repositories that opted out (a new run; "
                "only the shards that held them are packed again)")
    p.add_argument("run", type=nonempty, help="the finished run (never written)")
    p.add_argument("--repos", required=True, type=nonempty,
                   help="file of patterns, one a line: owner/repo, a glob on the repository or on repo/path, or a file id")
    p.add_argument("--out", type=nonempty, help="the new run folder (default: RUN-removed); the same command again after "
                   "a crash starts it over, after success says it is up to date")

    p = command("stats", cmd_stats, "show the books and statistics of a run")
    p.add_argument("run", type=nonempty, help=RUN_HELP)
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.add_argument("--html", metavar="FILE", type=nonempty, help="write one self-contained HTML page of plots and tables")
    p.add_argument("--compare", metavar="OTHER_RUN", type=nonempty, help="show the difference between RUN and OTHER_RUN")

    p = command("show", cmd_show, "read a run's files: kept, or dropped by a stage/reason; one file's journey (--id)")
    p.add_argument("run", type=nonempty, help=RUN_HELP)
    p.add_argument("--stage", help="files this stage dropped or quarantined (01_ingest … 08_tokenize)")
    p.add_argument("--reason", help="files dropped for this reason (e.g. too_small, near_duplicate; the run's own reasons)")
    p.add_argument("--language", help="e.g. Python (any case)")
    p.add_argument("--source", help="source name from the build config")
    p.add_argument("--repo", metavar="GLOB", help="repository glob, e.g. 'numpy*'")
    p.add_argument("--path", metavar="GLOB", help="path glob, e.g. '*.h'")
    p.add_argument("--grep", metavar="REGEX", type=regex, help="files whose text matches")
    p.add_argument("--where", metavar="SQL", type=nonempty,
                   help="a SQL condition on the files' columns, e.g. 'quality.comment_share > 0.5' (quality signals: filters.rules = \"quality\")")
    p.add_argument("--sample", type=whole(1), metavar="N", help="a seeded random sample of N files")
    p.add_argument("--seed", type=whole(0), default=0, help="the sample's seed (default: 0)")
    p.add_argument("--limit", type=whole(0), default=SHOW_LIMIT, help=f"at most this many files (default: {SHOW_LIMIT}; 0: all)")
    p.add_argument("--id", type=nonempty, help="one file's way through the stages (and its kept file, for a near duplicate)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")

    p = command("query", cmd_query, "SQL over a run (DuckDB): views kept, rejects, files, clusters, shards, documents")
    p.add_argument("run", type=nonempty, help=RUN_HELP)
    p.add_argument("sql", type=nonempty, help='e.g. "SELECT reason, count(*) FROM rejects GROUP BY reason"')
    p.add_argument("--json", action="store_true", help="one JSON object per row")

    p = command("serve", cmd_serve, "browse a run in a web browser (read-only, local)")
    p.add_argument("run", type=nonempty, help=RUN_HELP)
    p.add_argument("--port", type=PORT, default=SERVE_PORT, help=f"port to listen on (default: {SERVE_PORT})")
    p.add_argument("--host", type=nonempty, default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")

    p = command("train", cmd_train, "train the bundled MindSpore model on a run's shards")
    p.add_argument("config", type=nonempty, help="model and training config (TOML), e.g. configs/model-tiny.toml")
    p.add_argument("--data", required=True, type=nonempty, help=f"{RUN_HELP}, whose shards to train on (object storage: through a local cache)")
    p.add_argument("--steps", type=whole(1), help="override train.steps")
    p.add_argument("--log-every", type=whole(1), help="override train.log_every")
    p.add_argument("--out-dir", type=nonempty, help="override train.out_dir (checkpoints; an existing one is resumed)")
    p.add_argument("--dry-run", action="store_true",
                   help="check the config, the device and every shard (present, whole, its sha256), print the parameter count")
    p.add_argument("--nproc", type=whole(1), help="training processes (devices) on this node, started by msrun; "
                   "× --nodes must equal parallel.data_parallel × model_parallel")
    p.add_argument("--nodes", type=whole(1), default=1, help="nodes in the job (run the same command on each, with its --node-rank)")
    p.add_argument("--node-rank", type=whole(0), default=0, help="this node's number, 0 … nodes − 1")
    p.add_argument("--master-addr", type=nonempty, default="127.0.0.1", help="address of node 0 (msrun's scheduler)")
    p.add_argument("--master-port", type=PORT, default=8118, help="port of msrun's scheduler on node 0 (default: 8118)")

    p = command("export", cmd_export, "write a run's shards in another format (mindformers' MindRecord)")
    p.add_argument("run", type=nonempty, help=RUN_HELP)
    p.add_argument("--format", choices=["mindrecord"], default="mindrecord")
    p.add_argument("--out", type=nonempty, help="output folder (default: RUN/export/FORMAT; needed for a run in object storage)")
    p.add_argument("--files", type=whole(1, 1000), default=1, help="number of MindRecord files to split the rows over (1 … 1000)")

    p = command("tokenizer", cmd_tokenizer, "train, encode with or decode with a tokenizer")
    tsub = p.add_subparsers(dest="action", required=True)
    t = tsub.add_parser("train", help="train a byte-level BPE on text files (or every file under folders)")
    t.set_defaults(parser=t)
    t.add_argument("files", nargs="+", type=nonempty, help="text files or folders")
    t.add_argument("--out", required=True, type=nonempty, help="folder for tokenizer.json")
    t.add_argument("--vocab-size", type=whole(MIN_VOCAB), default=52_224,
                   help=f"ids in all (default: 52,224; at least {MIN_VOCAB}: 256 bytes, <|endoftext|> and one merge)")
    t.add_argument("--min-frequency", type=whole(1), default=2, help="a merge must occur this often (default: 2)")
    for name, helptext in (("encode", "print the ids of TEXT (or stdin)"), ("decode", "print the text of IDS (or stdin)")):
        t = tsub.add_parser(name, help=helptext)
        t.set_defaults(parser=t)
        t.add_argument("--tokenizer", required=True, type=nonempty, help="tokenizer.json, or a run folder")
        if name == "encode":
            t.add_argument("text", nargs="?")
        else:
            t.add_argument("ids", nargs="*")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except CodecorpusError as exc:
        print(f"codecorpus: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("codecorpus: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
