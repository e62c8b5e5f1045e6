"""The demo report: `report.md` and PNG charts drawn from a recorded run.

Input: a `DemoRecording` (`edgectl/demo/recording.py`), its `DemoMeasurements`
(`edgectl/demo/measurements.py`) and the EnvironmentSpec. Output, in the run's folder
(`reports/demo-<timestamp>/`): `weights.png` (traffic share per region for each market),
`nodes_vs_demand.png` (ready capacity, desired nodes and routed demand per region),
`qos.png` (worst path RTT and loss per region with the SLO lines), `drill.png` (the drilled
region's share and the drill's phases), and `report.md` that links them. Also the short console
summary table. Called by `edgectl demo` (`edgectl/cli/dev_commands.py`) and the end-to-end test.
Charts use matplotlib's Agg backend: no display needed.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from controller.spec import EnvironmentSpec
from edgectl.demo.measurements import DemoMeasurements
from edgectl.demo.recording import DemoRecording, FleetSample
from edgectl.demo.summary import summary_rows

CHART_FILES = ("weights.png", "nodes_vs_demand.png", "qos.png", "drill.png")
REGION_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def _minutes(recording: DemoRecording, sample_time: datetime) -> float:
    """Simulated minutes since the simulated clock's start (x axis of every chart)."""
    return (sample_time - recording.settings.sim_start).total_seconds() / 60.0


def _shade_events(ax: Axes, recording: DemoRecording, *, lines_only: bool = False) -> None:
    """Shade the flash sale, the impairment and the drill on a chart (or mark their edges only)."""
    spans = [
        ("flash_sale_start", "flash_sale_end", "#ffd54f", "flash sale"),
        ("impairment_start", "impairment_end", "#ef9a9a", "impairment"),
        ("drill_start", "drill_end", "#b39ddb", "drill"),
    ]
    for start_kind, end_kind, colour, label in spans:
        starts, ends = recording.events_of(start_kind), recording.events_of(end_kind)
        if not starts or starts[0].sim_time is None:
            continue
        begin = _minutes(recording, starts[0].sim_time)
        finish = (
            _minutes(recording, ends[0].sim_time)
            if ends and ends[0].sim_time
            else _minutes(recording, recording.samples[-1].sim_time)
        )
        if lines_only:  # over a stack plot a shade would change the regions' colours
            ax.axvline(begin, color="black", lw=1.2, ls="--")
            ax.axvline(finish, color="black", lw=1.2, ls=":")
            ax.text(begin, 1.01, f" {label}", fontsize=7, va="bottom", transform=ax.get_xaxis_transform())
        else:
            ax.axvspan(begin, finish, color=colour, alpha=0.25, label=label, lw=0)


def _x_label(recording: DemoRecording) -> str:
    start = recording.settings.sim_start.strftime("%H:%M UTC")
    return f"simulated minutes since {start} (x{recording.settings.speed:g} real time)"


def chart_weights(recording: DemoRecording, spec: EnvironmentSpec, path: Path) -> None:
    markets = [m.code for m in spec.markets]
    regions = [r.name for r in spec.regions]
    fig, axes = plt.subplots(len(markets), 1, figsize=(10, 1.9 * len(markets) + 0.8), sharex=True)
    x = [_minutes(recording, s.sim_time) for s in recording.samples]
    for ax, market in zip(axes, markets, strict=True):
        stacks = [[s.weights.get(market, {}).get(region, 0.0) for s in recording.samples] for region in regions]
        ax.stackplot(x, stacks, labels=regions, colors=REGION_COLOURS[: len(regions)], alpha=0.85)
        _shade_events(ax, recording, lines_only=True)
        allowed = ", ".join(spec.allowed_regions(market))
        ax.set_ylabel(market)
        ax.set_ylim(0, 1.0)
        ax.set_title(f"{market}: share of new sessions per region (allowed: {allowed})", fontsize=9, loc="left",
                     pad=12)  # fmt: skip
    axes[0].legend(loc="lower left", ncol=len(regions), fontsize=7, framealpha=0.9)
    axes[-1].set_xlabel(_x_label(recording))
    fig.suptitle("Traffic weights per region over time")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def chart_nodes_vs_demand(recording: DemoRecording, spec: EnvironmentSpec, path: Path) -> None:
    regions = [r.name for r in spec.regions]
    fig, axes = plt.subplots(len(regions), 1, figsize=(10, 2.2 * len(regions) + 0.8), sharex=True)
    x = [_minutes(recording, s.sim_time) for s in recording.samples]
    target = spec.scaling.target_utilisation
    for ax, region in zip(axes, regions, strict=True):
        per_node = spec.region_by_name[region].sessions_per_node
        present = [s for s in recording.samples if region in s.regions]
        xs = [x[i] for i, s in enumerate(recording.samples) if region in s.regions]
        ax.plot(xs, [s.region_demand(region) for s in present], color="#d62728", lw=1.6, label="demand routed here")
        ax.plot(xs, [s.regions[region].active_sessions for s in present], color="#ff7f0e", lw=1, label="active")
        ax.plot(xs, [s.regions[region].ready_capacity for s in present], color="#1f77b4", lw=1.6,
                label="ready capacity (100%)")  # fmt: skip
        ax.plot(xs, [s.regions[region].desired_nodes * per_node for s in present], color="#1f77b4", lw=1,
                ls="--", label="desired nodes x sessions/node")  # fmt: skip
        ax.plot(xs, [s.regions[region].ready_capacity * target for s in present], color="#9e9e9e", lw=0.8,
                ls=":", label=f"target utilisation {target:.0%}")  # fmt: skip
        _shade_events(ax, recording)
        ax.set_ylabel("sessions")
        nodes_now = present[-1].regions[region].ready_nodes if present else 0
        ax.set_title(f"{region}: demand vs capacity ({nodes_now} ready nodes at the end)", fontsize=9, loc="left")
    axes[0].legend(loc="upper left", fontsize=7, ncol=4)
    axes[-1].set_xlabel(_x_label(recording))
    fig.suptitle("Nodes vs demand per region")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _worst_path(sample: FleetSample, region: str, attribute: str) -> float | None:
    values = [
        getattr(p, attribute)
        for p in sample.paths
        if p.region == region and getattr(p, attribute) is not None and p.active_sessions > 0
    ]
    return max(values) if values else None


