"""The local stack's supervisor (`edgectl/dev_stack.py`, `edgectl dev up`): refusals and clean stops.

Starts the real Temporal dev server and Prometheus on free loopback ports; the whole stack with the
simulated fleet and the controller is exercised by `test_demo.py`.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from edgectl import dev_stack
from edgectl.cli.exit_codes import ExitCode
from edgectl.dev_stack import DevStack, StackOptions, StackPorts, StackUnavailable
from edgectl.stack_process import pids_alive

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
