"""`edgectl controller run|announce|withdraw`: the Temporal worker of one environment and the
business's calendar of demand events (the options every Temporal command shares live in
`temporal_options.py`; the mode commands pause|resume|recommend-only|act in `loop_mode_commands.py`).

The worker serves task queue `edgeplane-<env>`, makes sure the environment's ControlLoopWorkflow
exists (idempotent start by id), exposes `edgeplane_controller_*` metrics (on 127.0.0.1 unless
`--metrics-address` says otherwise: a pod binds 0.0.0.0 so Prometheus can scrape it), and stops
gracefully on SIGTERM/SIGINT (in-flight activities finish, Temporal resumes the workflows elsewhere).

`announce` and `withdraw` send a scheduled demand event (a flash sale) to the running control loop
(updates `announce_demand_event` / `withdraw_demand_event` of `workflows/control_loop.py`), whose
planner then orders the event's capacity before its ramp. Exit codes: 0 accepted, 1 bad input
(nothing sent), 3 refused by the loop (already over, duplicate, unknown event, loop not running),
4 Temporal unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from prometheus_client import CollectorRegistry, start_http_server
from pydantic import BaseModel, ValidationError
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from controller.demand_events import DemandEvent
from controller.spec import EnvironmentSpec
from edgectl.bootstrap import (
    DEFAULT_TEMPORAL_ADDRESS,
    ENV_METRICS_ADDRESS,
    ENV_PROMETHEUS_URL,
    BootstrapError,
    TemporalSettings,
    build_fleet_adapters,
    build_kubernetes_steering_authority,
    build_steering_authority,
    default_steering_file,
)
from edgectl.cli.actuation_options import (
    ActuateOption,
    AwsEndpointOption,
    DemandHistoryDaysOption,
    MediaDomainOption,
    MediaWorkloadKindOption,
    NodeGroupOption,
    Route53ZoneOption,
    fleet_settings,
)
from edgectl.cli.exit_codes import ExitCode
from edgectl.cli.output import console, print_json, say
from edgectl.cli.temporal_options import (
    AddressOption,
    ByOption,
    EnvOption,
    NamespaceOption,
    ReasonOption,
    TaskQueueOption,
    TlsCaOption,
    TlsCertOption,
    TlsKeyOption,
    actor,
    connect_or_exit,
    exit_with,
    load_spec_or_exit,
    run_with_temporal,
    temporal_settings,
)
from workflows.activities import FleetActivities
from workflows.control_loop import ControlLoopWorkflow
from workflows.controller_metrics import ControllerMetrics
from workflows.models import (
    Acknowledgement,
    AnnounceDemandRequest,
    WakeRequest,
    WithdrawDemandRequest,
    control_loop_id,
    task_queue_for,
)
from workflows.worker import build_worker, ensure_control_loop

controller_app = typer.Typer(help="The controller: a Temporal worker running the control loop.", no_args_is_help=True)

@controller_app.command("run")
def run_controller(
    env: EnvOption,
    temporal_address: AddressOption = DEFAULT_TEMPORAL_ADDRESS,
    namespace: NamespaceOption = "default",
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
    tls_ca: TlsCaOption = None,
    simulator_url: Annotated[str | None, typer.Option(help="Simulated fleet HTTP API (observer and actuator).")] = None,
    prometheus_url: Annotated[
        str | None, typer.Option(envvar=ENV_PROMETHEUS_URL, help="Prometheus to observe the fleet from.")
    ] = None,
    kube_contexts: Annotated[list[str] | None, typer.Option(help="REGION=CONTEXT to act on (repeat).")] = None,
    metrics_port: Annotated[int, typer.Option(help="Port of the controller's own /metrics.")] = 9464,
    metrics_address: Annotated[
        str,
        typer.Option(
            envvar=ENV_METRICS_ADDRESS,
            help="Address /metrics binds to: 127.0.0.1 on a laptop; 0.0.0.0 in a pod, so Prometheus can scrape it.",
        ),
    ] = "127.0.0.1",
    audit_dir: Annotated[Path | None, typer.Option(help="Write each workflow's audit records here (JSONL).")] = None,
    task_queue: TaskQueueOption = None,
    control_loop: Annotated[
        bool, typer.Option(help="Keep the control loop running: start it, and start it again whenever it is gone.")
    ] = True,
    steering_file: Annotated[
        Path | None,
        typer.Option(
            help="Durable steering state (weights, node targets, region leases) and change journal; "
            "every worker of the environment must share it. Default: .edgeplane/steering-<env>.json."
        ),
    ] = None,
    create_steering_file: Annotated[
        bool,
        typer.Option(
            "--create-steering-file",
            help="Create the steering file if it does not exist (the environment's first start); without it a "
            "missing file is an error, so a mistyped path never starts a worker that knows no leases.",
        ),
    ] = False,
    tick_seconds: Annotated[
        float | None,
        typer.Option(min=0.1, max=3600, help="Control loop period when this worker starts it (default: the spec's)."),
    ] = None,
    steering_configmap: Annotated[
        str | None,
        typer.Option(
            help="Keep the steering state in this ConfigMap instead of a file: CONTEXT/NAMESPACE/NAME (CONTEXT "
            "`in-cluster` inside a pod). Every controller replica shares it; takes precedence over --steering-file."
        ),
    ] = None,
    actuate: ActuateOption = None,
    route53_zone_id: Route53ZoneOption = None,
    media_domain: MediaDomainOption = None,
    eks_node_group: NodeGroupOption = None,
    aws_endpoint_url: AwsEndpointOption = None,
    media_workload_kind: MediaWorkloadKindOption = "Deployment",
    demand_history_days: DemandHistoryDaysOption = 8.0,
) -> None:
    """Run the environment's Temporal worker until SIGTERM."""
    spec = load_spec_or_exit(env)
    try:
        fleet = fleet_settings(
            simulator_url, prometheus_url, kube_contexts, actuate, route53_zone_id, media_domain, eks_node_group,
            aws_endpoint_url, media_workload_kind, demand_history_days,
        )  # fmt: skip
        observer, actuator = build_fleet_adapters(spec, fleet)
        steering = (
            build_kubernetes_steering_authority(spec, actuator, steering_configmap)
            if steering_configmap
            else build_steering_authority(
                spec, actuator, steering_file or default_steering_file(spec.name), create=create_steering_file
            )
        )
    except BootstrapError as error:
        exit_with(ExitCode.INVALID_INPUT, str(error))
    registry = CollectorRegistry()
    metrics = ControllerMetrics(spec.name, registry, spec=spec)
    try:
        start_http_server(metrics_port, addr=metrics_address, registry=registry)
    except (OSError, ValueError) as error:
        exit_with(ExitCode.UNAVAILABLE, f"--metrics-address {metrics_address} --metrics-port {metrics_port}: {error}")
    activities = FleetActivities(spec, observer, steering, metrics=metrics, audit_dir=audit_dir)
    settings = temporal_settings(temporal_address, namespace, tls_cert, tls_key, tls_ca)
    run_with_temporal(
        _serve(
            spec,
            settings,
            activities,
            task_queue or task_queue_for(spec.name),
            control_loop,
            tick_seconds,
            qos_watch_url=prometheus_url,
        )
    )


