"""One child process of the local stack (`edgectl/dev_stack.py`): started in its own process group
with its output in a log file, probed for readiness, and stopped as a whole group.

Also the small process helpers the stack's callers share: `pids_alive` (what is left after a stop)
and `raise_on_sigterm` (so a supervisor's `finally` blocks run on SIGTERM). Used by `DevStack`, the
CLI (`edgectl/cli/dev_commands.py`), the demo and the tests that start servers of their own.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

LOOPBACK = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parent.parent


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: ask the kernel to SIGTERM this child if the supervising process dies (even by kill -9)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


@dataclass
class SupervisedProcess:
    """One child process in its own process group, with its output in a log file."""

    name: str
    argv: list[str]
    log_path: Path
    ready_url: str | None = None
    ready_port: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() signals the whole group
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
                env={**os.environ, **self.env},
                cwd=REPO_ROOT,
            )
        finally:
            log.close()

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def ready(self) -> bool:
        if self.ready_port is not None:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.settimeout(0.5)
                if sock.connect_ex((LOOPBACK, self.ready_port)) != 0:
                    return False
        if self.ready_url is not None:
            try:
                return httpx.get(self.ready_url, timeout=1.0).status_code < 500
            except httpx.HTTPError:
                return False
        return True

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout_seconds: float) -> None:
        """SIGTERM the process group, wait, then SIGKILL the group; always reaps the child."""
        if self.popen is None:
            return
        pgid = self.popen.pid  # start_new_session: the child leads its own group
        self._signal_group(pgid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout_seconds)
        except subprocess.TimeoutExpired:
            self._signal_group(pgid, signal.SIGKILL)
            self.popen.wait(timeout=5)
        # the leader may be gone while a grandchild of its group lives on: kill the group anyway
        self._signal_group(pgid, signal.SIGKILL)

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


def pids_alive(pids: Sequence[int]) -> list[int]:
    """Which of `pids` still exist as processes (zombies count as gone)."""
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                state = stat.read().rsplit(")", 1)[1].split()[0]
            if state != "Z":
                alive.append(pid)
        except OSError:
            continue
    return alive


class TerminationRequested(Exception):
    """Raised in the main thread when SIGTERM arrives, so `finally` blocks stop the stack."""


def raise_on_sigterm() -> None:
    """SIGTERM raises TerminationRequested; SIGINT raises KeyboardInterrupt even where it was ignored
    (a shell starts background jobs with SIGINT ignored, and Python keeps that)."""

    def _handler(signum: int, _frame: object) -> None:
        raise TerminationRequested(f"received signal {signum}")

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