def chart_qos(recording: DemoRecording, spec: EnvironmentSpec, path: Path) -> None:
    regions = [r.name for r in spec.regions]
    strictest_rtt = min(slo.rtt_p95_ms for slo in spec.scenarios.values())
    strictest_loss = min(slo.max_loss_ratio for slo in spec.scenarios.values())
    fig, (ax_rtt, ax_loss) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    x = [_minutes(recording, s.sim_time) for s in recording.samples]
    for colour, region in zip(REGION_COLOURS, regions, strict=False):
        ax_rtt.plot(x, [_worst_path(s, region, "rtt_ms") for s in recording.samples], color=colour, label=region)
        ax_loss.plot(x, [_worst_path(s, region, "loss_ratio") for s in recording.samples], color=colour,
                     label=region)  # fmt: skip
    ax_rtt.axhline(strictest_rtt, color="black", ls="--", lw=1, label=f"SLO {strictest_rtt:g} ms (strictest)")
    ax_loss.axhline(strictest_loss, color="black", ls="--", lw=1, label=f"SLO {strictest_loss:.1%} (strictest)")
    for ax in (ax_rtt, ax_loss):
        _shade_events(ax, recording)
        ax.legend(loc="upper left", fontsize=7, ncol=4)
    ax_rtt.set_ylabel("worst path RTT p95 (ms)")
    ax_loss.set_ylabel("worst path packet loss")
    ax_loss.set_xlabel(_x_label(recording))
    fig.suptitle("QoS per region (worst market path carrying sessions)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def drill_phases(scorecard: dict[str, Any] | None) -> list[tuple[str, float]]:
    """(phase, seconds) pairs found in a drill scorecard, in order; tolerant of the exact layout."""
    if not scorecard:
        return []
    for key in ("timings", "phase_seconds", "phases", "phase_timings"):
        value = scorecard.get(key)
        if isinstance(value, dict):
            return [(str(k).removesuffix("_seconds"), float(v)) for k, v in value.items() if isinstance(v, int | float)]
        if isinstance(value, list):
            pairs = []
            for item in value:
                if isinstance(item, dict):
                    name = item.get("phase") or item.get("name")
                    seconds = item.get("seconds") or item.get("duration_seconds")
                    if name is not None and isinstance(seconds, int | float):
                        pairs.append((str(name), float(seconds)))
            if pairs:
                return pairs
    for key in ("report", "scorecard"):  # DrillScorecard carries its FailoverReport with `timings`
        nested = scorecard.get(key)
        if isinstance(nested, dict) and (found := drill_phases(nested)):
            return found
    return []


def chart_drill(recording: DemoRecording, measurements: DemoMeasurements, path: Path) -> None:
    region = recording.settings.drill_region
    fig, (ax_share, ax_phases) = plt.subplots(2, 1, figsize=(10, 5.5), gridspec_kw={"height_ratios": [2, 1]})
    drill = measurements.drill
    # On the fleet's clock, like every other chart: fleet minutes since the sample nearest the drill's start.
    started = drill.started_wall_seconds or 0.0
    samples = recording.samples or []
    anchor = min(samples, key=lambda s: abs(s.wall_seconds - started)).sim_time if samples else None
    window = [s for s in samples if s.wall_seconds >= started - 10]

    def fleet_minutes(sample_wall: float) -> float:
        nearest = min(samples, key=lambda s: abs(s.wall_seconds - sample_wall))
        return (nearest.sim_time - anchor).total_seconds() / 60 if anchor is not None else 0.0

    x = [(s.sim_time - anchor).total_seconds() / 60 if anchor is not None else 0.0 for s in window]
    markets = sorted({m for s in window for m, w in s.weights.items() if w.get(region, 0.0) > 0})
    styles = ["-", "--", ":", "-."]
    for i, market in enumerate(markets):  # markets often coincide: vary the line so each stays visible
        ax_share.plot(x, [s.weights.get(market, {}).get(region, 0.0) for s in window], label=market,
                      color=REGION_COLOURS[i % len(REGION_COLOURS)], ls=styles[i % len(styles)],
                      lw=2.6 - 0.5 * (i % 3))  # fmt: skip
    ax_share.set_ylabel(f"weight on {region}")
    ax_share.set_ylim(-0.02, 1.02)
    ax_share.set_title(f"Drill of {region}: each market's share of new sessions sent to {region}", fontsize=9,
                       loc="left")  # fmt: skip
    if drill.ended_wall_seconds is not None and drill.started_wall_seconds is not None and samples:
        ax_share.axvspan(0, fleet_minutes(drill.ended_wall_seconds), color="#b39ddb", alpha=0.25,
                         label="drill running")  # fmt: skip
    ax_share.legend(loc="lower right", fontsize=7, ncol=6)
    ax_share.set_xlabel("fleet minutes since the drill started")
    # The failover's phase timings are workflow (wall) seconds: at `speed` they are `speed` fleet seconds.
    speed = recording.settings.speed
    phases = [(name, seconds * speed / 60) for name, seconds in drill_phases(drill.scorecard)]
    if phases:
        start, total = 0.0, sum(seconds for _, seconds in phases) or 1.0
        for i, (name, seconds) in enumerate(phases):
            ax_phases.barh(0, seconds, left=start, color=REGION_COLOURS[i % len(REGION_COLOURS)], edgecolor="white",
                           label=f"{name} {seconds:.1f} min")  # fmt: skip
            if seconds >= 0.08 * total:  # narrow phases are named in the legend only
                ax_phases.text(start + seconds / 2, 0, f"{name}\n{seconds:.1f} min", ha="center", va="center",
                               fontsize=7)  # fmt: skip
            start += seconds
        ax_phases.set_xlim(0, max(start, 1.0))
        ax_phases.legend(loc="upper center", bbox_to_anchor=(0.5, -0.45), ncol=len(phases), fontsize=7)
        ax_phases.set_xlabel("fleet minutes (drill phases from the scorecard)")
    else:
        ax_phases.text(0.5, 0.5, "the drill returned no phase timings", ha="center", va="center")
    ax_phases.set_yticks([])
    fig.suptitle("Failover drill timeline")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _placement_note(recording: DemoRecording) -> str:
    """How the fleet placed new sessions, which decides what the shift rows are measured from."""
    if recording.placement_mode != "selector":
        return (
            "The fleet placed new sessions by the traffic weights the controller set on it; the shift rows are"
            " measured from those weights."
        )
    books = recording.placement_books or {}
    placed = sum(sum(regions.values()) for regions in books.get("selector_sessions", {}).values())
    fallback = sum(
        sum(regions.values()) for markets in books.get("fallback_sessions", {}).values() for regions in markets.values()
    )
    refused = sum(sum(codes.values()) for codes in books.get("refused_sessions", {}).values())
    return (
        "The fleet placed every new session by asking the region selector (`edgectl selector serve`, following the"
        " steering file the controller commits to), as clients' signalling would: the shift rows are measured from"
        f" the sessions its answers placed. Over the run: {placed:,} sessions placed by the selector's answers,"
        f" {refused:,} refused by it, {fallback:,.0f} placed by the fleet's fallback (no usable answer:"
        " before the controller's first plan, or the selector unreachable; last answers' shares, within"
        " jurisdictions)."
    )


def _compact(value: Any) -> str:
    """One table cell: numbers rounded, dicts of numbers inline, lists counted."""
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, dict) and all(isinstance(v, int | float) for v in value.values()):
        return ", ".join(f"{k.removesuffix('_seconds')} {_compact(v)}" for k, v in value.items())
    if isinstance(value, list):
        return f"{len(value)} item(s)"
    shown = json.dumps(value, default=str) if isinstance(value, dict) else str(value)
    return shown if len(shown) <= 160 else shown[:157] + "..."