async def _serve(
    spec: EnvironmentSpec,
    settings: TemporalSettings,
    activities: FleetActivities,
    task_queue: str,
    loop_on: bool,
    tick_seconds: float | None = None,
    qos_watch_url: str | None = None,
) -> None:
    client = await connect_or_exit(settings)
    stop = asyncio.Event()
    event_loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        event_loop.add_signal_handler(signum, stop.set)
    with ThreadPoolExecutor(max_workers=8) as executor:
        worker = build_worker(client, activities, task_queue=task_queue, executor=executor)
        async with worker:
            console.print(f"worker on task queue {task_queue} ({settings.address}); SIGTERM stops it", highlight=False)
            keeper = (
                asyncio.create_task(_keep_control_loop(client, spec, task_queue, tick_seconds)) if loop_on else None
            )
            watching = loop_on and qos_watch_url is not None
            watcher = asyncio.create_task(_watch_qos(client, spec, qos_watch_url or "")) if watching else None
            await stop.wait()
            for task in (keeper, watcher):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
    console.print("worker stopped", highlight=False)


async def _watch_qos(client: Client, spec: EnvironmentSpec, prometheus_url: str) -> None:
    """The fast health path (issue 17): a QoS breach wakes the control loop at once, not at its next tick."""
    from controller.adapters.qos_watcher import QosWatcher

    handle = client.get_workflow_handle(control_loop_id(spec.name))

    async def wake(reason: str) -> None:
        await handle.signal(ControlLoopWorkflow.wake, WakeRequest(reason=reason[:2000]))

    await QosWatcher(prometheus_url, spec, wake).run()


