"""`edgectl sim serve|snapshot|run|traces`: the simulated fleet from the user's side.

`serve` runs `sim.http_api.SimulatorServer` in real time (what `edgectl dev up` starts);
`snapshot` prints the FleetSnapshot the decision core would see at a UTC time of day; `run` drives
the fleet in fast-forward with one policy (`sim.benchmark.run_policy`) and prints the referee's
numbers (`--trace NAME` for a shipped scenario, `--trace-file PATH` for anyone's own, in the same
YAML format: `sim/traces/*.yaml`, or `python -m sim.traces.generator`). Exit codes: 1 bad
file/trace/argument, 4 the edgeplane policy's core is unavailable.
"""

from __future__ import annotations

import signal
import sys
import threading
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from types import FrameType

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from controller.spec import EnvironmentSpec
from controller.spec_file import EnvironmentFileError, load_environment
from edgectl.cli.exit_codes import ExitCode
from edgectl.cli.output import error_console, fail, print_json, say
from sim.benchmark import apply_plan, run_policy
from sim.fleet import CrossMarketFlows, SimulatedFleet
from sim.http_api import SimulatorServer
from sim.policies import POLICY_NAMES, PolicyUnavailableError
from sim.policies.reactive import ReactivePolicy
from sim.selector_guest_placement import SelectorGuestPlacement
from sim.selector_placement import SelectorPlacement
from sim.traces import (
    Trace,
    TraceFileError,
    UnknownTraceError,
    available_traces,
    load_trace,
    load_trace_file,
    quiet_trace,
)

sim_app = typer.Typer(
    help="The simulated edge fleet: serve it, look at it, benchmark policies on it.", no_args_is_help=True
)

QUIET_DAYS = 30
WARM_UP = timedelta(hours=1)


def _spec(path: Path) -> EnvironmentSpec:
    try:
        return load_environment(path)
    except EnvironmentFileError as error:
        for problem in error.problems:
            fail(str(problem))
        raise typer.Exit(ExitCode.INVALID_INPUT) from None


def _trace(name: str | None, start: datetime) -> Trace:
    if name is None:
        return quiet_trace(start, QUIET_DAYS * 86_400)
    try:
        return load_trace(name)
    except (UnknownTraceError, ValueError) as error:
        fail(str(error))
        raise typer.Exit(ExitCode.INVALID_INPUT) from None


def _start(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"--start: not an ISO 8601 time: {value!r}")
        raise typer.Exit(ExitCode.INVALID_INPUT) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _trace_file(path: Path) -> Trace:
    """A trace file from anywhere; a bad one is `FILE: field: reason` and exit 1, never a traceback."""
    if not path.is_file():
        fail(f"{path}: no such file")
        raise typer.Exit(ExitCode.INVALID_INPUT)
    try:
        return load_trace_file(path)
    except (TraceFileError, OSError, UnicodeDecodeError) as error:
        fail(str(error) if isinstance(error, TraceFileError) else f"{path}: cannot read: {error}")
        raise typer.Exit(ExitCode.INVALID_INPUT) from None


