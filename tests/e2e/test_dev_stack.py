"""The local stack's supervisor (`edgectl/dev_stack.py`, `edgectl dev up`): refusals and clean stops.

Starts the real Temporal dev server and Prometheus on free loopback ports; the whole stack with the
simulated fleet and the controller is exercised by `test_demo.py`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from edgectl import dev_stack
from edgectl.child_restarts import ChildRestarts, RestartPolicy
from edgectl.cli.exit_codes import ExitCode
from edgectl.dev_stack import CrashLoop, DevStack, StackOptions, StackPorts, StackUnavailable
from edgectl.stack_process import SupervisedProcess, pids_alive

REPO = Path(__file__).resolve().parents[2]
LOCAL_ENV = REPO / "environments" / "local.yaml"


def test_a_taken_port_is_refused_with_exit_code_4_and_names_the_option() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "edgectl.cli.main", "dev", "up", "--env", str(LOCAL_ENV),
             "--prometheus-port", str(port)],
            capture_output=True, text=True, timeout=60, cwd=REPO,
        )
    assert result.returncode == ExitCode.UNAVAILABLE
    assert f"prometheus 127.0.0.1:{port}" in result.stderr
    assert "--prometheus-port N" in result.stderr


def test_a_missing_prometheus_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dev_stack, "prometheus_binary", lambda: None)
    with pytest.raises(StackUnavailable) as caught:
        dev_stack.check_binaries()
    assert "apt-get install prometheus" in caught.value.hint


def test_the_generated_scrape_config_targets_the_fleet_and_the_controller_on_loopback() -> None:
    ports = StackPorts.free()
    config = dev_stack.prometheus_config(ports, 1.0)
    assert f"127.0.0.1:{ports.simulator}" in config
    assert f"127.0.0.1:{ports.controller_metrics}" in config
    assert "0.0.0.0" not in config


@pytest.mark.parametrize(("speed", "days"), [(60.0, "0"), (1.0, "8")])
def test_the_controller_learns_from_prometheus_history_only_when_its_clock_is_the_fleets(
    tmp_path: Path, speed: float, days: str
) -> None:
    """Prometheus stamps samples on the wall clock: at x60 a fleet day sits in 24 wall minutes, and a
    profile learned from it would be wrong; at x1 the controller learns as on a real fleet."""
    stack = DevStack(StackOptions(env_path=LOCAL_ENV, ports=StackPorts.free(), work_dir=tmp_path, speed=speed))
    (controller,) = [p for p in stack.planned_processes() if p.name == "controller"]
    at = controller.argv.index("--demand-history-days")
    assert controller.argv[at + 1] == days


@pytest.mark.integration
def test_temporal_and_prometheus_start_answer_and_stop_leaving_no_process(tmp_path: Path) -> None:
    stack = DevStack(
        StackOptions(env_path=LOCAL_ENV, ports=StackPorts.free(), work_dir=tmp_path, start_simulator=False)
    )
    with stack:
        stack.start()
        pids = stack.child_pids()
        assert len(pids) == 2 and len(pids_alive(pids)) == 2
        assert httpx.get(f"{stack.prometheus_url}/-/ready", timeout=5).status_code == 200
        assert httpx.get(stack.urls["Temporal UI"], timeout=5).status_code == 200
        for port in (stack.ports.temporal, stack.ports.temporal_ui, stack.ports.prometheus):
            assert listening_addresses(port) == {"127.0.0.1"}, port
    assert pids_alive(pids) == []
    busy = {port for _, port in stack.ports.taken()}
    assert stack.ports.temporal not in busy and stack.ports.prometheus not in busy


def listening_addresses(port: int) -> set[str]:
    """IPv4 addresses with a listening TCP socket on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.rsplit(":", 1)
            if state != "0A" or int(port_hex, 16) != port:
                continue
            if len(address) == 8:
                found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
            else:
                found.add("::" if set(address) == {"0"} else address)
    return found


SUPERVISOR = """
import sys, time
from pathlib import Path
from edgectl.dev_stack import DevStack, StackOptions, StackPorts
from edgectl.stack_process import TerminationRequested, raise_on_sigterm
raise_on_sigterm()
stack = DevStack(StackOptions(env_path=Path(sys.argv[1]), ports=StackPorts.free(), work_dir=Path(sys.argv[2]),
                              start_simulator=False))
try:
    stack.start()
    print(" ".join(str(pid) for pid in stack.child_pids()), flush=True)
    while True:
        time.sleep(0.2)
except TerminationRequested:
    pass
finally:
    stack.stop()
"""


def _start_supervisor(tmp_path: Path) -> tuple[subprocess.Popen[str], list[int]]:
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, str(LOCAL_ENV), str(tmp_path)],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    assert supervisor.stdout is not None
    line = supervisor.stdout.readline()
    pids = [int(pid) for pid in line.split()]
    assert len(pids) == 2 and len(pids_alive(pids)) == 2, line
    return supervisor, pids


