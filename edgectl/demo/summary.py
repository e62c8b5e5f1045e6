"""The demo's verdicts in words: the summary rows shared by the console table and report.md.

One row per measured claim (what, measured, verdict), from `DemoMeasurements`
(`edgectl/demo/measurements.py`); "FAIL" marks a claim the run did not meet. When the fleet placed
its sessions through the region selector (the local stack does), the traffic shift is stated from
the sessions the selector's answers placed, with the controller's first weight change beside it.
Used by `edgectl/demo/report.py` (report.md) and `edgectl demo` (the console table).
"""

from __future__ import annotations

from rich.table import Table

from edgectl.demo.measurements import DemoMeasurements, SelectorShiftMeasurement, ShiftMeasurement


def _fmt(value: float | None, unit: str = "s", digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:.{digits}f} {unit}".strip()


def _goal_verdict(steered_seconds: float | None, within: bool | None, goal_seconds: float, speed: float) -> str:
    if steered_seconds is None:
        return "FAIL"
    verdict = f"{'meets' if within else 'misses'} the goal ({goal_seconds:.0f} fleet s)"
    if speed != 1 and not within:
        verdict += f"; at x{speed:g} a controller tick spans {speed:g}x its fleet seconds: see bench fast_shift (x1)"
    return verdict


def _selector_shift_rows(
    selector: SelectorShiftMeasurement, shift: ShiftMeasurement, speed: float
) -> list[tuple[str, str, str]]:
    """The shift as clients met it: new sessions the selector's answers placed (the stack's steering path)."""
    markets = "/".join(selector.markets)
    first = (
        "no shift seen" if not selector.shifted else _fmt(selector.first_shift_sim_seconds, unit="fleet s", digits=1)
    )
    steered = (
        "not within the impairment"
        if selector.steered_away_sim_seconds is None
        else _fmt(selector.steered_away_sim_seconds, unit="fleet s", digits=1)
    )

    def share(value: float | None, sessions: int) -> str:
        return "no sessions" if value is None else f"{value:.0%} of {sessions:,}"

    controller = "no weight change seen"
    if shift.shifted:
        controller = _fmt(shift.first_shift_sim_seconds, unit="fleet s", digits=1)
    return [
        (
            f"impairment of {selector.region} -> first shift of new sessions (selector's answers)",
            first,
            "" if selector.shifted else "FAIL",
        ),
        (
            f"{selector.region} -> 90% of new sessions elsewhere (selector's answers)",
            steered,
            _goal_verdict(selector.steered_away_sim_seconds, selector.within_goal, selector.goal_fleet_seconds, speed),
        ),
        (
            f"{markets} new sessions the selector sent off {selector.region} while impaired",
            f"{share(selector.share_elsewhere_during, selector.sessions_during)}"
            f" (before: {share(selector.share_elsewhere_before, selector.sessions_before)};"
            f" regions {', '.join(selector.regions_during) or 'none'})",
            ""
            if selector.fallback_sessions_during == 0
            else f"{selector.fallback_sessions_during:.0f} placed without the selector (fallback)",
        ),
        (f"controller's first weight change off {shift.region} (actuation log)", controller, ""),
    ]


def _weights_shift_rows(shift: ShiftMeasurement, speed: float) -> list[tuple[str, str, str]]:
    """The shift in the weights the fleet placed by (a recording without the selector)."""
    rows: list[tuple[str, str, str]] = []
    if shift.shifted:
        measured = _fmt(shift.first_shift_sim_seconds, unit="fleet s", digits=1)
        if speed != 1:
            measured += f" ({_fmt(shift.first_shift_wall_seconds, digits=1)} wall at x{speed:g}, not comparable)"
    else:
        measured = "no shift seen"
    rows.append(
        (f"impairment of {shift.region} -> first shift of new sessions", measured, "" if shift.shifted else "FAIL")
    )
    if shift.steered_away_sim_seconds is None:
        steered, goal = "not within the impairment", "FAIL"
    else:
        steered = _fmt(shift.steered_away_sim_seconds, unit="fleet s", digits=1)
        met = "meets" if shift.within_goal else "misses"
        goal = f"{met} the goal ({shift.goal_fleet_seconds:.0f} fleet s)"
        if speed != 1 and not shift.within_goal:
            goal += f"; at x{speed:g} a controller tick spans {speed:g}x its fleet seconds: see bench fast_shift (x1)"
    rows.append((f"{shift.region} -> 90% of new sessions elsewhere", steered, goal))
    return rows