@sim_app.command("serve")
def serve(
    env: Path = typer.Option(..., "--env", help="Environment file."),
    speed: float = typer.Option(1.0, "--speed", min=0.001, help="Simulated seconds per wall second."),
    port: int = typer.Option(0, "--port", min=0, max=65535, help="Port on 127.0.0.1 (0: a free one)."),
    trace: str | None = typer.Option(None, "--trace", help=f"Scenario ({', '.join(available_traces())})."),
    seed: int = typer.Option(0, "--seed", help="Seed of the fleet."),
    start: str | None = typer.Option(None, "--start", help="Simulated start, ISO 8601 (default: the trace's, or now)."),
    selector_url: str | None = typer.Option(
        None,
        "--selector-url",
        help="Region selector (edgectl selector serve) that places every new session; without it the "
        "fleet places them by the traffic weights the controller sets.",
    ),
) -> None:
    """Serve the fleet in real time: /metrics for Prometheus and the /v1 actuation API. Ctrl-C stops it."""
    spec = _spec(env)
    begin = _start(start)
    chosen = _trace(trace, begin or datetime.now(UTC).replace(microsecond=0))
    placement = None
    if selector_url is not None:
        if not selector_url.startswith(("http://", "https://")):
            fail(f"--selector-url: {selector_url!r}: expected an http(s) URL")
            raise typer.Exit(ExitCode.INVALID_INPUT)
        placement = SelectorPlacement(spec, selector_url, session_prefix=f"sim{seed}-")
    guests = None
    flows = CrossMarketFlows.from_spec(spec, [m.code for m in spec.markets], list(spec.scenarios))
    if selector_url is not None and flows is not None:
        # Each cross-market session's guest side: the selector's per-participant answer, near the host's region.
        guests = SelectorGuestPlacement(spec, flows, selector_url, session_prefix=f"sim{seed}-guest-")
    try:
        fleet = SimulatedFleet(spec, chosen, seed=seed, start=begin, region_placement=placement, guest_placement=guests)
        server = SimulatorServer(fleet, port=port, speed=speed)
    except OSError as error:
        fail(f"cannot listen on 127.0.0.1:{port}: {error}")
        raise typer.Exit(ExitCode.UNAVAILABLE) from None
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    server.start()
    say(server.url)
    say(
        f"simulated fleet {spec.name} ({chosen.name}@{chosen.version}, seed {seed}) at {server.fleet.now.isoformat()}, "
        f"speed {speed:g}x; metrics at {server.url}/metrics; new sessions placed by "
        + (f"the region selector at {selector_url}" if selector_url else "the traffic weights")
    )
    sys.stdout.flush()
    while not stop.wait(0.5):
        pass
    server.stop()
    if placement is not None:
        placement.close()
    say("simulator stopped")


@sim_app.command("snapshot")
def snapshot(
    env: Path = typer.Option(..., "--env", help="Environment file."),
    at: str = typer.Option(..., "--at", help="UTC time of day, HH:MM."),
    trace: str | None = typer.Option(None, "--trace", help="Scenario (its first day is used)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the fleet."),
    as_json: bool = typer.Option(False, "--json", help="Print the FleetSnapshot as JSON."),
) -> None:
    """The FleetSnapshot at HH:MM UTC, after one hour of fast-forward warm-up under the reactive baseline."""
    spec = _spec(env)
    try:
        clock = time.fromisoformat(at)
    except ValueError:
        fail(f"--at: expected HH:MM, got {at!r}")
        raise typer.Exit(ExitCode.INVALID_INPUT) from None
    chosen = _trace(trace, datetime(2026, 11, 9, tzinfo=UTC))
    target = datetime.combine(chosen.start.date(), clock, tzinfo=UTC)
    fleet = SimulatedFleet(spec, chosen, seed=seed, start=target - WARM_UP)
    policy = ReactivePolicy(spec)
    previous = None
    while fleet.now < target:
        observed = fleet.snapshot()
        previous = policy.decide(spec, observed, previous, fleet.now)
        apply_plan(fleet, previous, observed, actor="edgectl sim snapshot")
        fleet.advance(min(spec.traffic.tick_seconds, (target - fleet.now).total_seconds()))
    result = fleet.snapshot()
    if as_json:
        print_json(result)
        return
    say(f"{spec.name} at {result.taken_at.isoformat()} (trace {chosen.name})")
    for region in result.regions:
        say(
            f"  {region.region:<6} desired {region.desired_nodes:>4}  ready {region.ready_nodes:>4}  "
            f"booting {region.booting_nodes:>3}  draining {region.draining_nodes:>3}  "
            f"sessions {region.active_sessions:>7} / {region.ready_capacity}"
        )
    for market in result.markets:
        say(
            f"  {market.market}: offered {market.offered_sessions:,.0f}  -> {result.current_weights.get(market.market)}"
        )


