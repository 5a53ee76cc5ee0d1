"""What each `codecorpus` subcommand does, given its parsed arguments (the parser is in cli.py).

Every check of what the user gave happens before any work starts, and every failure is a
CodecorpusError: one line, exit status 2.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import json
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from codecorpus.errors import require
from codecorpus.interface.arguments import UserError, one_of

BUILD_LOG = "build.log"   # in the run folder: Ray's own lines (start-up, warnings, task retries), unless --verbose


def cmd_build(args: argparse.Namespace) -> int:
    from codecorpus.pipeline.cluster_check import ClusterCheck

    address = args.address or os.environ.get("RAY_ADDRESS")
    # a cluster to join is asked first, and answers while the modules, the config and the base are read
    with ClusterCheck(address) if address else contextlib.nullcontext() as cluster:
        from codecorpus import storage
        from codecorpus.pipeline.config import load_config

        cfg = load_config(args.config)  # fails before Ray starts
        out = args.out or str(Path("runs") / Path(args.config).stem)
        from codecorpus.interface.progress import BuildView
        from codecorpus.pipeline.plan import plan_inputs
        from codecorpus.pipeline.ray_runtime import init_ray, leave_ray, warm_workers
        from codecorpus.pipeline.rundir import RunDir

        chain = None
        if args.base:
            if storage.is_remote(args.base) or storage.is_remote(out):
                raise UserError("--base: increments are built on a disk for now (base and --out); "
                                "a run in object storage can be an increment's base once it is copied to a disk")
            from codecorpus.pipeline.chain import open_chain
            chain = open_chain(Path(args.base), cfg, out)   # refused before Ray starts
        if cluster:
            cluster.answered(cfg.ray.join_timeout)
    run = RunDir(out)
    run.prepare()
    view = BuildView()
    view.echo(f"codecorpus build {args.config} → {run.root}" + (f" (an increment of {chain.base.root})" if chain else ""))
    with _stderr_to(None if args.verbose else run.path(BUILD_LOG)), ThreadPoolExecutor(1) as planner:
        # the input is listed (and the build's modules imported) while Ray starts, and the workers
        # import and load what the tasks need while the driver goes on
        planned = planner.submit(plan_inputs, cfg)
        building = planner.submit(importlib.import_module, "codecorpus.pipeline.build")
        init_ray(cfg, args.address, log_level=logging.INFO, log_to_driver=args.verbose)
        build = building.result()
        warm_workers(build.warm_up)
        builder = build.Build if chain is None else functools.partial(
            importlib.import_module("codecorpus.pipeline.increment").IncrementBuild, chain=chain)
        manifest = builder(cfg, run, Path(args.config).read_text(encoding="utf-8"), force=args.force, view=view,
                           planned=planned).run_all()
        leave_ray(log_to_driver=args.verbose)
    view.echo(f"done: {manifest['rows']:,} rows, {manifest['tokens']['total']:,} tokens in {len(manifest['shards'])} shard(s) "
              f"under {run.shards}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from codecorpus import storage
    from codecorpus.pipeline.remove import remove

    if storage.is_remote(args.run) or storage.is_remote(args.out or ""):
        raise UserError("remove: works on runs on a disk for now (RUN and --out); copy the run from object storage first")
    out = Path(args.out) if args.out else Path(args.run).resolve().with_name(Path(args.run).resolve().name + "-removed")
    print(f"codecorpus remove {args.run} --repos {args.repos} → {out.resolve()}")
    manifest = remove(Path(args.run), Path(args.repos), out, print)
    done = manifest["opt_out"]
    rewritten, total = done["shards_rewritten"], len(manifest["shards"])
    print(f"done: {done['files']:,} files ({done['tokens']:,} tokens) of {len(done['repositories']):,} repositories removed; "
          f"{rewritten:,} of {total:,} shard(s) packed again" + (", the others linked unchanged" if rewritten < total else "")
          + f"; {manifest['rows']:,} rows, {manifest['tokens']['total']:,} tokens under {out.resolve() / 'shards'}")
    return 0


@contextlib.contextmanager
def _stderr_to(path: str | None):
    """Send this process's stderr (file descriptor 2, which Ray's C++ core, its Python loggers and the
    processes it starts write to) to `path` while the build runs; the user's terminal keeps the
    build's own lines. Errors are printed after it is given back. A log in object storage is written
    to a local file and uploaded when the build ends."""
    from codecorpus import storage

    if path is None:
        yield
        return
    if storage.is_remote(path):
        spool = storage.Output(path)
        try:
            with _stderr_to(spool.local):
                yield
        finally:
            try:
                spool.commit()
            except OSError:          # a store that cannot be written: the build's own error says so
                spool.discard()
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
    """A run's stats and manifest (None before it has one), from its folder or from object storage."""
    from codecorpus import storage
    from codecorpus.pipeline.rundir import RunDir

    if not storage.is_remote(path) and not os.path.isdir(path):
        raise UserError(f"{path}: " + ("a file, not a run folder" if os.path.exists(path) else "no such folder"))
    run = RunDir(path)
    found = {p: run.read_json(p) for p in (run.stats_path, run.manifest_path) if storage.is_file(p)}
    if not found:
        raise UserError(f"{path}: not a codecorpus run (no stats.json or manifest.json)")
    return found.get(run.stats_path, {}), found.get(run.manifest_path)


