"""`edgectl plan`: what the controller would decide for a snapshot, as a dry run (nothing is changed).

Reads an environment file, a FleetSnapshot JSON (e.g. saved by the observer or the simulator) and
optionally the previous Plan JSON (for debounce counters, cooldowns and weights in force), calls
the pure core (`controller.core.planner.make_plan`) and prints the plan: region states, weight
changes, scale, undrain and drain commands, unserved demand, the cross-border sessions per market pair
(each side's regions, why, the per-participant certificate), and why. `--json` prints the Plan itself.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table

from controller.core.planner import make_plan
from controller.core.residency_certificate import verify_residency
from controller.plan import Plan, PlanningOverrides, RegionPin, RegionState
from controller.snapshot import SANE_TIME_WINDOW, FleetSnapshot
from controller.spec import EnvironmentSpec
from controller.spec_file import EnvironmentFileError, load_environment
from edgectl.cli.input_files import InputFileError, load_model_file
from edgectl.cli.output import console, print_json


def parse_pins(values: list[str]) -> list[RegionPin]:
    """`fra=0` -> RegionPin(region="fra", max_traffic_share=0); raises typer.BadParameter."""
    pins = []
    for value in values:
        region, sep, share = value.partition("=")
        try:
            cap = float(share)
        except ValueError:
            cap = -1.0
        if not sep or not region or not 0.0 <= cap <= 1.0:
            raise typer.BadParameter(f"{value!r}: expected REGION=SHARE with SHARE in 0..1", param_hint="--pin")
        pins.append(RegionPin(region=region, max_traffic_share=cap, owner="edgectl-plan", reason="dry-run pin"))
    return pins


def parse_now(text: str) -> tuple[datetime | None, str]:
    """`--now` as an aware time inside the plausible window, or the reason it is not one."""
    try:
        now = datetime.fromisoformat(text)
    except ValueError:
        return None, f"--now: {text!r} is not an ISO 8601 time"
    if now.tzinfo is None or now.utcoffset() is None:
        return None, f"--now: {text!r} needs a timezone (e.g. +00:00)"
    start, end = SANE_TIME_WINDOW
    if not start <= now < end:
        return None, f"--now: {text!r} is outside the plausible window {start.date()} .. {end.date()}"
    return now, ""


def plan_command(
    env: Path = typer.Option(..., "--env", help="Environment file (environments/<env>.yaml)."),
    snapshot_path: Path = typer.Option(..., "--snapshot", help="FleetSnapshot JSON."),
    previous_path: Path | None = typer.Option(None, "--previous", help="Previous Plan JSON (counters, cooldowns)."),
    pin: list[str] = typer.Option([], "--pin", help="Dry-run pin REGION=SHARE (0 = evacuate); repeatable."),
    now_text: str | None = typer.Option(None, "--now", help="Decision time (ISO 8601); default: the snapshot's time."),
    as_json: bool = typer.Option(False, "--json", help="Print the Plan as JSON."),
) -> None:
    """Dry run: print what the controller would do for this snapshot. Changes nothing."""
    problems: list[str] = []
    spec: EnvironmentSpec | None = None
    try:
        spec = load_environment(env)
    except EnvironmentFileError as error:
        problems.extend(str(p) for p in error.problems)
    snapshot = previous = None
    # Checked against the spec (environment, plausible sizes) when the spec itself is readable.
    context = {"spec": spec} if spec is not None else None
    try:
        snapshot = load_model_file(snapshot_path, FleetSnapshot, context)
    except InputFileError as error:
        problems.extend(error.lines)
    if previous_path is not None:
        try:
            previous = load_model_file(previous_path, Plan)
        except InputFileError as error:
            problems.extend(error.lines)
    pins = parse_pins(pin)
    now = None
    if now_text is not None:
        now, problem = parse_now(now_text)
        if problem:
            problems.append(problem)
    if problems or snapshot is None or spec is None:
        raise InputFileError(problems)
    if previous is not None and previous_path is not None:
        # The previous plan seeds counters, cooldowns and weights in force: a forged or foreign one
        # (certificate edited, plan edited, another spec) would plan from a lie.
        forged = verify_residency(spec, previous)
        if forged:
            raise InputFileError([f"{previous_path}: {problem}" for problem in forged])
    unknown_pins = [p.region for p in pins if p.region not in spec.region_by_name]
    if unknown_pins:
        raise InputFileError(
            [f"--pin: unknown region(s) {', '.join(unknown_pins)} (known: {', '.join(spec.region_by_name)})"]
        )

    plan = make_plan(spec, snapshot, previous, now or snapshot.taken_at, PlanningOverrides(pins=pins) if pins else None)
    if as_json:
        print_json(plan)
        return
    print_plan_summary(plan, snapshot)


def print_plan_summary(plan: Plan, snapshot: FleetSnapshot) -> None:
    """The human view: states, weight changes, commands, unserved and overflow, then the reasons."""
    console.print(f"[bold]plan {plan.plan_id}[/bold] (dry run, nothing applied)", highlight=False)
    if plan.fail_static:
        console.print("[bold red]FAIL STATIC[/bold red]: metrics stale, weights kept, no scale-in")

    states = Table(title="regions", title_justify="left")
    for column in ("region", "state", "nodes now", "nodes planned", "sessions planned", "reason"):
        states.add_column(column)
    scale = {c.region: c for c in plan.scale}
    colours = {
        RegionState.HEALTHY: "green",
        RegionState.DEGRADED: "yellow",
        RegionState.FAILED: "red",
        RegionState.UNKNOWN: "magenta",
    }
    for health in plan.region_health:
        command = scale.get(health.region)
        states.add_row(
            health.region,
            f"[{colours[health.state]}]{health.state.value}[/]",
            str(command.current_nodes) if command else "-",
            str(command.desired_nodes) if command else "-",
            f"{plan.region_sessions.get(health.region, 0.0):,.0f}",
            health.reason,
        )
    console.print(states)

    current = snapshot.current_weights
    changes = Table(title="weights (market: region share, before -> after)", title_justify="left")
    changes.add_column("market")
    changes.add_column("weights")
    for market, weights in plan.weights.items():
        before = current.get(market, {})
        cells = []
        for region in sorted(set(before) | set(weights)):
            old, new = before.get(region, 0.0), weights.get(region, 0.0)
            if abs(old - new) > 0.0005:
                cells.append(f"{region} {old:.2f}->[bold]{new:.2f}[/bold]")
            elif new > 0:
                cells.append(f"{region} {new:.2f}")
        changes.add_row(market, ", ".join(cells) or "(none)")
    console.print(changes)

    # Undrains first, in the order they are applied: the region's desired count above includes them.
    for undrain in plan.undrains:
        console.print(
            f"undrain {undrain.region}/{undrain.node} (back in service): {undrain.reason}",
            markup=False,
            highlight=False,
        )
    for drain in plan.drains:
        console.print(
            f"drain {drain.region}/{drain.node} by {drain.deadline.isoformat()}: {drain.reason}",
            markup=False,
            highlight=False,
        )
    for unserved in plan.unserved:
        console.print(f"[bold red]UNSERVED[/bold red] {unserved.market}: {unserved.sessions:,.0f} sessions: ", end="")
        console.print(unserved.reason, markup=False, highlight=False)
    for overflow in plan.overflow:
        console.print(
            f"[bold yellow]OVERFLOW[/bold yellow] {overflow.region}: {overflow.sessions:,.0f} sessions: ", end=""
        )
        console.print(overflow.reason, markup=False, highlight=False)
    if plan.cross_border is not None:
        print_cross_border(plan)
    console.print("[bold]why[/bold]")
    for sentence in plan.explanation:
        console.print(f"  - {sentence}", markup=False, highlight=False)


def print_cross_border(plan: Plan) -> None:
    """Per market pair: where the host's and the guest's media terminate, what is unserved, and why."""
    cross = plan.cross_border
    if cross is None:
        return
    table = Table(title="cross-border sessions (host -> guest market)", title_justify="left")
    for column in ("pair", "host side", "guest side", "sessions", "cascaded", "unserved", "why"):
        table.add_column(column)
    for pair in cross.pairs:
        cascaded = sum(p.sessions for p in pair.placements if p.cascaded)
        table.add_row(
            f"{pair.host}->{pair.guest}",
            ", ".join(sorted({p.host_region for p in pair.placements})) or "-",
            ", ".join(sorted({p.guest_region for p in pair.placements})) or "-",
            f"{pair.demand_sessions:,.0f}",
            f"{cascaded:,.0f}",
            f"[bold red]{pair.unserved_sessions:,.0f}[/bold red]" if pair.unserved_sessions > 0 else "0",
            " | ".join(pair.why),
        )
    console.print(table)
    proven = "every participant within its own jurisdictions" if cross.compliant else "[bold red]NOT compliant[/]"
    failed = ", ".join(f"{a}-{b}" for a, b in cross.failed_links)
    console.print(f"cross-border certificate: {len(cross.certificate)} participant proofs, {proven}", highlight=False)
    if failed:
        console.print(f"[bold yellow]backbone failed[/bold yellow]: {failed}", highlight=False)
