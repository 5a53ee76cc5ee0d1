"""Fail fast, in one line, on an `--address` where no Ray cluster answers: Ray itself retries for
minutes, printing only to its log.

Nothing listening is found at once (a TCP connection). A port that listens but is not a Ray head's
is found by joining it from a separate process, given `join_timeout` seconds: that process starts
when the check is made and the build's driver goes on (loading its modules, the config, the base)
until it needs the answer, so a cluster that answers costs the build no time.
"""
from __future__ import annotations

import socket
import subprocess
import sys

from codecorpus.pipeline.errors import BuildError

_JOIN = ("import sys, ray\n"
         "ray.init(address=sys.argv[1], include_dashboard=False, log_to_driver=False, logging_level='ERROR')\n"
         "ray.shutdown()\n")  # called, not left to Ray's exit hook, which first sleeps 0.5 s for late log lines


class ClusterCheck:
    """`ClusterCheck(address)` checks the address's form and that something listens there, and starts
    joining it; `answered(timeout)` waits for the join. Used as a context manager, a join still under
    way when the block is left (an error before the answer was needed) is stopped."""

    def __init__(self, address: str):
        self.address = address
        if address != "auto":
            host, _, port = address.removeprefix("ray://").rpartition(":")
            if not host or not port.isdigit():
                raise BuildError(f"--address {address}: not HOST:PORT (or 'auto')")
            try:
                socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
            except OSError as exc:
                raise BuildError(f"--address {address}: nothing answers there ({exc.strerror or exc}); "
                                 "the head's address is what `ray start --head` printed (port 6379 by default)") from None
        self.probe = subprocess.Popen([sys.executable, "-c", _JOIN, address], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True)

    def answered(self, timeout: float) -> None:
        try:
            _, err = self.probe.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BuildError(f"--address {self.address}: no Ray cluster answered within {timeout:.0f} s (something "
                             "listens there, but not a Ray head; its port is 6379 unless `ray start --port` said otherwise)") from None
        if self.probe.returncode != 0:
            last = (err.strip().splitlines() or ["no message"])[-1][:300]
            raise BuildError(f"cannot join the Ray cluster at {self.address}: {last}")

    def __enter__(self) -> "ClusterCheck":
        return self

    def __exit__(self, *exc) -> None:
        if self.probe.poll() is None:
            self.probe.kill()
        self.probe.communicate()