def cmd_stats(args: argparse.Namespace) -> int:
    from codecorpus.interface import report

    if args.compare and args.html:
        raise UserError("--compare and --html: the HTML page shows one run; give one of them")
    stats, manifest = _load_run(args.run)
    if args.compare:
        other_stats, other_manifest = _load_run(args.compare)
        diff = report.compare({"stats": stats, "manifest": manifest}, {"stats": other_stats, "manifest": other_manifest},
                              args.run, args.compare)
        print(json.dumps(diff, indent=2)) if args.json else report.render_compare(diff, report.console())
        return 0
    if args.html:
        require("matplotlib", "inspect", "codecorpus stats --html")
        from codecorpus.interface.html_report import render_html

        try:
            Path(args.html).write_text(render_html(stats, manifest, f"codecorpus: {Path(args.run).resolve().name}"), encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write {args.html}: {exc.strerror or exc}") from None
        print(f"wrote {args.html}")
    if args.json:
        print(json.dumps({"stats": stats, "manifest": manifest}, indent=2))
    elif not args.html:
        report.render(stats, manifest, report.console())
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    require("mindspore", "train", "codecorpus train")
    from codecorpus.pipeline.config import parse_toml, validate
    from codecorpus.trainer.config import TrainConfig
    from codecorpus.trainer.train import train

    cfg = validate(TrainConfig, parse_toml(args.config), args.config)
    if args.node_rank >= args.nodes:
        raise UserError(f"--node-rank {args.node_rank}: not a node of --nodes {args.nodes} (0 … {args.nodes - 1})")
    from codecorpus.trainer.data import local_run
    args.data = local_run(args.data)          # a run in object storage: copied to the local cache once per node
    overrides = {k: v for k, v in (("steps", args.steps), ("log_every", args.log_every), ("out_dir", args.out_dir)) if v is not None}
    if args.nproc and not args.dry_run:
        from codecorpus.trainer.data import read_manifest
        from codecorpus.trainer.launch import launch
        from codecorpus.trainer.parallel import check_device, check_layout

        par = cfg.parallel   # a device or layout this machine cannot run: refused here, before any process starts
        check_device(cfg.train.device)
        check_layout(par, cfg.model, read_manifest(args.data)["tokenizer"]["vocab_size"], None, cfg.train.device)
        forwarded = [args.config, "--data", args.data] + [a for k, v in (("--steps", args.steps), ("--log-every", args.log_every),
                                                                         ("--out-dir", args.out_dir)) if v is not None for a in (k, str(v))]
        return launch(forwarded, par.data_parallel * par.model_parallel, args.nproc, args.nodes, args.node_rank,
                      args.master_addr, args.master_port, Path(args.out_dir or cfg.train.out_dir))
    train(cfg, args.data, overrides=overrides, dry_run=args.dry_run)
    return 0


def _run_folder(path: str) -> str:
    """A run whose files' records can be read (show, query, serve): a folder, or a run in object storage."""
    from codecorpus import storage

    if not storage.is_dir(path):
        raise UserError(f"{path}: " + ("a file, not a run folder" if storage.stat(path) else "no such run folder"))
    manifest = storage.join(path, "manifest.json")
    cut = json.loads(storage.read_text(manifest)).get("opt_out") if storage.is_file(manifest) else None
    if cut:
        raise UserError(f"{path}: made by `codecorpus remove` from {cut['origin']}, whose records it reuses: read that run "
                        f"(the removed files are listed in {path}/stages/10_opt_out)")
    return path


def cmd_show(args: argparse.Namespace) -> int:
    require("duckdb", "inspect", "codecorpus show")
    from rich.console import Console

    from codecorpus.interface.browse import STAGES, connect
    from codecorpus.interface.show import Filters, show, show_journey
    from codecorpus.stages.langid import KNOWN_LANGUAGES

    run = _run_folder(args.run)
    stage = one_of(args.stage, list(STAGES), "--stage") if args.stage else None
    language = one_of(args.language, sorted(KNOWN_LANGUAGES), "--language") if args.language else None
    con = connect(run) if args.reason or args.source else None    # the run's own reasons and sources
    reason = source = None
    if args.reason:
        reasons = [r for (r,) in con.execute("SELECT DISTINCT reason FROM rejects WHERE reason IS NOT NULL ORDER BY 1").fetchall()]
        reason = one_of(args.reason, reasons, "--reason")
    if args.source:
        sources = [s for (s,) in con.execute("SELECT DISTINCT source FROM files UNION SELECT DISTINCT source FROM rejects "
                                            "ORDER BY 1").fetchall()]
        source = one_of(args.source, sources, "--source")
    console = Console()
    if args.id:
        if not show_journey(run, args.id, args.json, console):
            raise UserError(f"{args.run}: no file with id {args.id}")
        return 0
    filters = Filters(stage=stage, reason=reason, language=language, source=source, repo=args.repo,
                      path=args.path, grep=args.grep, sample=args.sample, seed=args.seed, limit=args.limit, where=args.where)
    show(run, filters, args.json, console)
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    require("duckdb", "inspect", "codecorpus query")
    from rich.table import Table

    from codecorpus.interface.browse import query
    from codecorpus.interface.report import console

    columns, rows = query(_run_folder(args.run), args.sql)
    if args.json:
        for row in rows:
            print(json.dumps(dict(zip(columns, row)), ensure_ascii=False, default=str))
        return 0
    table = Table(*columns)
    for column in table.columns:
        column.overflow = "fold"
    for row in rows:
        table.add_row(*[f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v) for v in row])
    console().print(table)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    require("flask", "inspect", "codecorpus serve")
    require("duckdb", "inspect", "codecorpus serve")
    from codecorpus.interface.browse import connect
    from codecorpus.interface.serve import make_app

    run = _run_folder(args.run)
    connect(run)                       # not a run: one line now, not a page that fails later
    print(f"codecorpus serve: {run} on http://{args.host}:{args.port}/ (read-only; Ctrl-C stops)", flush=True)
    try:
        make_app(run).run(host=args.host, port=args.port, debug=False, use_reloader=False)
    except OSError as exc:
        raise UserError(f"--host {args.host} --port {args.port}: cannot listen there ({exc.strerror or exc})") from None
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    require("mindspore", "train", "codecorpus export")
    from codecorpus.pipeline.export import export_mindrecord

    from codecorpus import storage
    from codecorpus.trainer.data import local_run

    if storage.is_remote(args.run) and not args.out:
        raise UserError(f"{args.run}: a run in object storage: give --out (a local folder)")
    out = args.out or str(Path(args.run) / "export" / args.format)
    result = export_mindrecord(local_run(args.run), out, files=args.files)   # object storage: shards copied to the local cache
    print(f"{result['rows']:,} rows → " + ", ".join(result["files"]))
    return 0


