"""The demo's cross-border 1v1 (`edgectl/demo/cross_border.py`): DE and ID each in their own jurisdiction,
the DE side moved off a lossy fra-cgk backbone to dub while ID stays in cgk, e2e QoS measured on the
fleet, in-process and over the simulator's HTTP API (what `edgectl demo` talks to)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.spec_file import load_environment
from edgectl.demo.cross_border import CrossBorderDemoReport, SimulatorHttpFleet, cross_border_call
from sim.fleet import SimulatedFleet
from sim.http_api import SimulatorServer
from sim.traces import quiet_trace

LOCAL = load_environment(Path(__file__).resolve().parents[2] / "environments" / "local.yaml")
NOON = datetime(2026, 11, 9, 12, tzinfo=UTC)


def _fleet() -> SimulatedFleet:
    return SimulatedFleet(LOCAL, quiet_trace(NOON, 3600), start=NOON)


def _check(report: CrossBorderDemoReport) -> None:
    healthy, impaired, recovered = report.phases
    assert [p.phase for p in report.phases] == ["healthy", "impaired", "recovered"]
    assert (healthy.host_region, healthy.guest_region) == ("fra", "cgk")
    assert (impaired.host_region, impaired.guest_region) == ("dub", "cgk")
    assert (recovered.host_region, recovered.guest_region) == ("fra", "cgk")
    assert (impaired.selector_host_region, impaired.selector_guest_region) == ("dub", "cgk")
    assert all(p.residency_compliant and p.meets_slo for p in report.phases)
    assert impaired.failed_links == [("fra", "cgk")] and healthy.failed_links == []
    # What a backbone-blind placement keeps: 8% loss on fra-cgk, far beyond the 1v1's 2%.
    assert not impaired.blind_meets_slo and impaired.blind_e2e_loss_ratio > 0.08
    assert healthy.blind_meets_slo
    # A cascade over the longer dub-cgk path costs some RTT, inside the 300 ms SLO.
    assert healthy.e2e_rtt_ms < impaired.e2e_rtt_ms < report.rtt_slo_ms
    assert "avoids failed backbone fra-cgk" in impaired.why
    # The plan prices the call on what the fleet measures (both access paths and the backbone): its
    # reason states the same e2e loss the snapshot shows, not the unloaded backbone's alone.
    for phase in report.phases:
        assert f"{phase.e2e_loss_ratio:.2%} loss" in phase.why, (phase.e2e_loss_ratio, phase.why)
    text = "\n".join(report.lines())
    assert "impaired  DE in dub, ID in cgk" in text and "BREACH" in text


def test_the_cross_border_call_on_the_simulated_fleet() -> None:
    fleet = _fleet()
    _check(cross_border_call(LOCAL, fleet))
    assert fleet.state()["impairments"] == {}  # cleared


def test_the_cross_border_call_over_the_simulators_http_api() -> None:
    fleet = _fleet()
    with SimulatorServer(fleet, run_clock=False) as server:
        client = SimulatorHttpFleet(server.url)
        try:
            _check(cross_border_call(LOCAL, client))
        finally:
            client.close()
    assert fleet.state()["impairments"] == {}


def test_an_environment_without_the_flow_is_refused() -> None:
    data = LOCAL.model_dump(mode="json")
    data["sessions"]["cross_market"] = [f for f in data["sessions"]["cross_market"] if f["host"] != "DE"]
    spec = type(LOCAL).model_validate(data)
    with pytest.raises(ValueError, match="no DE -> ID one_to_one flow"):
        cross_border_call(spec, _fleet())
