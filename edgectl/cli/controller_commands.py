"""`edgectl controller run`: the Temporal worker of one environment, plus the Temporal options all
on-call commands share (`failover_commands.py`, `drill_commands.py`, `status_command.py`).

The worker serves task queue `edgeplane-<env>`, makes sure the environment's ControlLoopWorkflow
exists (idempotent start by id), exposes `edgeplane_controller_*` metrics on 127.0.0.1, and stops
gracefully on SIGTERM/SIGINT (in-flight activities finish, Temporal resumes the workflows elsewhere).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from prometheus_client import CollectorRegistry, start_http_server
from temporalio.client import Client

from controller.spec import EnvironmentSpec
from controller.spec_file import EnvironmentFileError, load_environment
from edgectl.bootstrap import (
    DEFAULT_TEMPORAL_ADDRESS,
    BootstrapError,
    FleetSettings,
    TemporalSettings,
    build_fleet_adapters,
    connect_temporal,
)
from edgectl.cli.exit_codes import ExitCode
from edgectl.cli.output import console, fail
from workflows.activities import FleetActivities
from workflows.controller_metrics import ControllerMetrics
from workflows.models import task_queue_for
from workflows.worker import build_worker, ensure_control_loop

controller_app = typer.Typer(help="The controller: a Temporal worker running the control loop.", no_args_is_help=True)

EnvOption = Annotated[Path, typer.Option("--env", help="Environment file, e.g. environments/local.yaml.")]
AddressOption = Annotated[str, typer.Option("--temporal-address", help="Temporal frontend host:port.")]
NamespaceOption = Annotated[str, typer.Option("--namespace", help="Temporal namespace.")]
TlsCertOption = Annotated[Path | None, typer.Option("--tls-cert", help="Client certificate (mTLS).")]
TlsKeyOption = Annotated[Path | None, typer.Option("--tls-key", help="Client private key (mTLS).")]
TlsCaOption = Annotated[Path | None, typer.Option("--tls-ca", help="CA certificate of the Temporal server.")]
TaskQueueOption = Annotated[
    str | None, typer.Option("--task-queue", help="Override the task queue (default edgeplane-<env>).", hidden=True)
]


def run_with_temporal(main: Coroutine[Any, Any, None]) -> None:
    """Run a command that talks to Temporal, then leave without interpreter teardown.

    The SDK's Rust runtime threads can abort CPython's finalisation with "PyGILState_Release ...
    must be current" (temporalio/sdk-python#300), turning a finished command into exit -6. So a
    real process flushes its output and ends with os._exit(code); under an in-process test runner
    (stdout without a file descriptor) the usual typer.Exit is raised instead.
    """
    code = 0
    try:
        asyncio.run(main)
    except typer.Exit as done:
        code = done.exit_code
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        raise typer.Exit(code) from None
    os._exit(code)


def exit_with(code: ExitCode, message: str = "") -> NoReturn:
    if message:
        fail(message)
    raise typer.Exit(int(code))


def load_spec_or_exit(path: Path) -> EnvironmentSpec:
    try:
        return load_environment(path)
    except EnvironmentFileError as error:
        exit_with(ExitCode.INVALID_INPUT, str(error))


def temporal_settings(
    address: str, namespace: str, cert: Path | None, key: Path | None, ca: Path | None
) -> TemporalSettings:
    return TemporalSettings(address=address, namespace=namespace, tls_cert=cert, tls_key=key, tls_ca=ca)


async def connect_or_exit(settings: TemporalSettings) -> Client:
    try:
        return await connect_temporal(settings)
    except BootstrapError as error:
        exit_with(ExitCode.INVALID_INPUT, str(error))
    except RuntimeError as error:
        exit_with(ExitCode.UNAVAILABLE, f"Temporal at {settings.address} unreachable: {error}")


@controller_app.command("run")
def run_controller(
    env: EnvOption,
    temporal_address: AddressOption = DEFAULT_TEMPORAL_ADDRESS,
    namespace: NamespaceOption = "default",
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
    tls_ca: TlsCaOption = None,
    simulator_url: Annotated[str | None, typer.Option(help="Simulated fleet HTTP API (observer and actuator).")] = None,
    prometheus_url: Annotated[str | None, typer.Option(help="Prometheus to observe the fleet from.")] = None,
    kube_contexts: Annotated[list[str] | None, typer.Option(help="REGION=CONTEXT to act on (repeat).")] = None,
    metrics_port: Annotated[int, typer.Option(help="Port of the controller's own /metrics on 127.0.0.1.")] = 9464,
    audit_dir: Annotated[Path | None, typer.Option(help="Write each workflow's audit records here (JSONL).")] = None,
    task_queue: TaskQueueOption = None,
    control_loop: Annotated[bool, typer.Option(help="Start the control loop if it is not running.")] = True,
) -> None:
    """Run the environment's Temporal worker until SIGTERM."""
    spec = load_spec_or_exit(env)
    try:
        observer, actuator = build_fleet_adapters(
            spec, FleetSettings(simulator_url, prometheus_url, tuple(kube_contexts or ()))
        )
    except BootstrapError as error:
        exit_with(ExitCode.INVALID_INPUT, str(error))
    registry = CollectorRegistry()
    metrics = ControllerMetrics(spec.name, registry)
    try:
        start_http_server(metrics_port, addr="127.0.0.1", registry=registry)
    except OSError as error:
        exit_with(ExitCode.UNAVAILABLE, f"--metrics-port {metrics_port}: {error}")
    activities = FleetActivities(spec, observer, actuator, metrics=metrics, audit_dir=audit_dir)
    settings = temporal_settings(temporal_address, namespace, tls_cert, tls_key, tls_ca)
    run_with_temporal(_serve(spec, settings, activities, task_queue or task_queue_for(spec.name), control_loop))


async def _serve(
    spec: EnvironmentSpec, settings: TemporalSettings, activities: FleetActivities, task_queue: str, loop_on: bool
) -> None:
    client = await connect_or_exit(settings)
    stop = asyncio.Event()
    event_loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        event_loop.add_signal_handler(signum, stop.set)
    with ThreadPoolExecutor(max_workers=8) as executor:
        worker = build_worker(client, activities, task_queue=task_queue, executor=executor)
        async with worker:
            if loop_on:
                handle = await ensure_control_loop(client, spec, task_queue=task_queue)
                console.print(f"control loop {handle.id} running", highlight=False)
            console.print(f"worker on task queue {task_queue} ({settings.address}); SIGTERM stops it", highlight=False)
            await stop.wait()
    console.print("worker stopped", highlight=False)
