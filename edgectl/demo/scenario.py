"""The scripted demo scenario: bring the stack up, play a compressed evening, record it, report it.

`run_demo` is what `edgectl demo` (and `make demo`, and the end-to-end test) runs:
1. start the local stack (`edgectl/dev_stack.py`) on free loopback ports, the simulated fleet's
   clock at `sim_start` (default 16:30 UTC) running `speed` times faster than the wall clock;
2. sample the fleet every `sample_interval_seconds` through its HTTP API into a `DemoRecording`
   (`edgectl/demo/recording.py`) while the phases play:
   - warm-up: normal diurnal load (EU evening rising, Asia past midnight);
   - flash sale: a midnight live-commerce sale in one market (ID, in-country: only cgk may serve
     it), injected as a demand event; the controller must have capacity ready before demand;
   - impairment: extra packet loss on one region (fra) for a while; the controller must shift the
     markets there (DE, FR: EU only) to the other allowed region (dub), never to sin/cgk, then back;
   - drill: on-call runs `edgectl drill run --region R --json` through the CLI; its scorecard is kept;
3. stop the stack (no process left behind), measure (`edgectl/demo/measurements.py`) and write the
   report (`edgectl/demo/report.py`) into `reports/demo-<timestamp>/`.
The phase lengths are wall seconds multiplied by `duration_scale`, so the test can run a shorter
copy of the same scenario through the same code.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from controller.spec import EnvironmentSpec
from controller.spec_file import load_environment
from edgectl.demo.cross_border import SimulatorHttpFleet, cross_border_call
from edgectl.demo.fleet_api import FleetApi, counters_from_accounting, weight_changes_from_actuations
from edgectl.demo.measurements import DemoMeasurements, measure
from edgectl.demo.recording import (
    DemoRecording,
    DemoSettings,
    FleetSample,
    ScenarioEvent,
)
from edgectl.demo.report import write_report
from edgectl.dev_stack import DevStack, StackOptions, StackPorts, StackUnavailable, edgectl_command
from edgectl.stack_process import pids_alive

Progress = Callable[[str], None]


class DemoOptions(BaseModel):
    """How to run the scenario; defaults are the `make demo` run (about five minutes)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env_path: Path = Field(description="Environment file (environments/local.yaml).")
    report_root: Path = Field(default=Path("reports"), description="Reports go to <root>/demo-<timestamp>/.")
    speed: float = Field(default=60.0, gt=0, description="Simulated seconds per wall second.")
    duration_scale: float = Field(default=1.0, gt=0, le=10, description="Multiplies every phase's wall length.")
    sim_start: datetime = Field(
        default=datetime(2026, 11, 13, 16, 30, tzinfo=UTC),
        description="Simulated clock at start: 16:30 UTC, so the ID sale starts at midnight WIB and the"
        " fra impairment hits during the EU evening.",
    )
    seed: int = Field(default=7, description="Seed of the simulated fleet.")
    sample_interval_seconds: float | None = Field(
        default=None, gt=0, description="Wall seconds between samples; None: 1 s x duration_scale (at least 0.4 s)."
    )

    @property
    def sample_interval(self) -> float:
        return self.sample_interval_seconds or max(0.4, self.duration_scale)

    flash_sale_market: str = Field(default="ID")
    flash_sale_multiplier: float = Field(default=2.0, gt=1, description="Demand multiplier on the plateau.")
    impaired_region: str = Field(default="fra")
    impairment_loss_ratio: float = Field(default=0.08, gt=0, lt=1, description="Packet loss added to its paths.")
    drill_region: str = Field(default="sin")
    ports: StackPorts | None = Field(default=None, description="None: free ports chosen by the OS.")


