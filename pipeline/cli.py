"""The `codecorpus` command line: build, stats, show, query, serve, train, export, tokenizer.

User mistakes (a bad config, a missing run, an unwritable folder) end with exit status 2 and one
line saying what is wrong; no traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path


class UserError(Exception):
    """A mistake the user can fix; printed as one line."""


def cmd_build(args: argparse.Namespace) -> int:
    from pipeline.config import load_config

    cfg = load_config(args.config)  # fails before Ray starts
    out = Path(args.out or Path("runs") / Path(args.config).stem)
    from pipeline.build import Build, init_ray
    from pipeline.progress import BuildView
    from pipeline.rundir import RunDir

    run = RunDir(out)
    run.prepare()
    view = BuildView()
    view.echo(f"codecorpus build {args.config} → {run.root}")
    with _stderr_to(None if args.verbose else run.root / BUILD_LOG):
        init_ray(cfg, args.address, verbose=args.verbose)
        manifest = Build(cfg, run, Path(args.config).read_text(encoding="utf-8"), force=args.force, view=view).run_all()
    view.echo(f"done: {manifest['rows']:,} rows, {manifest['tokens']['total']:,} tokens in {len(manifest['shards'])} shard(s) "
              f"under {run.shards}")
    return 0


BUILD_LOG = "build.log"   # in the run folder: Ray's own lines (start-up, workers, Ray Data), unless --verbose


@contextlib.contextmanager
def _stderr_to(path: Path | None):
    """Send this process's stderr (file descriptor 2, which Ray's C++ core, its Python loggers and the
    processes it starts write to) to `path` while the build runs; the user's terminal keeps the
    build's own lines. Errors are printed after it is given back."""
    if path is None:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 2)
    os.close(log)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _load_run(path: str) -> tuple[dict, dict | None]:
    from pipeline.rundir import RunDir

    run = RunDir(path)
    if not run.root.is_dir():
        raise UserError(f"{path}: no such folder")
    if not run.is_run():
        raise UserError(f"{path}: not a codecorpus run (no stats.json or manifest.json)")
    stats = run.read_json(run.stats_path) if run.stats_path.is_file() else {}
    manifest = run.read_json(run.manifest_path) if run.manifest_path.is_file() else None
    return stats, manifest


def cmd_stats(args: argparse.Namespace) -> int:
    from rich.console import Console

    from pipeline import report

    stats, manifest = _load_run(args.run)
    if args.compare:
        other_stats, other_manifest = _load_run(args.compare)
        diff = report.compare({"stats": stats, "manifest": manifest}, {"stats": other_stats, "manifest": other_manifest},
                              args.run, args.compare)
        print(json.dumps(diff, indent=2)) if args.json else report.render_compare(diff, Console())
        return 0
    if args.html:
        from pipeline.html_report import render_html

        try:
            Path(args.html).write_text(render_html(stats, manifest, f"codecorpus: {Path(args.run).resolve().name}"), encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write {args.html}: {exc.strerror or exc}") from None
        print(f"wrote {args.html}")
    if args.json:
        print(json.dumps({"stats": stats, "manifest": manifest}, indent=2))
    elif not args.html:
        report.render(stats, manifest, Console())
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from pipeline.config import parse_toml, validate
    from trainer.config import TrainConfig
    from trainer.train import train

    cfg = validate(TrainConfig, parse_toml(args.config), args.config)
    overrides = {k: v for k, v in (("steps", args.steps), ("log_every", args.log_every), ("out_dir", args.out_dir)) if v is not None}
    if args.nproc and not args.dry_run:
        from trainer.data import read_manifest
        from trainer.launch import launch
        from trainer.parallel import check_layout

        par = cfg.parallel   # a layout the device cannot run: refused here, before any process starts
        check_layout(par, cfg.model, read_manifest(args.data)["tokenizer"]["vocab_size"], None, cfg.train.device)
        forwarded = [args.config, "--data", args.data] + [a for k, v in (("--steps", args.steps), ("--log-every", args.log_every),
                                                                         ("--out-dir", args.out_dir)) if v is not None for a in (k, str(v))]
        return launch(forwarded, par.data_parallel * par.model_parallel, args.nproc, args.nodes, args.node_rank,
                      args.master_addr, args.master_port, Path(args.out_dir or cfg.train.out_dir))
    train(cfg, args.data, overrides=overrides, dry_run=args.dry_run)
    return 0


def _run_folder(path: str) -> str:
    if not Path(path).is_dir():
        raise UserError(f"{path}: no such run folder")
    return path


def cmd_show(args: argparse.Namespace) -> int:
    from rich.console import Console

    from pipeline.browse import STAGES, RunError
    from pipeline.show import Filters, show, show_journey

    run = _run_folder(args.run)
    if args.stage and args.stage not in STAGES:
        raise UserError(f"--stage {args.stage}: not a stage (allowed: {', '.join(STAGES)})")
    console = Console()
    try:
        if args.id:
            if not show_journey(run, args.id, args.json, console):
                raise UserError(f"{args.run}: no file with id {args.id}")
            return 0
        filters = Filters(stage=args.stage, reason=args.reason, language=args.language, source=args.source, repo=args.repo,
                          path=args.path, grep=args.grep, sample=args.sample, seed=args.seed, limit=args.limit)
        show(run, filters, args.json, console)
    except RunError as exc:
        raise UserError(str(exc)) from None
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    import json as json_

    from rich.console import Console
    from rich.table import Table

    from pipeline.browse import RunError, query

    try:
        columns, rows = query(_run_folder(args.run), args.sql)
    except RunError as exc:
        raise UserError(str(exc)) from None
    if args.json:
        for row in rows:
            print(json_.dumps(dict(zip(columns, row)), ensure_ascii=False, default=str))
        return 0
    table = Table(*columns)
    for row in rows:
        table.add_row(*[f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v) for v in row])
    Console().print(table)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from pipeline.serve import make_app

    run = _run_folder(args.run)
    print(f"codecorpus serve: {run} on http://{args.host}:{args.port}/ (read-only; Ctrl-C stops)", flush=True)
    make_app(run).run(host=args.host, port=args.port, debug=False, use_reloader=False)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from pipeline.export import export_mindrecord

    out = args.out or str(Path(args.run) / "export" / args.format)
    result = export_mindrecord(args.run, out, files=args.files)
    print(f"{result['rows']:,} rows → " + ", ".join(result["files"]))
    return 0