LOOP_WATCH_SECONDS = 10.0
"""How often a worker checks that its environment's control loop exists (and starts it if not)."""


async def _keep_control_loop(
    client: Client, spec: EnvironmentSpec, task_queue: str, tick_seconds: float | None = None
) -> None:
    """The control loop exists all the time a worker runs, not only at its start: after a Temporal
    restart that lost its state, or a loop terminated by hand, the next check starts it again (it
    then plans from the durable steering state, leases included). Idempotent by workflow id."""
    run_id: str | None = None
    while True:
        try:
            handle = await ensure_control_loop(client, spec, task_queue=task_queue, tick_seconds=tick_seconds)
        except RPCError as error:  # Temporal unreachable for now: the worker itself reconnects
            console.print(f"control loop check failed: {error.message}", highlight=False)
        else:
            started = handle.result_run_id or handle.run_id
            if started != run_id:
                verb = "running" if run_id is None else "started again (the previous run was gone)"
                console.print(f"control loop {handle.id} {verb}: run {started}", highlight=False)
                run_id = started
        await asyncio.sleep(LOOP_WATCH_SECONDS)


# ----- the business's calendar: announced demand events -------------------------------------------

MarketOption = Annotated[str, typer.Option("--market", help="Market code from the environment file, e.g. ID.")]
StartOption = Annotated[
    str, typer.Option("--start", help="When the ramp begins, ISO 8601 with a timezone, e.g. 2026-11-26T05:00:00Z.")
]
JsonOutputOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
# DemandEvent field -> the option that sets it, so a rejected value names what the user typed.
EVENT_OPTIONS = {
    "market": "--market",
    "start": "--start",
    "peak_multiplier": "--multiplier",
    "ramp_seconds": "--ramp-minutes",
    "duration_seconds": "--duration-minutes",
}


def known_market_or_exit(spec: EnvironmentSpec, env: Path, market: str) -> None:
    if market not in spec.market_by_code:
        known = ", ".join(spec.market_by_code)
        exit_with(ExitCode.INVALID_INPUT, f"{env}: --market: unknown market {market!r} (known: {known})")


def parse_start_or_exit(value: str) -> datetime:
    """`2026-11-26T05:00:00Z` or `...+07:00`; a time without a timezone is ambiguous, so refused."""
    try:
        start = datetime.fromisoformat(value)
    except ValueError:
        exit_with(ExitCode.INVALID_INPUT, f"--start: {value!r} is not an ISO 8601 time (e.g. 2026-11-26T05:00:00Z)")
    if start.tzinfo is None or start.utcoffset() is None:
        exit_with(ExitCode.INVALID_INPUT, f"--start: {value!r} has no timezone (add Z or an offset such as +07:00)")
    return start


def demand_event_or_exit(
    market: str, start: datetime, multiplier: float, ramp_minutes: float, duration_minutes: float
) -> DemandEvent:
    try:
        return DemandEvent(
            market=market,
            start=start,
            peak_multiplier=multiplier,
            ramp_seconds=ramp_minutes * 60,
            duration_seconds=duration_minutes * 60,
        )
    except ValidationError as error:
        reasons = [
            f"{EVENT_OPTIONS.get(str(detail['loc'][0]), detail['loc'][0]) if detail['loc'] else 'event'}: "
            f"{detail['msg']}"
            for detail in error.errors(include_url=False)
        ]
        exit_with(ExitCode.INVALID_INPUT, "\n".join(reasons))


