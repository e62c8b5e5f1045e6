"""Property tests: whatever a user writes, validation either returns a spec whose invariants hold or
raises EnvironmentFileError with located problems; it never crashes with anything else."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.spec import EnvironmentSpec, residency_geography
from controller.spec_file import EnvironmentFileError, parse_environment

LOCAL = yaml.safe_load((Path(__file__).resolve().parents[2] / "environments" / "local.yaml").read_text())

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, (*prefix, index)))
    return found


ALL_PATHS = _paths(LOCAL)


def _check_outcome(doc: Any) -> None:
    try:
        spec = parse_environment(doc, "fuzz.yaml")
    except EnvironmentFileError as error:
        assert error.problems
        for problem in error.problems:
            assert problem.file == "fuzz.yaml"
            assert problem.reason
        return
    _assert_invariants(spec)


def _assert_invariants(spec: EnvironmentSpec) -> None:
    names = [r.name for r in spec.regions]
    assert len(names) == len(set(names))
    for region in spec.regions:
        assert region.min_nodes <= region.max_nodes
        assert region.name in spec.jurisdiction_by_name[region.jurisdiction].allowed_regions
    for jurisdiction in spec.jurisdictions:
        for name in jurisdiction.allowed_regions:
            country = residency_geography.country_of(spec.region_by_name[name].cloud_region)
            assert (
                country is None
                or residency_geography.jurisdiction_allows_country(jurisdiction.name, country) is not False
            )
    for market in spec.markets:
        allowed = spec.allowed_regions(market.code)
        assert allowed
        capacity = sum(spec.region_capacity_sessions(r) for r in allowed)
        assert market.demand.peak_sessions <= capacity + 1e-6
        assert abs(sum(market.demand.scenario_mix.values()) - 1) < 1e-6


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(ALL_PATHS), json_values), min_size=1, max_size=4))
def test_mutating_a_valid_file_never_crashes(mutations: list[tuple[tuple[Any, ...], Any]]) -> None:
    doc = copy.deepcopy(LOCAL)
    for path, value in mutations:
        target: Any = doc
        try:
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced a parent: nothing to mutate here
    _check_outcome(doc)


REGION_NAMES = ["fra", "dub", "sin", "cgk", "bom", "iad"]
JURISDICTION_NAMES = ["eu", "id", "sa", "global"]
CLOUD_REGIONS = ["eu-central-1", "ap-southeast-3", "us-east-1", "me-west-1"]
HOME_CLOUD_REGION = {"eu": "eu-central-1", "id": "ap-southeast-3", "sa": "me-west-1", "global": "us-east-1"}


@st.composite
def random_specs(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly-coherent specs (unique names, regions inside their jurisdiction) with random sizes,
    so both outcomes occur: valid specs whose invariants are checked, and precise rejections
    (capacity, timezone, empty jurisdictions, min > max, scenario mix)."""
    names = draw(st.lists(st.sampled_from(REGION_NAMES), min_size=1, max_size=4, unique=True))
    # One draw per spec decides whether its geography may be contradicted (a region's cloud region
    # anywhere, or a jurisdiction listing extra regions), so coherent specs stay common.
    geography = draw(st.sampled_from(["coherent"] * 4 + ["cloud_region_anywhere", "extra_listings"]))
    regions = []
    for name in names:
        min_nodes = draw(st.integers(0, 50))
        jurisdiction = draw(st.sampled_from(JURISDICTION_NAMES))
        regions.append(
            {
                "name": name,
                "cloud_region": draw(st.sampled_from(CLOUD_REGIONS))
                if geography == "cloud_region_anywhere"
                else HOME_CLOUD_REGION[jurisdiction],
                "jurisdiction": jurisdiction,
                "location": {"lat": draw(st.floats(-90, 90)), "lon": draw(st.floats(-180, 180))},
                "node_instance_type": "c6gn.xlarge",
                "sessions_per_node": draw(st.integers(1, 500)),
                "min_nodes": min_nodes,
                "max_nodes": draw(st.one_of(st.integers(max(1, min_nodes), 60), st.integers(1, 60))),
                "az_count": draw(st.integers(1, 6)),
                "node_boot_seconds": draw(st.integers(1, 600)),
            }
        )
    jurisdictions = []
    for jname in JURISDICTION_NAMES:
        home = [r["name"] for r in regions if r["jurisdiction"] == jname]
        extra = draw(st.lists(st.sampled_from(names), max_size=2, unique=True))
        listed = set(home) | (set(extra) if geography == "extra_listings" else set())
        allowed = names if jname == "global" else sorted(listed)
        jurisdictions.append({"name": jname, "allowed_regions": list(allowed), "legal_basis": "x"})
    codes = draw(st.lists(st.sampled_from(["DE", "ID", "SA", "US", "BR"]), min_size=1, max_size=4, unique=True))
    markets = []
    for code in codes:
        baseline = draw(st.integers(0, 3000))
        markets.append(
            {
                "code": code,
                "timezone": draw(
                    st.sampled_from(["Europe/Berlin", "Asia/Jakarta", "UTC", "America/Sao_Paulo", "Nowhere/Else"])
                ),
                "location": {"lat": draw(st.floats(-90, 90)), "lon": draw(st.floats(-180, 180))},
                "allowed_jurisdictions": draw(
                    st.lists(st.sampled_from(JURISDICTION_NAMES), min_size=1, max_size=2, unique=True)
                ),
                "demand": {
                    "baseline_sessions": baseline,
                    "peak_sessions": draw(st.integers(max(1, baseline), 6000)),
                    "peak_local_hour": draw(st.floats(0, 23.99)),
                    "scenario_mix": draw(
                        st.sampled_from(
                            [{"one_to_one": 1.0}, {"live_show": 0.5, "one_to_one": 0.5}, {"live_show": 0.7}]
                        )
                    ),
                },
            }
        )
    return {
        "name": "fuzz",
        "regions": regions,
        "jurisdictions": jurisdictions,
        "markets": markets,
        "scenarios": {
            "live_show": {"rtt_p95_ms": 300, "max_loss_ratio": 0.02, "max_jitter_ms": 40, "mean_session_minutes": 45},
            "one_to_one": {"rtt_p95_ms": 250, "max_loss_ratio": 0.02, "max_jitter_ms": 30, "mean_session_minutes": 6},
        },
    }


@settings(max_examples=300, deadline=None)
@given(random_specs())
def test_random_specs_are_valid_or_clearly_rejected(doc: dict[str, Any]) -> None:
    _check_outcome(doc)


def test_the_random_spec_generator_reaches_both_outcomes() -> None:
    """Guard for the test above: it must see valid specs (so invariants are checked), not only errors."""
    outcomes = {"valid": 0, "rejected": 0}

    # Derandomized: a guard of the generator itself must not depend on the run's luck. Hypothesis
    # still mixes in constants it finds in the modules imported so far, so the examples depend on
    # which tests ran before; 400 examples keep ~20 valid specs whatever the order (9 of 200 were seen).
    @settings(max_examples=400, deadline=None, database=None, derandomize=True)
    @given(random_specs())
    def classify(doc: dict[str, Any]) -> None:
        try:
            parse_environment(doc, "fuzz.yaml")
        except EnvironmentFileError:
            outcomes["rejected"] += 1
        else:
            outcomes["valid"] += 1

    classify()
    assert outcomes["valid"] >= 10, outcomes
    assert outcomes["rejected"] >= 10, outcomes