class PhaseLengths(BaseModel):
    """Wall seconds of each phase at duration_scale 1 (about 5 minutes with start-up and report)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warmup: float = 30.0
    sale_ramp: float = 20.0
    sale_plateau: float = 30.0
    gap: float = 20.0
    impairment: float = 45.0
    recovery: float = 40.0
    drill_timeout: float = 150.0
    cool_down: float = 5.0

    def scaled(self, factor: float) -> PhaseLengths:
        scaled = {name: value * factor for name, value in self.model_dump().items()}
        scaled["drill_timeout"] = max(self.drill_timeout, scaled["drill_timeout"])  # the drill sets its own pace
        return PhaseLengths(**scaled)


class DemoOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    report_dir: Path
    report_path: Path
    recording: DemoRecording
    measurements: DemoMeasurements
    leftover_pids: list[int]
    wall_seconds: float


class FleetSampler(threading.Thread):
    """Samples the fleet every interval into the recording until stopped (bounded by `stop()`)."""

    def __init__(self, api: FleetApi, recording: DemoRecording, started: float, interval: float) -> None:
        super().__init__(name="fleet-sampler", daemon=True)
        self._api, self._recording, self._clock_zero, self._interval = api, recording, started, interval
        self._stop_requested = threading.Event()
        self.phase = "start-up"
        self.errors = 0
        self.last: FleetSample | None = None

    def run(self) -> None:
        while not self._stop_requested.is_set():
            tick_started = time.monotonic()
            self.sample_once()
            self._stop_requested.wait(max(0.0, self._interval - (time.monotonic() - tick_started)))

    def sample_once(self) -> FleetSample | None:
        try:
            snapshot = self._api.snapshot()
            counters = counters_from_accounting(self._api.accounting())
        except (httpx.HTTPError, ValueError):
            self.errors += 1
            return None
        sample = FleetSample.from_snapshot(
            snapshot, wall_seconds=time.monotonic() - self._clock_zero, phase=self.phase, counters=counters
        )
        self._recording.samples.append(sample)  # list.append is atomic; the main thread only reads
        self.last = sample
        return sample

    def stop(self) -> None:
        self._stop_requested.set()
        if self.is_alive():
            self.join(timeout=10)


class ScenarioRunner:
    """Plays the phases against a running stack; every wait is bounded."""

    def __init__(
        self, options: DemoOptions, spec: EnvironmentSpec, stack: DevStack, recording: DemoRecording,
        progress: Progress,
    ) -> None:  # fmt: skip
        self.options, self.spec, self.stack, self.recording, self.say = options, spec, stack, recording, progress
        self.phases = PhaseLengths().scaled(options.duration_scale)
        self.api = FleetApi(stack.simulator_url)
        self.started = time.monotonic()
        self.sampler = FleetSampler(self.api, recording, self.started, options.sample_interval)

    # -- helpers ---------------------------------------------------------------------------------
    def wall(self) -> float:
        return time.monotonic() - self.started

    def sim_now(self) -> datetime | None:
        sample = self.sampler.sample_once() or self.sampler.last
        return sample.sim_time if sample else None

    def event(self, kind: str, *, at: tuple[float, datetime | None] | None = None, **detail: Any) -> ScenarioEvent:
        """Record an event at `at` (wall seconds, simulated time) or now."""
        wall, sim_time = at if at is not None else (self.wall(), self.sim_now())
        event = ScenarioEvent(wall_seconds=wall, sim_time=sim_time, kind=kind, detail=detail)
        self.recording.events.append(event)
        return event

    def phase(self, name: str, seconds: float, description: str) -> None:
        self.sampler.phase = name
        self.event("phase", name=name, wall_seconds=round(seconds, 1))
        self.say(f"[{self.wall():5.0f}s] {name}: {description} ({seconds:.0f}s)")
        self.watch(seconds)

    def watch(self, seconds: float) -> None:
        """Wait `seconds`, reporting the fleet every few seconds; fail fast if a child died."""
        deadline = time.monotonic() + seconds
        next_report = time.monotonic() + 10
        while (remaining := deadline - time.monotonic()) > 0:
            time.sleep(min(1.0, remaining))
            dead = self.stack.dead_processes()
            if dead:
                names = ", ".join(p.name for p in dead)
                raise RuntimeError(f"{names} exited during the scenario (logs in {self.stack.options.work_dir})")
            if time.monotonic() >= next_report:
                next_report += 10
                self.say(self.fleet_line())

    def fleet_line(self) -> str:
        sample = self.sampler.last
        if sample is None:
            return "  (no sample yet)"
        o = self.options
        sale = sample.regions.get(self.recording.settings.flash_sale_region)
        eu = sample.share(["DE", "FR"], o.impaired_region)
        parts = [f"  {sample.sim_time:%H:%M}"]
        if sale:
            parts.append(
                f"{o.flash_sale_market} {sample.offered_sessions.get(o.flash_sale_market, 0):.0f} sessions,"
                f" {self.recording.settings.flash_sale_region} {sale.ready_nodes}+{sale.booting_nodes} nodes"
            )
        parts.append(f"DE/FR on {o.impaired_region} {eu:.0%}")
        if sample.counters.residency_violations is not None:
            parts.append(f"violations {sample.counters.residency_violations:.0f}")
        return " | ".join(parts)

    # -- the scenario ----------------------------------------------------------------------------
    def run(self) -> None:
        o, p = self.options, self.phases
        self.sampler.start()
        self.phase("warm-up", p.warmup, "normal diurnal load, controller settling")

        now = self.sim_now() or o.sim_start
        ramp_sim, plateau_sim = p.sale_ramp * o.speed, p.sale_plateau * o.speed
        self.api.add_demand_event(o.flash_sale_market, now, ramp_sim, ramp_sim + plateau_sim, o.flash_sale_multiplier)
        self.event("flash_sale_start", market=o.flash_sale_market, multiplier=o.flash_sale_multiplier,
                   ramp_minutes=round(ramp_sim / 60, 1), plateau_minutes=round(plateau_sim / 60, 1))  # fmt: skip
        self.phase("flash-sale", p.sale_ramp + p.sale_plateau + p.sale_ramp,
                   f"{o.flash_sale_market} demand x{o.flash_sale_multiplier:g}, in-country only")  # fmt: skip
        self.event("flash_sale_end", market=o.flash_sale_market)
        self.phase("calm", p.gap, "sale over")

        # the clock is read just before injecting and clearing, so measured reaction times are never flattered
        before = (self.wall(), self.sim_now())
        impairment_id = self.api.inject_impairment(o.impaired_region, o.impairment_loss_ratio)
        self.event("impairment_start", at=before, region=o.impaired_region, extra_loss=o.impairment_loss_ratio)
        try:
            self.phase("impairment", p.impairment, f"+{o.impairment_loss_ratio:.0%} packet loss on {o.impaired_region}")
        finally:
            before = (self.wall(), self.sim_now())
            self.api.clear_impairment(impairment_id)
        self.event("impairment_end", at=before, region=o.impaired_region)
        self.phase("recovery", p.recovery, f"{o.impaired_region} healthy again; traffic should return")

        self.run_drill(p.drill_timeout)
        self.run_cross_border()
        self.phase("cool-down", p.cool_down, "last samples")
        self.sampler.stop()

    def run_drill(self, timeout_seconds: float) -> None:
        o = self.options
        self.sampler.phase = "drill"
        argv = [
            *edgectl_command(), "drill", "run", "--env", str(o.env_path), "--region", o.drill_region,
            "--temporal-address", self.stack.temporal_address, "--json",
        ]  # fmt: skip
        self.event("drill_start", region=o.drill_region, command=" ".join(argv[2:]))
        self.say(f"[{self.wall():5.0f}s] drill: on-call runs `edgectl {' '.join(argv[3:])}`")
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + timeout_seconds
        while proc.poll() is None and time.monotonic() < deadline:
            self.watch(min(5.0, max(0.1, deadline - time.monotonic())))
        if proc.poll() is None:
            proc.kill()
            self.recording.problems.append(f"the drill did not finish within {timeout_seconds:.0f}s and was killed")
        stdout, stderr = proc.communicate(timeout=10)
        self.recording.drill_exit_code = proc.returncode
        self.recording.drill_stderr = stderr.decode(errors="replace")[-4000:]
        try:
            result = json.loads(stdout.decode() or "null")
            self.recording.drill_result = result if isinstance(result, dict) else None
        except json.JSONDecodeError:
            self.recording.problems.append(f"the drill printed no JSON: {stdout.decode(errors='replace')[:300]}")
        self.event("drill_end", region=o.drill_region, exit_code=proc.returncode)
        self.say(f"[{self.wall():5.0f}s] drill finished (exit {proc.returncode})")

    def run_cross_border(self) -> None:
        """A cross-border 1v1 (ID buyer, DE seller): each side in its own jurisdiction, cascaded, and its
        end-to-end QoS healthy, through a backbone impairment, and after it (on the running fleet)."""
        self.event("cross_border_start", host="DE", guest="ID")
        fleet = SimulatorHttpFleet(self.stack.simulator_url)
        try:
            report = cross_border_call(self.spec, fleet)
            self.recording.cross_border = report.lines()
            for line in self.recording.cross_border:
                self.say(f"[{self.wall():5.0f}s] {line}")
        except (httpx.HTTPError, ValueError) as error:
            self.recording.problems.append(f"the cross-border call could not be shown: {error}")
        finally:
            fleet.close()
        self.event("cross_border_end")

    def collect_final(self) -> None:
        try:
            self.recording.final_accounting = self.api.accounting()
            self.recording.weight_changes = weight_changes_from_actuations(self.api.actuations())
        except (httpx.HTTPError, ValueError) as error:
            self.recording.problems.append(f"could not read the fleet's final accounting: {error}")
        try:
            placement = self.api.placement()
            self.recording.placement_mode = placement.get("mode")
            self.recording.placement_books = placement.get("books")
            self.recording.placement_timeline = self.api.placement_timeline()
        except (httpx.HTTPError, ValueError) as error:
            self.recording.problems.append(f"could not read the fleet's placement timeline: {error}")


def new_report_dir(root: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = root / f"demo-{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = root / f"demo-{stamp}-{suffix}"
    path.mkdir(parents=True)
    return path


def run_demo(options: DemoOptions, progress: Progress) -> DemoOutcome:
    """Run the whole demo; the stack is always stopped, even on error or Ctrl-C."""
    begun = time.monotonic()
    spec = load_environment(options.env_path)
    ports = options.ports or StackPorts.free()
    DevStack(StackOptions(env_path=options.env_path, ports=ports, work_dir=options.report_root)).preflight()
    report_dir = new_report_dir(options.report_root)
    stack = DevStack(
        StackOptions(
            env_path=options.env_path,
            speed=options.speed,
            sim_start=options.sim_start.isoformat(),
            seed=options.seed,
            ports=ports,
            work_dir=report_dir / "stack",
        )
    )
    recording = DemoRecording(
        settings=DemoSettings(
            environment=spec.name,
            env_path=str(options.env_path),
            speed=options.speed,
            sim_start=options.sim_start,
            duration_scale=options.duration_scale,
            sample_interval_seconds=options.sample_interval,
            flash_sale_market=options.flash_sale_market,
            flash_sale_region=_only_region(spec, options.flash_sale_market),
            impaired_region=options.impaired_region,
            impaired_markets=_markets_served_by(spec, options.impaired_region),
            impairment_loss_ratio=options.impairment_loss_ratio,
            drill_region=options.drill_region,
            controller_tick_seconds=spec.traffic.tick_seconds,
        ),
        started_at=datetime.now(UTC),
        stack_urls=stack.urls,
    )
    runner: ScenarioRunner | None = None
    try:
        progress(f"starting the stack (logs in {stack.options.work_dir / 'logs'})")
        stack.start(progress=lambda message: progress(f"  {message}"))
        recording.child_pids = {p.name: p.pid for p in stack.processes if p.pid is not None}
        for name, url in stack.urls.items():
            progress(f"  {name}: {url}")
        runner = ScenarioRunner(options, spec, stack, recording, progress)
        runner.run()
        runner.collect_final()
    except StackUnavailable:
        raise  # could not start: the CLI says how to fix it (exit 4)
    except Exception as error:
        recording.problems.append(f"scenario stopped early: {error}")
        progress(f"scenario stopped early: {error}")
    finally:
        if runner is not None:
            runner.sampler.stop()
            runner.api.close()
        pids = stack.child_pids()
        progress("stopping the stack")
        stack.stop()
    recording.wall_seconds_total = time.monotonic() - begun
    recording.save(report_dir / "recording.json")
    measurements = measure(recording, spec)
    progress("writing the report")
    report_path = write_report(recording, measurements, spec, report_dir)
    return DemoOutcome(
        report_dir=report_dir,
        report_path=report_path,
        recording=recording,
        measurements=measurements,
        leftover_pids=pids_alive(pids),
        wall_seconds=time.monotonic() - begun,
    )


def _only_region(spec: EnvironmentSpec, market: str) -> str:
    allowed = spec.allowed_regions(market)
    return allowed[0] if allowed else ""


def _markets_served_by(spec: EnvironmentSpec, region: str) -> list[str]:
    """Markets whose allowed regions include `region` but not every region (the residency-bound ones)."""
    everywhere = {r.name for r in spec.regions}
    return [
        m.code for m in spec.markets if region in spec.allowed_regions(m.code)
        and set(spec.allowed_regions(m.code)) != everywhere
    ]  # fmt: skip