def summary_rows(measurements: DemoMeasurements, speed: float) -> list[tuple[str, str, str]]:
    """(what, measured, verdict) rows shared by the console table and report.md."""
    shift, scale, residency, drill = (
        measurements.shift,
        measurements.scale_out,
        measurements.residency,
        measurements.drill,
    )
    rows: list[tuple[str, str, str]] = []
    # Every timing is in fleet seconds and judged against issue 17's goal in fleet seconds; the wall
    # time of an accelerated run is shown for orientation only, never against a target.
    if measurements.selector_shift is not None:
        rows += _selector_shift_rows(measurements.selector_shift, shift, speed)
    else:
        rows += _weights_shift_rows(shift, speed)
    if shift.lowest_share is not None:
        rows.append((f"lowest {'/'.join(shift.markets)} share on {shift.region}", f"{shift.lowest_share:.0%}", ""))
    rows.append(
        (
            f"recovery of {shift.region} -> traffic back",
            "not back" if shift.return_sim_seconds is None else f"{_fmt(shift.return_sim_seconds)} simulated",
            "",
        )
    )
    if scale is None:
        rows.append(("flash sale scale-out", "not measured", "FAIL"))
    else:
        lead = scale.min_lead_sim_seconds
        rows.append(
            (
                f"flash sale {scale.market}: {scale.region} nodes",
                f"{scale.nodes_before} -> {scale.peak_desired_nodes} (peak demand {scale.peak_demand:.0f},"
                f" peak ready capacity {scale.peak_ready_capacity})",
                "",
            )
        )
        rows.append(
            (
                "capacity lead over demand (worst)",
                "demand never exceeded the old capacity" if not scale.needed_scale_out else _fmt(lead) + " simulated",
                "ahead of saturation" if scale.ahead_of_saturation else "FAIL",
            )
        )
        if scale.rejected_sessions_in_window is not None:
            rows.append(("sessions rejected for capacity during the sale",
                         f"{scale.rejected_sessions_in_window:.0f}", ""))  # fmt: skip
    rows.append(
        (
            "residency violations (counted by the simulator)",
            "n/a" if residency.violations_counted_by_simulator is None
            else f"{residency.violations_counted_by_simulator:.0f}",
            "ok" if residency.violations_counted_by_simulator == 0 else "FAIL",
        )
    )  # fmt: skip
    rows.append(("weights outside allowed regions (sampled)", str(residency.weight_violations),
                 "ok" if residency.weight_violations == 0 else "FAIL"))  # fmt: skip
    rows.append(
        (
            f"drill of {drill.region}",
            "scorecard returned" if drill.has_scorecard else f"no scorecard (exit {drill.exit_code})",
            "ok" if drill.has_scorecard and drill.exit_code == 0 else "FAIL",
        )
    )
    rows.append(("scenario wall time", f"{measurements.wall_seconds_total:.0f} s", ""))
    return rows


def summary_table(measurements: DemoMeasurements, speed: float) -> Table:
    table = Table(title="edgeplane demo: measured", show_lines=False)
    table.add_column("what")
    table.add_column("measured")
    table.add_column("verdict")
    for what, measured, verdict in summary_rows(measurements, speed):
        style = "red" if "FAIL" in verdict else ("green" if verdict else "")
        table.add_row(what, measured, verdict, style=style)
    return table
