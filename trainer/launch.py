"""`codecorpus train … --nproc N`: one training process per device, started by MindSpore's msrun.

msrun starts each worker as `python SCRIPT ARGS` with whatever `python` is first on PATH; this runs
it with this interpreter's folder first on PATH and this installation's `codecorpus` script, so
the workers import the same packages as the command that launched them. msrun waits for the
workers (`--join`), shows rank 0's log, and stops every rank when one dies; we then name the rank
that died first (each rank records its pid in OUT/rank_N/process.json), how, and its last error
line. Worker logs: OUT/msrun/worker_N.log.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from codecorpus.trainer.errors import TrainerError


def codecorpus_script() -> str:
    """This installation's `codecorpus` console script (next to the interpreter), else the package's `__main__.py`."""
    import codecorpus

    script = Path(sys.executable).parent / "codecorpus"
    return str(script) if script.is_file() else str(Path(codecorpus.__file__).with_name("__main__.py"))


def msrun_command(train_args: list[str], nproc: int, nodes: int, node_rank: int, master_addr: str, master_port: int,
                  log_dir: Path) -> list[str]:
    """The msrun command line that runs `codecorpus train TRAIN_ARGS` on `nproc` devices of this node."""
    msrun = Path(sys.executable).parent / "msrun"
    return [str(msrun) if msrun.is_file() else "msrun", f"--worker_num={nproc * nodes}", f"--local_worker_num={nproc}",
            f"--master_addr={master_addr}", f"--master_port={master_port}", f"--node_rank={node_rank}",
            f"--log_dir={log_dir}", "--join=True", "--tail_worker_log=0", "--cluster_time_out=300",
            codecorpus_script(), "train", *train_args]


def launch(train_args: list[str], world: int, nproc: int, nodes: int, node_rank: int, master_addr: str, master_port: int,
           out_dir: Path) -> int:
    """Run the workers; returns 0, or raises TrainerError naming the rank that failed."""
    if nproc * nodes != world:
        raise TrainerError(f"--nproc {nproc} × --nodes {nodes} = {nproc * nodes} processes, but the config's "
                           f"parallel.data_parallel × model_parallel = {world}")
    if node_rank == 0:
        _port_is_free(master_port)
    log_dir = out_dir / "msrun"
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.setdefault("GLOG_v", "3")   # MindSpore's own INFO/WARNING lines (cluster building, reconnects) off the console
    cmd = msrun_command(train_args, nproc, nodes, node_rank, master_addr, master_port, log_dir)
    print(f"launching {nproc} training process(es) on this node (node {node_rank} of {nodes}); logs in {log_dir}", flush=True)
    failed: tuple[int, int] | None = None     # (pid, exit code) of the first worker msrun saw die
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace") as proc:
        for line in proc.stdout:
            died = DIED.search(line)
            if died and failed is None:
                failed = (int(died.group(1)), int(died.group(2)))
                _stop(proc.pid)
            if failed is None:          # after a death, msrun's teardown and its own traceback: not shown
                sys.stdout.write(line)
                sys.stdout.flush()
    if proc.returncode == 0:
        return 0
    raise TrainerError(_failure(failed, out_dir, log_dir, proc.returncode))


def _stop(msrun_pid: int) -> None:
    """A rank died, so the job has: stop msrun and every process it started now (msrun itself takes
    ~30 s to notice and stop the others; they would wait in their next collective until then). A
    checkpoint being written is lost whole, never torn (trainer.train writes, then renames)."""
    import psutil

    try:
        msrun = psutil.Process(msrun_pid)
        for process in [*msrun.children(recursive=True), msrun]:
            process.kill()
    except psutil.NoSuchProcess:
        pass


def _port_is_free(port: int) -> None:
    """msrun's scheduler listens on node 0's master port: a port in use (another job) fails here, not in every rank."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError:
            raise TrainerError(f"port {port} is in use on this node (another training job?); choose another with --master-port") from None


DIED = re.compile(r"Worker process (\d+) exit with exception\. Error code: (-?\d+)")


def _failure(failed: tuple[int, int] | None, out_dir: Path, log_dir: Path, code: int) -> str:
    """One line naming the rank that died first, how, and its last error line."""
    if failed is None:
        return f"a training process stopped (msrun exit status {code}); every rank was stopped; logs in {log_dir}"
    pid, exit_code = failed
    rank = next((int(p.parent.name.split("_")[1]) for p in out_dir.glob("rank_*/process.json")
                 if json.loads(p.read_text()).get("pid") == pid), None)
    if rank is None:      # it died before recording its pid: MindSpore's own log lines carry it, `ME(PID:…`
        rank = next((int(log.stem.split("_")[1]) for log in sorted(log_dir.glob("worker_*.log"))
                     if f"ME({pid}:" in log.read_text(errors="replace")), None)
    how = f"killed by signal {-exit_code}" if exit_code < 0 else f"exit status {exit_code}"
    log = log_dir / f"worker_{rank}.log"
    lines = log.read_text(errors="replace").splitlines() if rank is not None and log.is_file() else []
    errors = [line.strip() for line in lines if "Error" in line and "WARNING" not in line]
    said = f": {errors[-1]}" if errors else ""
    who = f"rank {rank}" if rank is not None else f"a training process (pid {pid})"
    return f"{who} stopped ({how}){said}; every other rank was stopped (log: {log if rank is not None else log_dir})"
