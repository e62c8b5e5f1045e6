"""Fuzzing `edgectl plan` through the real CLI entry point, and residency over every plan it makes.

Hypothesis generates the inputs itself, so the next class of bad input is caught here rather than
by a user (issue 16):
- snapshots shaped by the FleetSnapshot schema with extreme values in every numeric and time field
  (wrapped 2^64-1 counters, 1e16..1e30 sessions, Infinity/NaN, integers beyond float range,
  thousands of digits, years 1 and 9999), missing and extra fields, another environment;
- raw bytes, and valid snapshots with bytes spliced in;
- plausible but extreme fleets (demand at the plausibility bound, sessions observed outside the
  jurisdiction, weights pointing outside it) planned directly.
Each CLI run must end in exit 0 (a plan) or exit 1 with `FILE: field.path: reason` lines, never a
traceback; every plan keeps every market within its jurisdictions and its certificate verifies.
Bounded: a fixed number of examples, no deadline per example (a busy 2-core machine).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from controller.core.planner import make_plan
from controller.core.residency_certificate import verify_residency
from controller.plan import Plan
from controller.snapshot import PathObservation, SpecBounds
from controller.spec_file import load_environment
from edgectl.cli.main import app
from tests.controller.core.conftest import ENVIRONMENTS, NOON
from tests.fakes.fleet_snapshots import healthy_paths, region_observation, snapshot_for

LOCAL = ENVIRONMENTS / "local.yaml"
SPEC = load_environment(LOCAL)
ALLOWED = {m.code: set(SPEC.allowed_regions(m.code)) for m in SPEC.markets}
BASE = json.loads(
    snapshot_for(SPEC, NOON, {"DE": 700, "FR": 500, "ID": 1200, "SG": 300, "TH": 400}, nodes=3).model_dump_json()
)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)

# Raw JSON number texts the standard library cannot even turn into a float or an int by default.
RAW_NUMBERS = ["Infinity", "-Infinity", "NaN", "1" + "0" * 400, "9" * 5001, "1e400", "-0", "18446744073709551615"]
TIMES = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-12:00",
    "1970-01-01T00:00:00Z",
    "2026-03-02T12:00:00Z",
    "2026-03-02T12:00:00",  # naive
    "yesterday",
]
MARKER = "@@RAW{}@@"


def extreme_numbers() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.integers(min_value=-(2**70), max_value=2**70),
        st.sampled_from([0, 1, 2**53, 2**63 - 1, 2**64 - 1, 10**16, 10**30]),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from([1e16, 1e30, 1.7976931348623157e308, -1.0, 5e-324]),
        st.sampled_from([MARKER.format(i) for i in range(len(RAW_NUMBERS))]),
    )


def leaf_paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(doc, dict):
        return [p for k, v in doc.items() for p in leaf_paths(v, (*prefix, k))] or [prefix]
    if isinstance(doc, list):
        return [p for i, v in enumerate(doc) for p in leaf_paths(v, (*prefix, i))] or [prefix]
    return [prefix]


LEAVES = [p for p in leaf_paths(BASE) if p]


def set_leaf(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        doc = doc[part]
    doc[path[-1]] = value


def delete_leaf(doc: Any, path: tuple[Any, ...]) -> None:
    for part in path[:-1]:
        doc = doc[part]
    if isinstance(doc, dict):
        doc.pop(path[-1], None)


@st.composite
def schema_snapshots(draw: st.DrawFn) -> str:
    """A snapshot document from the schema's own shape, with a few fields pushed to extremes."""
    doc = json.loads(json.dumps(BASE))
    for _ in range(draw(st.integers(1, 6))):
        path = draw(st.sampled_from(LEAVES))
        action = draw(st.sampled_from(["number", "number", "time", "delete", "string", "nest"]))
        if action == "number":
            set_leaf(doc, path, draw(extreme_numbers()))
        elif action == "time":
            set_leaf(doc, path, draw(st.sampled_from(TIMES)))
        elif action == "delete":
            delete_leaf(doc, path)
        elif action == "string":
            set_leaf(doc, path, draw(st.text(max_size=20)))
        else:
            set_leaf(doc, path, draw(st.recursive(st.none(), lambda x: st.lists(x, max_size=2), max_leaves=5)))
    if draw(st.booleans()):
        doc["environment"] = draw(st.sampled_from(["local", "prod", "staging", ""]))
    if draw(st.integers(0, 9)) == 0:
        doc["surprise"] = 1
    text = json.dumps(doc)
    for i, raw in enumerate(RAW_NUMBERS):
        text = text.replace(f'"{MARKER.format(i)}"', raw)
    return text


