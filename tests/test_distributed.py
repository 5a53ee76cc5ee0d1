"""Data-parallel training for real: 2 CPU ranks under msrun (`codecorpus train … --nproc 2`) on the
shared build's shards, against one process with twice the batch, and a job whose rank dies, resumed."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from conftest import TINY_MODEL

pytestmark = pytest.mark.slow

CONFIG = TINY_MODEL + """vocab_multiple = 1024

[train]
steps = 30
batch_size = {batch}
learning_rate = 1e-3
warmup_steps = 2
decay_steps = 20
log_every = 1
checkpoint_every = 5
out_dir = "{out}"
device = "CPU"

[parallel]
data_parallel = {dp}
"""
CODECORPUS = str(Path(sys.executable).parent / "codecorpus")


def launch(cfg: Path, run: Path) -> list[str]:
    """`codecorpus train CFG --data RUN --nproc 2` on a free port (another job may hold msrun's default)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return [CODECORPUS, "train", str(cfg), "--data", str(run), "--nproc", "2", "--master-port", str(port)]


def config(tmp_path: Path, name: str, dp: int, batch: int) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(CONFIG.format(batch=batch, out=tmp_path / name, dp=dp))
    return path


def steps(out: Path, rank: int) -> list[dict]:
    return [json.loads(line) for line in (out / f"rank_{rank}" / "steps.jsonl").read_text().splitlines()]


def weights(path: Path) -> dict:
    import mindspore as ms
    return {k: v.asnumpy() for k, v in ms.load_checkpoint(str(path)).items() if not k.startswith(("moment", "global_step", "beta"))}


def kill_tree(proc: subprocess.Popen) -> None:
    """The launcher, msrun and every rank (what stopping a job does)."""
    tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    for p in tree:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait()


@pytest.fixture(scope="module")
def two_ranks(run, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dp")
    cfg = config(tmp, "dp2", dp=2, batch=2)
    out = subprocess.run(launch(cfg, run), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return tmp, cfg, out.stdout


def test_two_ranks_read_disjoint_slices_and_end_with_the_same_weights(two_ranks):
    tmp, _, shown = two_ranks
    out = tmp / "dp2"
    logs = [steps(out, r) for r in (0, 1)]
    assert [len(l) for l in logs] == [30, 30]
    for a, b in zip(*logs):
        assert len(a["samples"]) == len(b["samples"]) == 2 and not set(a["samples"]) & set(b["samples"])
    assert not {s for l in logs[0] for s in l["samples"]} & {s for l in logs[1] for s in l["samples"]}
    w0, w1 = weights(out / "rank_0" / "step_0000030.ckpt"), weights(out / "rank_1" / "step_0000030.ckpt")
    assert w0.keys() == w1.keys() and len(w0) > 10
    assert all(np.array_equal(w0[k], w1[k]) for k in w0)        # gradients all-reduced: one model on both ranks
    assert "step     30/30" in shown and "Traceback" not in shown


def test_two_ranks_equal_one_process_with_twice_the_batch(two_ranks, run):
    """Over the same global sample order, the mean of the two ranks' losses is the loss of one process
    with batch 4 (each rank averages over its own tokens: equal up to the ranks' token counts and
    float32 summation order; measured: 3·10⁻⁶ relative), and the weights after 30 steps agree
    (measured: 2·10⁻⁶)."""
    tmp, _, _ = two_ranks
    cfg = config(tmp, "single", dp=1, batch=4)
    out = subprocess.run([CODECORPUS, "train", str(cfg), "--data", str(run)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    single = steps(tmp / "single", 0)
    ranks = [steps(tmp / "dp2", r) for r in (0, 1)]
    for s, a, b in zip(single, *ranks):
        assert sorted(s["samples"]) == sorted(a["samples"] + b["samples"])
    mean = np.array([(a["loss"] + b["loss"]) / 2 for a, b in zip(*ranks)])
    np.testing.assert_allclose(mean, [s["loss"] for s in single], rtol=1e-4)
    w_single, w_dp = weights(tmp / "single" / "rank_0" / "step_0000030.ckpt"), weights(tmp / "dp2" / "rank_0" / "step_0000030.ckpt")
    assert max(float(np.abs(w_single[k] - w_dp[k]).max()) for k in w_single) < 1e-4


def test_a_rank_that_dies_stops_the_job_in_one_line_and_the_same_command_resumes(two_ranks, run):
    """SIGKILL rank 1 after step 8 (checkpoints every 5 steps): msrun stops the other, and the command
    ends with one line naming the rank and how it died. The same command again goes on from the last
    step every rank saved and ends with the uninterrupted run's samples and losses."""
    tmp, _, _ = two_ranks
    cfg = config(tmp, "killed", dp=2, batch=2)
    command = launch(cfg, run)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp / "killed" / "rank_0" / "steps.jsonl"
    deadline = time.time() + 400
    while time.time() < deadline and not (log.is_file() and len(log.read_text().splitlines()) >= 8):
        time.sleep(0.05)
    pid = json.loads((tmp / "killed" / "rank_1" / "process.json").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            kill_tree(proc)
    assert proc.returncode == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("codecorpus: error: rank 1 stopped (killed by signal 9)") and "every other rank" in last
    assert "Traceback" not in out + err
    done = len(log.read_text().splitlines())
    assert 8 <= done < 30
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "resumed from" in again.stdout
    for r in (0, 1):
        resumed, straight = steps(tmp / "killed", r), steps(tmp / "dp2", r)
        assert [s["step"] for s in resumed] == list(range(1, 31))
        assert [s["samples"] for s in resumed] == [s["samples"] for s in straight]
        np.testing.assert_allclose([s["loss"] for s in resumed], [s["loss"] for s in straight], rtol=1e-5)


def test_model_parallel_on_cpu_is_refused_before_any_process_starts(run, tmp_path):
    cfg = tmp_path / "mp.toml"
    cfg.write_text(CONFIG.format(batch=2, out=tmp_path / "mp", dp=1) + "model_parallel = 2\n")
    out = subprocess.run([CODECORPUS, "train", str(cfg), "--data", str(run), "--nproc", "2"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode != 0
    assert "model_parallel = 2 needs Ascend or GPU" in out.stderr + out.stdout
    assert not (tmp_path / "mp" / "msrun").exists()


def test_the_readme_launch_runs_as_printed(run, tmp_path):
    """The README's single-node launch line, run exactly as printed (from a folder where
    `runs/demo` is the test build and `configs/` the project's)."""
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"<!-- launch -->\n```bash\n(.*?)```", readme, re.S).group(1)
    line = next(l for l in block.splitlines() if l.startswith("codecorpus train") and "--nproc 2" in l)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "demo").symlink_to(run)
    (tmp_path / "configs").symlink_to(Path(__file__).resolve().parents[1] / "configs")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    out = subprocess.run(line, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert re.search(r"step\s+20/20\s+loss", out.stdout)
    assert all((tmp_path / "runs" / "train-tiny-dp2" / f"rank_{r}" / "step_0000020.ckpt").is_file() for r in (0, 1))


def test_a_multi_node_launch_is_msrun_with_the_nodes_ranks():
    from codecorpus.trainer.launch import codecorpus_script, msrun_command
    cmd = msrun_command(["c.toml", "--data", "r"], nproc=8, nodes=192, node_rank=5, master_addr="10.0.0.1",
                        master_port=8118, log_dir=Path("/o/msrun"))
    assert Path(cmd[0]).name == "msrun"
    assert {"--worker_num=1536", "--local_worker_num=8", "--node_rank=5", "--master_addr=10.0.0.1", "--join=True"} <= set(cmd)
    assert cmd[-5:] == [codecorpus_script(), "train", "c.toml", "--data", "r"]
    assert Path(codecorpus_script()).parent == Path(sys.executable).parent


def test_a_master_port_in_use_is_refused_before_any_process_starts(tmp_path):
    import socket

    from codecorpus.trainer.errors import TrainerError
    from codecorpus.trainer.launch import launch as start
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(TrainerError, match=f"port {port} is in use"):
            start(["c.toml", "--data", "r"], world=2, nproc=2, nodes=1, node_rank=0, master_addr="127.0.0.1",
                  master_port=port, out_dir=tmp_path)
    assert not (tmp_path / "msrun").exists()
