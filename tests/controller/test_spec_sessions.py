"""The session model of the spec (`controller/spec/sessions.py`): shipped files load, bad input is
`FILE: field.path: reason` with no traceback, and the backbone RTT is derived from the geography."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.spec import Scenario
from controller.spec_file import EnvironmentFileError, load_environment, parse_environment

ROOT = Path(__file__).resolve().parents[2]
EDGECTL = str(Path(sys.executable).parent / "edgectl")


def _prod() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "environments" / "prod.yaml").read_text())
    return data


def _problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(EnvironmentFileError) as caught:
        parse_environment(data, file="prod.yaml")
    return [str(p) for p in caught.value.problems]


def test_prod_has_a_cross_border_mix_between_markets_with_different_rules() -> None:
    spec = load_environment(ROOT / "environments" / "prod.yaml")
    assert spec.sessions is not None
    pairs = {(f.host, f.guest) for f in spec.sessions.cross_market}
    assert {("SG", "ID"), ("DE", "ID"), ("AE", "SA"), ("SA", "AE")} <= pairs
    assert set(spec.sessions.shapes) == set(Scenario)
    assert spec.sessions.shapes[Scenario.ONE_TO_ONE].hosts_max == 2


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda d: d["sessions"]["cross_market"][0].update(guest="XX"),
            "prod.yaml: sessions.cross_market[0].guest: unknown market 'XX'",
        ),
        (
            lambda d: d["sessions"]["cross_market"][0].update(guest="SG"),
            "prod.yaml: sessions.cross_market[0].guest: guest SG is the host market: a flow crosses a border",
        ),
        (
            lambda d: d["sessions"]["cross_market"][0]["scenario_mix"].update(one_to_one=0.9),
            "prod.yaml: sessions.cross_market[0].scenario_mix: scenario shares must sum to 1, got 1.2",
        ),
        (
            lambda d: d["sessions"]["cross_market"][0].update(share=1.5),
            "prod.yaml: sessions.cross_market[0].share: Input should be less than or equal to 1",
        ),
        (
            lambda d: d["sessions"]["cross_market"].append(
                {"host": "SG", "guest": "TH", "share": 0.8, "scenario_mix": {"one_to_one": 1.0}}
            ),
            "prod.yaml: sessions.cross_market[16].share: market SG's cross-market shares add up to 1.1, more than "
            "all its sessions",
        ),
        (
            lambda d: d["sessions"]["shapes"]["multi_host"].update(hosts_min=7),
            "prod.yaml: sessions.shapes.multi_host.hosts_min: hosts_min 7 is greater than hosts_max 6",
        ),
        (
            lambda d: d["sessions"]["backbone"].update(measured=[{"regions": ["fra", "nowhere"], "rtt_ms": 5.0}]),
            "prod.yaml: sessions.backbone.measured[0].regions[1]: unknown region 'nowhere'",
        ),
        (
            lambda d: d["sessions"]["shapes"]["one_to_one"].update(e2e_rtt_p95_ms=-1.0),
            "prod.yaml: sessions.shapes.one_to_one.e2e_rtt_p95_ms: Input should be greater than 0",
        ),
        (
            lambda d: d["sessions"].update(cross_markets=[]),
            "prod.yaml: sessions.cross_markets: unknown field (not part of the EnvironmentSpec; check the spelling)",
        ),
    ],
)
def test_bad_session_input_names_file_field_and_reason(edit: Any, expected: str) -> None:
    data = _prod()
    edit(data)
    assert _problems(data) == [expected]


def test_edgectl_env_validate_reports_a_bad_flow_without_a_traceback(tmp_path: Path) -> None:
    data = _prod()
    data["sessions"]["cross_market"][2]["host"] = "QQ"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    result = subprocess.run([EDGECTL, "env", "validate", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"{bad}: sessions.cross_market[2].host: unknown market 'QQ'"]
    assert "Traceback" not in result.stderr + result.stdout


def test_backbone_rtt_is_derived_from_geography_and_a_measurement_wins() -> None:
    spec = load_environment(ROOT / "environments" / "prod.yaml")
    near, far = spec.backbone_rtt_ms("sin", "kul"), spec.backbone_rtt_ms("cgk", "fra")
    assert spec.backbone_rtt_ms("fra", "fra") == 0.0
    assert spec.backbone_rtt_ms("fra", "cgk") == far
    # Singapore-Kuala Lumpur ~316 km: 2 + 0.015 x 316 = ~6.7 ms; Jakarta-Frankfurt ~11,000 km: ~167 ms.
    assert 6.0 < near < 7.5
    assert 160.0 < far < 175.0
    data = _prod()
    data["sessions"]["backbone"]["measured"] = [{"regions": ["fra", "cgk"], "rtt_ms": 150.0}]
    assert parse_environment(data).backbone_rtt_ms("cgk", "fra") == 150.0


def test_an_environment_without_sessions_still_loads() -> None:
    data = _prod()
    del data["sessions"]
    assert parse_environment(data).sessions is None