@st.composite
def spliced_bytes(draw: st.DrawFn) -> bytes:
    """A valid snapshot with random bytes written over a random stretch, or nothing valid at all."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=512))
    data = json.dumps(BASE).encode()
    start = draw(st.integers(0, len(data)))
    return data[:start] + draw(st.binary(min_size=1, max_size=16)) + data[start + draw(st.integers(0, 16)) :]


def run_plan(tmp_path: Path, content: bytes, name: str) -> Any:
    snapshot = tmp_path / name
    snapshot.write_bytes(content)
    result = CliRunner().invoke(app, ["plan", "--env", str(LOCAL), "--snapshot", str(snapshot), "--json"])
    # An exception other than the exit itself is what a console script prints as a traceback.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1), result.output
    if result.exit_code == 1:
        lines = result.stderr.splitlines()
        assert lines, "exit 1 without a reason"
        pattern = re.compile(rf"^{re.escape(str(snapshot))}: [^:]+(: |:$).*", re.DOTALL)
        assert all(pattern.match(line) for line in lines), result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""
    else:
        assert_residency(Plan.model_validate_json(result.stdout))
    return result


def assert_residency(plan: Plan) -> None:
    for market, shares in plan.weights.items():
        assert {r for r, share in shares.items() if share > 0} <= ALLOWED[market], (market, shares)
    assert verify_residency(SPEC, plan) == []


@FUZZ
@given(text=schema_snapshots())
def test_plan_over_schema_shaped_extreme_snapshots(tmp_path_factory, text: str) -> None:
    run_plan(tmp_path_factory.mktemp("fuzz"), text.encode(), "snapshot.json")


@FUZZ
@given(content=spliced_bytes())
def test_plan_over_raw_and_spliced_bytes(tmp_path_factory, content: bytes) -> None:
    run_plan(tmp_path_factory.mktemp("fuzz"), content, "snapshot.json")


@settings(max_examples=40, deadline=None, database=None)
@given(data=st.data())
def test_residency_holds_in_every_plan_of_an_extreme_but_plausible_fleet(data: st.DataObject) -> None:
    """Demand up to the plausibility bound, regions empty or at 10x max_nodes, sessions and weights
    observed outside the jurisdictions: the plan stays inside them and its certificate verifies."""
    bounds = SpecBounds.for_spec(SPEC)
    demand = {
        m.code: data.draw(st.one_of(st.floats(0, 3000), st.floats(0, bounds.market_sessions)), label=m.code)
        for m in SPEC.markets
    }
    regions = [
        region_observation(
            SPEC,
            r.name,
            NOON,
            ready=data.draw(st.sampled_from([0, 1, r.max_nodes, 3 * r.max_nodes]), label=r.name),
            draining=data.draw(st.integers(0, 3)),
        )
        for r in SPEC.regions
    ]
    codes = [m.code for m in SPEC.markets]
    names = [r.name for r in SPEC.regions] + ["xyz"]
    strays = data.draw(
        st.lists(
            st.builds(
                PathObservation,
                market=st.sampled_from(codes),
                region=st.sampled_from(names),
                rtt_ms=st.none() | st.floats(0, 600_000),
                active_sessions=st.integers(0, 10_000),
            ),
            max_size=4,
        )
    )
    weights = {
        code: data.draw(st.dictionaries(st.sampled_from(names), st.floats(0, 1), max_size=3), label=f"w{code}")
        for code in codes
    }
    snapshot = snapshot_for(
        SPEC,
        NOON,
        demand,
        regions=regions,
        weights=weights,
        paths=[*healthy_paths(SPEC), *strays],
        stale=data.draw(st.booleans()),
    )
    plan = make_plan(SPEC, snapshot, None, NOON)
    assert_residency(plan)
    observed = {(v.market, v.region) for v in plan.residency_violations}
    for path in strays:
        if path.region not in ALLOWED[path.market] and path.active_sessions > 0:
            assert (path.market, path.region) in observed
