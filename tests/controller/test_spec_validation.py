"""Every EnvironmentSpec validation rule, exercised through a bad file that names the field.

Each case starts from the valid `environments/local.yaml`, breaks one thing, writes it to a real
file and loads it the way every user of the spec does (`load_environment`). The expected output is
the `field.path` and a fragment of the reason, i.e. what `edgectl env validate` prints.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.spec_file import EnvironmentFileError, load_environment

LOCAL = Path(__file__).resolve().parents[2] / "environments" / "local.yaml"
Doc = dict[str, Any]


def base() -> Doc:
    return yaml.safe_load(LOCAL.read_text())


def _set(path: str, value: Any) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        *parents, last = _parts(path)
        target: Any = doc
        for part in parents:
            target = target[part]
        target[last] = value

    return mutate


def _parts(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for token in path.replace("]", "").replace("[", ".").split("."):
        parts.append(int(token) if token.isdigit() else token)
    return parts


def _append(path: str, value: Any) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        target: Any = doc
        for part in _parts(path):
            target = target[part]
        target.append(copy.deepcopy(value) if not callable(value) else value(doc))

    return mutate


def _remove_region_everywhere(name: str) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        doc["regions"] = [r for r in doc["regions"] if r["name"] != name]
        for jurisdiction in doc["jurisdictions"]:
            jurisdiction["allowed_regions"] = [r for r in jurisdiction["allowed_regions"] if r != name]

    return mutate


CASES: list[tuple[str, Callable[[Doc], None], str, str]] = [
    # cross-field rules
    ("duplicate region", _append("regions", lambda d: copy.deepcopy(d["regions"][0])), "regions[4].name",
     "duplicate region name 'fra'"),
    ("duplicate jurisdiction", _append("jurisdictions", lambda d: copy.deepcopy(d["jurisdictions"][2])),
     "jurisdictions[3].name", "duplicate jurisdiction name 'global'"),
    ("duplicate market", _append("markets", lambda d: copy.deepcopy(d["markets"][0])), "markets[5].code",
     "duplicate market code 'DE'"),
    ("min above max", _set("regions[1].min_nodes", 50), "regions[1].min_nodes", "greater than max_nodes 40"),
    ("region in unknown jurisdiction", _set("regions[2].jurisdiction", "apac"), "regions[2].jurisdiction",
     "unknown jurisdiction 'apac'"),
    ("region outside its own jurisdiction", _set("regions[2].jurisdiction", "eu"), "regions[2].jurisdiction",
     "not among its allowed_regions"),
    ("unknown region in jurisdiction", _set("jurisdictions[0].allowed_regions", ["fra", "dub", "ams"]),
     "jurisdictions[0].allowed_regions[2]", "unknown region 'ams'"),
    ("region listed twice in jurisdiction", _set("jurisdictions[0].allowed_regions", ["fra", "dub", "fra"]),
     "jurisdictions[0].allowed_regions[2]", "listed twice"),
    ("bad timezone", _set("markets[2].timezone", "Asia/Djakarta"), "markets[2].timezone",
     "unknown IANA timezone 'Asia/Djakarta'"),
    ("baseline above peak", _set("markets[0].demand.baseline_sessions", 5000), "markets[0].demand.baseline_sessions",
     "greater than peak_sessions"),
    ("scenario mix not 1", _set("markets[0].demand.scenario_mix", {"live_show": 0.5, "one_to_one": 0.2}),
     "markets[0].demand.scenario_mix", "sum to 1"),
    ("scenario without SLO", lambda d: d["scenarios"].pop("multi_host"), "markets[0].demand.scenario_mix.multi_host",
     "has no SLO"),
    ("market in unknown jurisdiction", _set("markets[3].allowed_jurisdictions", ["asean"]),
     "markets[3].allowed_jurisdictions[0]", "unknown jurisdiction 'asean'"),
    ("residency-bound market loses its only region", _remove_region_everywhere("cgk"), "markets[2].allowed_jurisdictions",
     "have no region"),
    ("peak no compliant region can carry", _set("markets[2].demand.peak_sessions", 10_000),
     "markets[2].demand.peak_sessions", "compliant regions (cgk)"),
    ("measured latency for unknown market", _set("latency", {"measured": [{"market": "BR", "region": "fra", "rtt_ms": 9}]}),
     "latency.measured[0].market", "unknown market 'BR'"),
    ("measured latency for unknown region", _set("latency", {"measured": [{"market": "DE", "region": "ams", "rtt_ms": 9}]}),
     "latency.measured[0].region", "unknown region 'ams'"),
    ("failover stages not increasing", _set("failover.stages", [0.5, 0.25, 1.0]), "failover.stages", "increase strictly"),
    ("failover stages stop short", _set("failover.stages", [0.25, 0.5]), "failover.stages", "must move all traffic"),
    ("media ports reversed", _set("network", {"media_udp_port_min": 20000, "media_udp_port_max": 10000}),
     "network.media_udp_port_min", "above media_udp_port_max"),
    ("failed before degraded", _set("health.failed_after_seconds", 1), "health.failed_after_seconds",
     "below degraded_after_seconds"),
    # structural rules (pydantic field constraints)
    ("unknown field", _set("regions[0].sesions_per_node", 3), "regions[0].sesions_per_node", "unknown field"),
    ("missing field", lambda d: d["regions"][0].pop("cloud_region"), "regions[0].cloud_region", "required field"),
    ("bad cloud region id", _set("regions[0].cloud_region", "Frankfurt"), "regions[0].cloud_region", "pattern"),
    ("bad market code", _set("markets[0].code", "DEU"), "markets[0].code", "pattern"),
    ("negative capacity", _set("regions[0].sessions_per_node", 0), "regions[0].sessions_per_node", "greater than 0"),
    ("too many AZs", _set("regions[0].az_count", 9), "regions[0].az_count", "less than or equal to 6"),
    ("latitude out of range", _set("markets[0].location.lat", 123), "markets[0].location.lat", "less than or equal to 90"),
    ("unknown scenario", _set("markets[0].demand.scenario_mix", {"karaoke": 1.0}), "markets[0].demand.scenario_mix.karaoke",
     "live_show"),
    ("target utilisation above 1", _set("scaling.target_utilisation", 1.5), "scaling.target_utilisation",
     "less than or equal to 1"),
    ("disruption budget above 1", _set("traffic.disruption_budget", 2), "traffic.disruption_budget",
     "less than or equal to 1"),
    ("no regions", _set("regions", []), "regions", "at least 1"),
    ("bad stop condition", _set("drill.stop_conditions", [{"metric": "cpu", "threshold": 0.1}]),
     "drill.stop_conditions[0].metric", "global_slo_breach_ratio"),
    ("blank legal basis", _set("jurisdictions[0].legal_basis", "  \t "), "jurisdictions[0].legal_basis", "blank"),
    # strict numbers: a boolean, a string or a fraction is not a count; nothing is infinite or NaN
    ("boolean AZ count", _set("regions[0].az_count", True), "regions[0].az_count", "valid integer"),
    ("fractional node count", _set("regions[0].max_nodes", 40.5), "regions[0].max_nodes", "valid integer"),
    ("node count as text", _set("regions[0].max_nodes", "40"), "regions[0].max_nodes", "valid integer"),
    ("boolean latitude", _set("markets[0].location.lat", True), "markets[0].location.lat", "valid number"),
    ("boolean share", _set("markets[0].demand.scenario_mix", {"one_to_one": True}),
     "markets[0].demand.scenario_mix.one_to_one", "valid number"),
    ("boolean failover stage", _set("failover.stages", [0.5, True]), "failover.stages[1]", "valid number"),
    ("number as approval", _set("failover.approval_required", 1), "failover.approval_required", "valid boolean"),
    ("infinite stickiness", _set("traffic.stickiness_cost", float("inf")), "traffic.stickiness_cost", "finite number"),
    ("NaN base RTT", _set("latency", {"base_rtt_ms": float("nan")}), "latency.base_rtt_ms", "finite number"),
    ("NaN threshold", _set("drill.stop_conditions", [{"metric": "global_slo_breach_ratio", "threshold": float("nan")}]),
     "drill.stop_conditions[0].threshold", "finite number"),
    # physical ranges on what used to have no upper bound
    ("absurd peak", _set("markets[0].demand.peak_sessions", 10**18), "markets[0].demand.peak_sessions",
     "less than or equal to"),
    ("absurd baseline", _set("markets[0].demand.baseline_sessions", 10**18), "markets[0].demand.baseline_sessions",
     "less than or equal to"),
    ("absurd cooldown", _set("scaling.scale_in_cooldown_seconds", 10**12), "scaling.scale_in_cooldown_seconds",
     "less than or equal to"),
    ("absurd drain deadline", _set("scaling.drain_deadline_seconds", 10**12), "scaling.drain_deadline_seconds",
     "less than or equal to"),
    ("absurd overflow penalty", _set("traffic.overflow_penalty_ms", 1e300), "traffic.overflow_penalty_ms",
     "less than or equal to"),
    ("absurd stale window", _set("health.stale_after_seconds", 10**9), "health.stale_after_seconds",
     "less than or equal to"),
]


@pytest.mark.parametrize(("mutate", "field", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_file_names_field_and_reason(tmp_path: Path, mutate: Callable[[Doc], None], field: str, reason: str) -> None:
    doc = base()
    mutate(doc)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    before = path.read_bytes()

    with pytest.raises(EnvironmentFileError) as caught:
        load_environment(path)

    lines = [str(p) for p in caught.value.problems]
    matching = [line for line in lines if line.startswith(f"{path}: {field}: ")]
    assert matching, f"no problem for {field!r} in {lines}"
    assert any(reason in line for line in matching), f"{reason!r} not in {matching}"
    assert path.read_bytes() == before  # validation changes nothing


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    doc = base()
    doc["regions"][1]["min_nodes"] = 99
    doc["markets"][0]["timezone"] = "Mars/Olympus"
    doc["jurisdictions"][0]["allowed_regions"].append("ams")
    path = tmp_path / "many.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(EnvironmentFileError) as caught:
        load_environment(path)
    fields = {p.field_path for p in caught.value.problems}
    assert {"regions[1].min_nodes", "markets[0].timezone", "jurisdictions[0].allowed_regions[2]"} <= fields


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("regions: [\n  - {name: fra", "not valid YAML at line"),
        ("", "got empty"),
        ("- just\n- a list\n", "got list"),
    ],
    ids=["yaml-syntax", "empty", "not-a-mapping"],
)
def test_unreadable_documents(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(content)
    with pytest.raises(EnvironmentFileError) as caught:
        load_environment(path)
    assert str(caught.value).startswith(f"{path}: <document>: ")
    assert reason in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentFileError, match="file not found"):
        load_environment(tmp_path / "nope.yaml")
