"""The QoS watcher's verdicts and wake decisions (pure parts; the poll is one Prometheus read)."""

from __future__ import annotations

from pathlib import Path

from controller.adapters.qos_watcher import BreachTracker, RegionQos, region_qos
from controller.spec_file import load_environment

LOCAL = load_environment(Path(__file__).resolve().parents[2] / "environments" / "local.yaml")


def _vector(name: str, rows: list[tuple[str, str, float]]) -> list[dict[str, object]]:
    return [{"metric": {"__name__": name, "market": m, "region": r}, "value": [0, str(v)]} for m, r, v in rows]


def _answers(loss_on_fra: float) -> dict[str, list[dict[str, object]]]:
    return {
        "rtt_ms": _vector("rtt", [("DE", "fra", 30.0), ("DE", "dub", 40.0), ("SG", "fra", 400.0)]),
        "loss_ratio": _vector("loss", [("DE", "fra", loss_on_fra), ("DE", "dub", 0.002), ("SG", "fra", 0.002)]),
        "jitter_ms": _vector("jitter", [("DE", "fra", 5.0), ("DE", "dub", 5.0), ("SG", "fra", 5.0)]),
        "active_sessions": _vector("sessions", [("DE", "fra", 100), ("DE", "dub", 50), ("SG", "fra", 3)]),
    }


def test_loss_beyond_the_slo_breaches_and_a_far_path_never_does():
    healthy = region_qos(LOCAL, _answers(0.002))
    # SG -> fra breaks the RTT SLO by geography: not the region's health (as in the health step).
    assert not healthy["fra"].breaching and not healthy["dub"].breaching
    sick = region_qos(LOCAL, _answers(0.08))
    assert sick["fra"].breaching and "loss 8.0%" in sick["fra"].worst
    assert not sick["dub"].breaching


def test_wakes_on_new_breaching_samples_and_on_clearing_never_on_a_reread():
    tracker = BreachTracker()
    sick = {"fra": RegionQos("fra", 2.0, "loss")}
    well = {"fra": RegionQos("fra", 0.5, "ok")}
    assert tracker.reasons(100.0, well) == []  # nothing to say
    assert tracker.reasons(102.0, sick) == ["QoS breach in fra: severity x2.00, worst loss"]
    assert tracker.reasons(102.0, sick) == []  # the same sample again: no news
    assert tracker.reasons(104.0, sick) != []  # every new breaching sample: the debounce advances on it
    assert tracker.reasons(106.0, well) == ["QoS breach in fra cleared"]
    assert tracker.reasons(108.0, well) == []
    assert tracker.reasons(None, sick) == []  # no sample time: nothing is known
