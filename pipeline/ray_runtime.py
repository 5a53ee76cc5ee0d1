"""The build's Ray: start a local one or join a cluster, the workers' environment, Ray Data settings (for benches),
and what a Ray failure means for the build (a lost node or worker: run the step again; a full or
read-only disk: one line saying so)."""
from __future__ import annotations

import atexit
import errno
import importlib
import itertools
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import ray

import codecorpus
from codecorpus import storage
from codecorpus.pipeline.config import BuildConfig, RayConfig
from codecorpus.pipeline.errors import BuildError

SHIPPED = ("pipeline", "stages", "tokenizer")   # the subpackages a build's workers import
MAX_IN_FLIGHT = 256     # tasks submitted ahead of those finished


def init_ray(cfg: BuildConfig, address: str | None, log_level: int = logging.ERROR, log_to_driver: bool = False) -> None:
    """Start a local Ray (CPUs from config, else all) or join a running cluster (--address, else RAY_ADDRESS).
    Ray's own lines (start-up, task retries) go to stderr from `log_level` up; `log_to_driver` adds the
    workers' output (the CLI sends stderr to RUN/build.log, or with --verbose leaves it on the terminal).

    Without an address the build always starts its own Ray: Ray would otherwise attach to whatever cluster
    /tmp/ray/ray_current_cluster names (a `ray start` or test cluster left on the machine)."""
    if ray.is_initialized():
        return
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(log_level)
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict = dict(include_dashboard=False, logging_level=log_level, log_to_driver=log_to_driver)
    if address:
        # Ship our code to the cluster's workers, which may not have codecorpus installed.
        kwargs["runtime_env"] = {"env_vars": worker_env(cfg.ray), "py_modules": [package_for_workers()]}
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError) as exc:
            hint = ("; the cluster wants a token: export RAY_AUTH_MODE=token (token in ~/.ray/auth_token or RAY_AUTH_TOKEN)"
                    if "auth" in str(exc).lower() else "")
            raise BuildError(f"cannot join the Ray cluster at {address}: {str(exc).strip().splitlines()[-1][:300]}{hint}") from None
    else:
        # a local Ray's workers inherit this process's environment: set here, it is theirs from the start,
        # and the workers Ray starts with itself serve the build (with a runtime_env Ray would start
        # others for it: 0.7 s before the first task)
        os.environ.update(worker_env(cfg.ray))
        ray.init(address="local", num_cpus=cfg.ray.num_cpus, object_store_memory=cfg.ray.object_store_memory, **kwargs)


def leave_ray(log_to_driver: bool) -> None:
    """Disconnect from Ray (a local Ray stops) as the build ends. Ray's exit hook would do it too, after
    a 0.5 s sleep for the workers' lines still on their way: left to it where those lines are shown."""
    if not log_to_driver:
        ray.shutdown()


def warm_workers(warm_up: Callable[[], None]) -> None:
    """`warm_up()` on as many workers as the cluster has CPUs, without waiting: started while the driver
    plans, they start their processes and import what the first tasks need before those arrive."""
    task = ray.remote(warm_up)
    for _ in range(int(ray.cluster_resources().get("CPU", 1))):
        task.remote()


def as_completed(submitters: list[Callable[[], ray.ObjectRef]]) -> Iterator[tuple[int, object]]:
    """(index, result) of each remote call (zero-argument submitters), as the calls finish, with at
    most MAX_IN_FLIGHT of them submitted at a time."""
    queue = iter(enumerate(submitters))
    pending = {submit(): index for index, submit in itertools.islice(queue, MAX_IN_FLIGHT)}
    while pending:
        (finished,), _ = ray.wait(list(pending), num_returns=1)
        index = pending.pop(finished)
        for next_index, submit in itertools.islice(queue, 1):
            pending[submit()] = next_index
        yield index, ray.get(finished)


def package_for_workers() -> str:
    """A folder named `codecorpus` holding the package as the workers import it (Ray's `py_modules`
    ships a folder under its own name). An installed wheel already is one; a source checkout installed
    in editable mode keeps its subpackages in the repository's folders, so they are gathered into one."""
    root = Path(codecorpus.__file__).parent
    if all((root / name / "__init__.py").is_file() for name in SHIPPED):
        return str(root)
    target = Path(tempfile.mkdtemp(prefix="codecorpus-ship-")) / "codecorpus"
    atexit.register(shutil.rmtree, target.parent, True)      # Ray has uploaded it by then
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(root, target, ignore=ignore)
    for name in SHIPPED:
        source = Path(importlib.import_module(f"codecorpus.{name}").__file__).parent
        shutil.copytree(source, target / name, ignore=ignore, dirs_exist_ok=True)
    return str(target)


def worker_env(ray_cfg: RayConfig) -> dict[str, str]:
    """Environment of the Ray workers. With `release_freed_memory`, Arrow's allocator (mimalloc in the
    pyarrow wheels) hands freed pages back to the OS at once: by default it keeps them, and a worker
    that reads block after block grew by about 100 MB per block it had handled. The object store's
    endpoint and region go as the driver has them (codecorpus.storage), so every node reads the same store."""
    env = {k: os.environ[k] for k in storage.SETTINGS_VARIABLES if os.environ.get(k)}
    if ray_cfg.release_freed_memory:
        env |= {"MIMALLOC_PURGE_DELAY": "0", "MIMALLOC_PURGE_DECOMMITS": "1"}
    return env


def tune_ray_data(ray_cfg: RayConfig) -> None:
    """Ray Data settings of a driver that reads through Ray Data (bench.dedup_scale), from a `[ray]`
    section: what bounds a worker's memory when it reads Parquet (a read task's row groups, the block
    size). A build runs no Ray Data — its steps, shuffles included (codecorpus.pipeline.shuffle), are
    plain tasks — and does not import it (0.4 s)."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    # Ray Data's Parquet reader packs row groups into read tasks of up to 128 MiB (uncompressed) by
    # default; the driver reads this variable when it plans a read, so setting it here bounds them
    os.environ["RAY_DATA_PARQUET_BIN_PACKING_BYTES"] = str(ray_cfg.read_task_bytes)
    if ray_cfg.target_block_bytes:
        ctx.target_max_block_size = ray_cfg.target_block_bytes


def _causes(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__


def lost_to_the_cluster(exc: BaseException) -> str | None:
    """The name of the Ray failure (a dead node, worker or actor, a lost object) behind `exc`, if any."""
    lost = (ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError, ray.exceptions.WorkerCrashedError,
            ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError, ray.exceptions.LocalRayletDiedError)
    for cause in _causes(exc):
        if isinstance(cause, lost):
            return type(cause).__name__
    return None


WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


def write_error(exc: BaseException) -> str | None:
    """'No space left on device: PATH' when a full, read-only or failing disk is behind `exc` (from a
    Ray task only the message survives, hence the text is read too)."""
    for cause in _causes(exc):
        if isinstance(cause, OSError) and cause.errno in WRITE_ERRNOS:
            return f"{os.strerror(cause.errno)}" + (f": {cause.filename}" if cause.filename else "")
        found = re.search(r"\[Errno (\d+)\] [^:\n]*(?:: '([^'\n]+)')?", str(cause))
        if found and int(found.group(1)) in WRITE_ERRNOS:
            return os.strerror(int(found.group(1))) + (f": {found.group(2)}" if found.group(2) else "")
    return None