async def execute_loop_update(client: Client, environment: str, update: Any, request: BaseModel) -> Acknowledgement:
    """Send an update to the environment's control loop; a refusal or a missing loop exits 3."""
    handle = client.get_workflow_handle(control_loop_id(environment))
    try:
        ack: Acknowledgement = await handle.execute_update(update, request)
    except WorkflowUpdateFailedError as error:
        exit_with(ExitCode.REFUSED, f"refused: {error.cause or error}")
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            exit_with(ExitCode.REFUSED, f"{handle.id} is not running (start it with `edgectl controller run`)")
        exit_with(ExitCode.REFUSED, f"{handle.id}: {error.message}")
    return ack


def print_acknowledgement(environment: str, ack: Acknowledgement, json_output: bool, **extra: Any) -> None:
    if json_output:
        print_json({"workflow_id": control_loop_id(environment), **ack.model_dump(mode="json"), **extra})
    else:
        say(f"{control_loop_id(environment)}: {ack.message}")


@controller_app.command("announce")
def announce(
    env: EnvOption,
    market: MarketOption,
    start: StartOption,
    multiplier: Annotated[float, typer.Option("--multiplier", help="Peak demand multiplier (3 = 3x normal).")],
    duration_minutes: Annotated[
        float, typer.Option("--duration-minutes", help="Minutes from --start until the ramp down begins.")
    ],
    ramp_minutes: Annotated[
        float, typer.Option("--ramp-minutes", help="Minutes to reach the peak (and to leave it).")
    ] = 10,
    by: ByOption = None,
    reason: ReasonOption = "",
    json_output: JsonOutputOption = False,
    temporal_address: AddressOption = DEFAULT_TEMPORAL_ADDRESS,
    namespace: NamespaceOption = "default",
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
    tls_ca: TlsCaOption = None,
) -> None:
    """Announce a scheduled demand event (a flash sale): the controller scales up before its ramp.

    An event of the same market and start replaces the one announced before.
    """
    spec = load_spec_or_exit(env)
    known_market_or_exit(spec, env, market)
    event = demand_event_or_exit(market, parse_start_or_exit(start), multiplier, ramp_minutes, duration_minutes)
    request = AnnounceDemandRequest(event=event, by=actor(by), reason=reason)

    async def go() -> None:
        client = await connect_or_exit(temporal_settings(temporal_address, namespace, tls_cert, tls_key, tls_ca))
        ack = await execute_loop_update(client, spec.name, ControlLoopWorkflow.announce_demand_event, request)
        print_acknowledgement(spec.name, ack, json_output, event=event.model_dump(mode="json"))

    run_with_temporal(go())


@controller_app.command("withdraw")
def withdraw(
    env: EnvOption,
    market: MarketOption,
    start: StartOption,
    by: ByOption = None,
    reason: ReasonOption = "",
    json_output: JsonOutputOption = False,
    temporal_address: AddressOption = DEFAULT_TEMPORAL_ADDRESS,
    namespace: NamespaceOption = "default",
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
    tls_ca: TlsCaOption = None,
) -> None:
    """Withdraw an announced demand event (named by market and start): its capacity is no longer ordered."""
    spec = load_spec_or_exit(env)
    known_market_or_exit(spec, env, market)
    request = WithdrawDemandRequest(market=market, start=parse_start_or_exit(start), by=actor(by), reason=reason)

    async def go() -> None:
        client = await connect_or_exit(temporal_settings(temporal_address, namespace, tls_cert, tls_key, tls_ca))
        ack = await execute_loop_update(client, spec.name, ControlLoopWorkflow.withdraw_demand_event, request)
        print_acknowledgement(spec.name, ack, json_output)

    run_with_temporal(go())