def _resolve_tokenizer(path: str) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / "tokenizer" / "tokenizer.json" if (p / "tokenizer").is_dir() else p / "tokenizer.json"
    if not p.is_file():
        raise UserError(f"{path}: no tokenizer.json there")
    return p


def cmd_tokenizer(args: argparse.Namespace) -> int:
    from tokenizer.bpe import load_tokenizer, train_bpe

    if args.action == "train":
        def texts():
            for f in args.files:
                try:
                    yield Path(f).read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    print(f"skipped {f}: {exc}", file=sys.stderr)
        tok = train_bpe(texts(), vocab_size=args.vocab_size, min_frequency=args.min_frequency)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        tok.save(str(out / "tokenizer.json"))
        print(f"{tok.get_vocab_size():,} ids → {out / 'tokenizer.json'}")
    elif args.action == "encode":
        tok = load_tokenizer(_resolve_tokenizer(args.tokenizer))
        text = args.text if args.text is not None else sys.stdin.read()
        print(" ".join(map(str, tok.encode(text, add_special_tokens=False).ids)))
    else:
        tok = load_tokenizer(_resolve_tokenizer(args.tokenizer))
        ids = args.ids or sys.stdin.read().split()
        try:
            print(tok.decode([int(i) for i in ids], skip_special_tokens=False), end="")
        except ValueError:
            raise UserError("decode takes integer ids") from None
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codecorpus", description="Build code-pretraining corpora on Ray and train from them.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="build a corpus: ingest → filter → dedup → tag → tokenize → shards")
    p.add_argument("config", help="build config (TOML)")
    p.add_argument("--out", help="run folder (default: runs/<config name>)")
    p.add_argument("--address", help="join a running Ray cluster: 'auto' or HOST:PORT (default: $RAY_ADDRESS if set, else start a local Ray)")
    p.add_argument("--force", action="store_true",
                   help="run every step again (default: an existing run goes on: steps whose config and input are "
                        "unchanged are skipped, a half-written stage keeps its finished partitions)")
    p.add_argument("--verbose", action="store_true",
                   help="show Ray's own log lines on the terminal (default: they go to RUN/build.log)")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("stats", help="show the books and statistics of a run")
    p.add_argument("run", help="run folder")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.add_argument("--html", metavar="FILE", help="write one self-contained HTML page of plots and tables")
    p.add_argument("--compare", metavar="OTHER_RUN", help="show the difference between RUN and OTHER_RUN")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("show", help="read a run's files: kept, or dropped by a stage/reason; one file's journey (--id)")
    p.add_argument("run", help="run folder")
    p.add_argument("--stage", help="files this stage dropped or quarantined (01_ingest … 08_tokenize)")
    p.add_argument("--reason", help="files dropped for this reason (e.g. too_small, near_duplicate)")
    p.add_argument("--language", help="e.g. Python")
    p.add_argument("--source", help="source name from the build config")
    p.add_argument("--repo", metavar="GLOB", help="repository glob, e.g. 'numpy*'")
    p.add_argument("--path", metavar="GLOB", help="path glob, e.g. '*.h'")
    p.add_argument("--grep", metavar="REGEX", help="files whose text matches")
    p.add_argument("--sample", type=int, metavar="N", help="a seeded random sample of N files")
    p.add_argument("--seed", type=int, default=0, help="the sample's seed")
    p.add_argument("--limit", type=int, default=20, help="at most this many files (0: all)")
    p.add_argument("--id", help="one file's way through the stages (and its kept file, for a near duplicate)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("query", help="SQL over a run (DuckDB): views kept, rejects, files, clusters, shards")
    p.add_argument("run", help="run folder")
    p.add_argument("sql", help='e.g. "SELECT reason, count(*) FROM rejects GROUP BY reason"')
    p.add_argument("--json", action="store_true", help="one JSON object per row")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("serve", help="browse a run in a web browser (read-only, local)")
    p.add_argument("run", help="run folder")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: localhost only)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("train", help="train the bundled MindSpore model on a run's shards")
    p.add_argument("config", help="model and training config (TOML), e.g. configs/model-tiny.toml")
    p.add_argument("--data", required=True, help="run folder whose shards to train on")
    p.add_argument("--steps", type=int, help="override train.steps")
    p.add_argument("--log-every", type=int, help="override train.log_every")
    p.add_argument("--out-dir", help="override train.out_dir (checkpoints; an existing one is resumed)")
    p.add_argument("--dry-run", action="store_true", help="check the shards and print the parameter count; train nothing")
    p.add_argument("--nproc", type=int, help="training processes (devices) on this node, started by msrun; "
                   "× --nodes must equal parallel.data_parallel × model_parallel")
    p.add_argument("--nodes", type=int, default=1, help="nodes in the job (run the same command on each, with its --node-rank)")
    p.add_argument("--node-rank", type=int, default=0, help="this node's number, 0 … nodes − 1")
    p.add_argument("--master-addr", default="127.0.0.1", help="address of node 0 (msrun's scheduler)")
    p.add_argument("--master-port", type=int, default=8118, help="port of msrun's scheduler on node 0")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="write a run's shards in another format (mindformers' MindRecord)")
    p.add_argument("run", help="run folder")
    p.add_argument("--format", choices=["mindrecord"], default="mindrecord")
    p.add_argument("--out", help="output folder (default: RUN/export/FORMAT)")
    p.add_argument("--files", type=int, default=1, help="number of MindRecord files to split the rows over")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("tokenizer", help="train, encode with or decode with a tokenizer")
    tsub = p.add_subparsers(dest="action", required=True)
    t = tsub.add_parser("train", help="train a byte-level BPE on text files")
    t.add_argument("files", nargs="+")
    t.add_argument("--out", required=True, help="folder for tokenizer.json")
    t.add_argument("--vocab-size", type=int, default=52_224)
    t.add_argument("--min-frequency", type=int, default=2)
    for name, helptext in (("encode", "print the ids of TEXT (or stdin)"), ("decode", "print the text of IDS (or stdin)")):
        t = tsub.add_parser(name, help=helptext)
        t.add_argument("--tokenizer", required=True, help="tokenizer.json, or a run folder")
        if name == "encode":
            t.add_argument("text", nargs="?")
        else:
            t.add_argument("ids", nargs="*")
    p.set_defaults(func=cmd_tokenizer)
    return parser


def main(argv: list[str] | None = None) -> int:
    from pipeline.config import ConfigError
    from pipeline.errors import BuildError
    from pipeline.rundir import RunDirError
    from tokenizer.errors import VocabularyTooSmall

    args = make_parser().parse_args(argv)
    user_errors = (UserError, ConfigError, RunDirError, BuildError, VocabularyTooSmall)
    try:
        from trainer.errors import TrainerError
        user_errors += (TrainerError,)
    except ImportError:  # pragma: no cover - trainer not installed
        pass
    try:
        return args.func(args)
    except user_errors as exc:
        print(f"codecorpus: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("codecorpus: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