@sim_app.command("run")
def run(
    env: Path = typer.Option(..., "--env", help="Environment file."),
    trace: str | None = typer.Option(None, "--trace", help=f"Scenario ({', '.join(available_traces())})."),
    trace_file: Path | None = typer.Option(
        None, "--trace-file", help="A trace YAML file of your own (the format of sim/traces/*.yaml)."
    ),
    policy: str = typer.Option(..., "--policy", help=f"One of {', '.join(POLICY_NAMES)}."),
    seed: int = typer.Option(0, "--seed", help="Seed of the fleet."),
    hours: float | None = typer.Option(
        None, "--hours", min=0.01, help="Stop after this many hours (default: whole trace)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Run the trace in fast-forward with one policy deciding every tick; print cost and service numbers."""
    spec = _spec(env)
    if policy not in POLICY_NAMES:
        fail(f"--policy: unknown policy {policy!r} (known: {', '.join(POLICY_NAMES)})")
        raise typer.Exit(ExitCode.INVALID_INPUT)
    if (trace is None) == (trace_file is None):
        fail("give exactly one of --trace NAME or --trace-file PATH")
        raise typer.Exit(ExitCode.INVALID_INPUT)
    chosen = _trace_file(trace_file) if trace_file is not None else _trace(trace, datetime(2026, 11, 9, tzinfo=UTC))
    _check_trace_names(spec, chosen, trace_file)
    end = chosen.start + timedelta(hours=hours) if hours is not None else None
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=error_console) as bar:
        task = bar.add_task(f"{policy} on {spec.name} over {chosen.name}", total=1.0)
        try:
            result = run_policy(
                spec, chosen, policy, seed, end=end, progress=lambda done: bar.update(task, completed=done)
            )
        except PolicyUnavailableError as error:
            bar.stop()
            fail(str(error))
            raise typer.Exit(ExitCode.UNAVAILABLE) from None
        bar.update(task, completed=1.0)
    if as_json:
        print_json(result.model_dump(mode="json", exclude={"accounting"}))
        return
    say(f"{result.policy} on {result.environment} over {result.trace} (seed {seed}, {result.simulated_days:.2f} days)")
    for label, value in (
        ("node_hours", result.node_hours),
        ("capacity_slo_session_minutes", result.capacity_slo_session_minutes),
        ("qos_slo_session_minutes", result.qos_slo_session_minutes),
        ("dropped_sessions", result.dropped_sessions),
        ("residency_violations", result.residency_violations),
        ("unserved_session_minutes", result.unserved_session_minutes),
        ("wall_seconds", result.wall_seconds),
    ):
        say(f"  {label:<30} {value:>14,.1f}")


def _check_trace_names(spec: EnvironmentSpec, trace: Trace, path: Path | None) -> None:
    """Every market and region the trace names exists in the environment (else FILE: field: reason)."""
    where = str(path) if path is not None else f"trace {trace.name}"
    for i, event in enumerate(trace.events):
        if event.market not in spec.market_by_code:
            fail(f"{where}: events.{i}.market: {event.market!r} is not a market of environment {spec.name!r}")
            raise typer.Exit(ExitCode.INVALID_INPUT)
    for i, impairment in enumerate(trace.impairments):
        if impairment.region not in spec.region_by_name:
            fail(f"{where}: impairments.{i}.region: {impairment.region!r} is not a region of environment {spec.name!r}")
            raise typer.Exit(ExitCode.INVALID_INPUT)
        if impairment.market is not None and impairment.market not in spec.market_by_code:
            fail(f"{where}: impairments.{i}.market: {impairment.market!r} is not a market of environment {spec.name!r}")
            raise typer.Exit(ExitCode.INVALID_INPUT)


@sim_app.command("traces")
def traces() -> None:
    """List the named scenarios."""
    for name in available_traces():
        loaded = load_trace(name)
        say(f"{name}@{loaded.version}: {loaded.description}")