def _scorecard_lines(scorecard: dict[str, Any] | None) -> list[str]:
    """The scorecard as a table; a nested report is flattened one level (`report.timings`...)."""
    if not scorecard:
        return ["The drill returned no scorecard."]
    lines = ["| field | value |", "| --- | --- |"]
    for key, value in scorecard.items():
        if isinstance(value, dict) and not all(isinstance(v, int | float) for v in value.values()):
            for inner_key, inner in value.items():
                if inner_key in scorecard or inner_key in ("workflow_id", "environment", "region", "started_at"):
                    continue  # already shown at the top level
                lines.append(f"| {key}.{inner_key} | {_compact(inner).replace('|', '/')} |")
            continue
        lines.append(f"| {key} | {_compact(value).replace('|', '/')} |")
    return lines


def write_report(
    recording: DemoRecording, measurements: DemoMeasurements, spec: EnvironmentSpec, out_dir: Path
) -> Path:
    """Draw the charts and write report.md into `out_dir`; returns the report path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if recording.samples:
        chart_weights(recording, spec, out_dir / "weights.png")
        chart_nodes_vs_demand(recording, spec, out_dir / "nodes_vs_demand.png")
        chart_qos(recording, spec, out_dir / "qos.png")
        chart_drill(recording, measurements, out_dir / "drill.png")
    settings = recording.settings
    lines = [
        f"# edgeplane demo: {settings.environment}, {recording.started_at:%Y-%m-%d %H:%M} UTC",
        "",
        f"Environment `{settings.env_path}`; simulated fleet at x{settings.speed:g} real time from"
        f" {settings.sim_start:%H:%M} UTC; {measurements.samples} samples every {settings.sample_interval_seconds:g}"
        f" s; scenario wall time {recording.wall_seconds_total:.0f} s. Every figure below is measured from the"
        " recorded series (`recording.json`), not taken from configuration.",
        "",
        _placement_note(recording),
        "",
        "## Summary",
        "",
        "| what | measured | verdict |",
        "| --- | --- | --- |",
        *[
            f"| {what} | {measured} | {verdict} |"
            for what, measured, verdict in summary_rows(measurements, settings.speed)
        ],
        "",
        "## Scenario",
        "",
        "| wall s | simulated time | event | detail |",
        "| --- | --- | --- | --- |",
        *[
            f"| {e.wall_seconds:.0f} | {e.sim_time:%H:%M:%S} | {e.kind} | "
            f"{', '.join(f'{k}={v}' for k, v in e.detail.items())} |"
            if e.sim_time
            else f"| {e.wall_seconds:.0f} | | {e.kind} | {', '.join(f'{k}={v}' for k, v in e.detail.items())} |"
            for e in recording.events
        ],
        "",
        "## Traffic weights per region",
        "",
        f"During the packet-loss impairment of `{settings.impaired_region}` the controller moves"
        f" {'/'.join(settings.impaired_markets)} traffic to the other regions their jurisdiction allows, never"
        " elsewhere, and back after recovery.",
        "",
        "![traffic weights](weights.png)",
        "",
        "## Nodes vs demand per region",
        "",
        f"The flash sale in `{settings.flash_sale_market}` can only be served in"
        f" `{settings.flash_sale_region}` (residency): the ready capacity line must stay above the demand line.",
        "",
        "![nodes vs demand](nodes_vs_demand.png)",
        "",
        "## QoS per region",
        "",
        "![qos](qos.png)",
        "",
        "## Failover drill",
        "",
        f"`edgectl drill run --region {settings.drill_region} --json` (exit code {recording.drill_exit_code}).",
        "",
        *_scorecard_lines(recording.drill_result),
        "",
        "![drill timeline](drill.png)",
        "",
        "## Cross-border 1v1: ID buyer, DE seller",
        "",
        "Each participant's media terminates in a region its own market's jurisdictions allow (ID in cgk, DE in",
        "the EU), the two SFUs cascaded over the backbone; end-to-end QoS is access + backbone + access.",
        "",
        *(f"    {line}" for line in recording.cross_border or ["(not run)"]),
        "",
        "## Measurements (raw)",
        "",
        "```json",
        measurements.model_dump_json(indent=2),
        "```",
        "",
        "## The stack",
        "",
        *[f"- {name}: {url}" for name, url in recording.stack_urls.items()],
        "",
    ]
    if recording.problems:
        lines += ["## Problems during the run", "", *[f"- {p}" for p in recording.problems], ""]
    report = out_dir / "report.md"
    report.write_text("\n".join(lines))
    return report