def _tokenizer_at(path: str):
    """The tokenizer in `path`: a tokenizer.json, or a run folder (or its tokenizer/ folder)."""
    from codecorpus.tokenizer.bpe import load_tokenizer

    p = Path(path)
    if p.is_dir():
        p = p / "tokenizer" / "tokenizer.json" if (p / "tokenizer").is_dir() else p / "tokenizer.json"
    if not p.is_file():
        raise UserError(f"--tokenizer {path}: no tokenizer.json there")
    try:
        return load_tokenizer(p)
    except Exception as exc:   # tokenizers raises its own Exception for a file that is not a tokenizer
        raise UserError(f"--tokenizer {path}: not a tokenizer.json ({str(exc).splitlines()[0][:160]})") from None


def _text_files(paths: list[str]) -> list[Path]:
    """The files to train on: each file given, and every file under each folder given (sorted)."""
    files = []
    for name in paths:
        p = Path(name)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file())
        elif p.is_file():
            files.append(p)
        else:
            raise UserError(f"{name}: no such file or folder")
    return files


def cmd_tokenizer(args: argparse.Namespace) -> int:
    from codecorpus.tokenizer.bpe import train_bpe
    from codecorpus.tokenizer.errors import VocabularyTooSmall

    if args.action == "train":
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise UserError(f"--out {args.out}: a file, not a folder (tokenizer.json is written into it)")
        files = _text_files(args.files)

        def texts():
            for f in files:
                try:
                    yield f.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    print(f"skipped {f}: {type(exc).__name__}", file=sys.stderr)
        try:
            tok = train_bpe(texts(), vocab_size=args.vocab_size, min_frequency=args.min_frequency)
        except VocabularyTooSmall as exc:
            raise UserError(f"{exc.got:,} of {args.vocab_size:,} ids from {len(files):,} file(s): give more text, "
                            f"or a smaller --vocab-size (or --min-frequency 1)") from None
        out.mkdir(parents=True, exist_ok=True)
        tok.save(str(out / "tokenizer.json"))
        print(f"{tok.get_vocab_size():,} ids → {out / 'tokenizer.json'}")
    elif args.action == "encode":
        tok = _tokenizer_at(args.tokenizer)
        text = args.text if args.text is not None else sys.stdin.read()
        print(" ".join(map(str, tok.encode(text, add_special_tokens=False).ids)))
    else:
        tok = _tokenizer_at(args.tokenizer)
        ids, size = [], tok.get_vocab_size()
        for word in args.ids or sys.stdin.read().split():
            try:
                ids.append(int(word))
            except ValueError:
                raise UserError(f"decode: {word!r} is not an id (whole numbers 0 … {size - 1:,})") from None
            if not 0 <= ids[-1] < size:
                raise UserError(f"decode: id {ids[-1]} is out of range (this tokenizer's ids are 0 … {size - 1:,})")
        print(tok.decode(ids, skip_special_tokens=False), end="")
    return 0