def _wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while pids_alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return pids_alive(pids)


@pytest.mark.integration
def test_sigterm_to_the_supervisor_stops_every_child(tmp_path: Path) -> None:
    supervisor, pids = _start_supervisor(tmp_path)
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=30) == 0
    assert _wait_gone(pids, 5) == []


@pytest.mark.integration
def test_children_die_with_a_supervisor_killed_by_sigkill(tmp_path: Path) -> None:
    supervisor, pids = _start_supervisor(tmp_path)
    supervisor.kill()  # no chance to clean up: the kernel's parent-death signal must do it
    supervisor.wait(timeout=10)
    assert _wait_gone(pids, 20) == []


def test_temporal_and_the_controller_keep_their_state_in_the_state_directory(tmp_path: Path) -> None:
    stack = DevStack(StackOptions(env_path=LOCAL_ENV, ports=StackPorts.free(), work_dir=tmp_path))
    argv = {process.name: process.argv for process in stack.planned_processes()}
    temporal, controller = argv["temporal"], argv["controller"]
    assert temporal[temporal.index("--db-filename") + 1] == str(tmp_path / "temporal.db")
    assert controller[controller.index("--steering-file") + 1] == str(tmp_path / "steering-local.json")
    assert stack.temporal_db == tmp_path / "temporal.db" and stack.steering_file == tmp_path / "steering-local.json"


def test_restart_waits_double_in_a_row_and_give_up_past_the_limit_per_minute() -> None:
    now = [0.0]
    restarts = ChildRestarts(
        RestartPolicy(first_delay_seconds=1, max_delay_seconds=4, max_restarts_per_window=4, window_seconds=60,
                      stable_seconds=30),
        clock=lambda: now[0],
    )  # fmt: skip
    restarts.started()
    delays = []
    for _ in range(4):
        now[0] += 1
        delays.append(restarts.crashed())
        restarts.started()
    assert delays == [1, 2, 4, 4]  # doubling, capped
    now[0] += 1
    assert restarts.crashed() is None  # a fifth crash within the minute: give up
    now[0] += 60  # a minute later the window is empty, and the child had been up long enough
    assert restarts.crashed() == 1


def _sleeper(tmp_path: Path, name: str) -> SupervisedProcess:
    return SupervisedProcess(
        name=name, argv=[sys.executable, "-c", "import time; time.sleep(120)"], log_path=tmp_path / f"{name}.log"
    )


def _heal_until(stack: DevStack, done: Callable[[], bool], reports: list[str], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, reports
        stack.heal(report=reports.append)
        time.sleep(0.05)


def test_heal_restarts_only_the_dead_child_and_says_why(tmp_path: Path) -> None:
    policy = RestartPolicy(first_delay_seconds=0.1, max_restarts_per_window=3)
    stack = DevStack(StackOptions(env_path=LOCAL_ENV, work_dir=tmp_path, restart_policy=policy))
    with stack:
        for name in ("temporal", "controller"):
            process = _sleeper(tmp_path, name)
            process.start()
            stack.processes.append(process)
        temporal, controller = stack.processes
        old_pid, controller_pid = temporal.pid, controller.pid
        assert old_pid is not None
        os.kill(old_pid, signal.SIGKILL)
        reports: list[str] = []
        _heal_until(stack, lambda: temporal.alive() and temporal.pid != old_pid, reports)
        assert controller.pid == controller_pid and controller.alive()  # the others were left alone
        assert any("temporal exited (code -9); restarting it in 0s" in r for r in reports), reports
        assert f"temporal started again (pid {temporal.pid})" in reports
        pids = stack.child_pids()
    assert pids_alive(pids) == []


def test_a_child_that_keeps_crashing_stops_the_healing_with_its_log(tmp_path: Path) -> None:
    policy = RestartPolicy(first_delay_seconds=0.01, max_restarts_per_window=2)
    stack = DevStack(StackOptions(env_path=LOCAL_ENV, work_dir=tmp_path, restart_policy=policy))
    crasher = SupervisedProcess(
        name="simulator",
        argv=[sys.executable, "-c", "import sys; print('bad trace file'); sys.exit(3)"],
        log_path=tmp_path / "simulator.log",
    )
    reports: list[str] = []
    with stack:
        crasher.start()
        stack.processes.append(crasher)
        with pytest.raises(CrashLoop) as caught:
            _heal_until(stack, lambda: False, reports)
    assert "simulator exited (code 3) and crashed 3 times within 60s" in str(caught.value)
    assert "bad trace file" in caught.value.process.log_tail()
    assert sum("started again" in r for r in reports) == 2, reports
