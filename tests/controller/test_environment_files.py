"""The shipped environment files are valid and say what the product promises about residency."""

from pathlib import Path

import pytest
import yaml

from controller.spec import BasisKind, EnvironmentSpec, residency_geography
from controller.spec_file import load_environment

ENVIRONMENTS_DIR = Path(__file__).resolve().parents[2] / "environments"
ENVIRONMENTS = sorted(ENVIRONMENTS_DIR.glob("*.yaml"))


@pytest.mark.parametrize("path", ENVIRONMENTS, ids=lambda p: p.stem)
def test_shipped_environment_is_valid(path: Path) -> None:
    spec = load_environment(path)
    assert spec.name == path.stem


def test_prod_covers_the_promised_regions_and_residency() -> None:
    spec = load_environment(Path(__file__).resolve().parents[2] / "environments" / "prod.yaml")
    assert len(spec.regions) >= 8
    prefixes = {r.cloud_region.split("-")[0] for r in spec.regions}
    assert {"eu", "me", "ap", "af", "sa", "us"} <= prefixes
    codes = {m.code for m in spec.markets}
    assert {
        "ID",
        "VN",
        "TH",
        "PH",
        "MY",
        "SG",
        "IN",
        "SA",
        "AE",
        "EG",
        "NG",
        "ZA",
        "DE",
        "FR",
        "GB",
        "BR",
        "US",
    } <= codes
    assert spec.allowed_regions("ID") == ["cgk"]
    assert spec.allowed_regions("SA") == ["ruh"]
    assert set(spec.allowed_regions("DE")) == {"fra", "dub", "par"}
    assert len(spec.allowed_regions("BR")) == len(spec.regions)


def test_uk_users_are_under_uk_law_not_gdpr_and_their_eea_regions_are_stated_as_company_policy() -> None:
    spec = load_environment(ENVIRONMENTS_DIR / "prod.yaml")
    gb = spec.market_by_code["GB"]
    assert gb.allowed_jurisdictions == ["uk"]
    uk = spec.jurisdiction_by_name["uk"]
    assert uk.basis_kind is BasisKind.COMPANY_POLICY
    assert "UK GDPR" in uk.legal_basis and "Data Protection Act 2018" in uk.legal_basis
    assert "adequacy regulations" in uk.legal_basis
    # Post-Brexit the UK is not in the EEA: the eu rule (GDPR) no longer speaks for UK users.
    assert not any("eu" in m.allowed_jurisdictions and m.code == "GB" for m in spec.markets)
    countries = {
        residency_geography.country_of(spec.region_by_name[r].cloud_region) for r in spec.allowed_regions("GB")
    }
    assert countries <= {"GB"} | residency_geography.EU_EEA_COUNTRIES
    assert set(spec.allowed_regions("GB")) == {"fra", "dub", "par"}


@pytest.mark.parametrize("path", ENVIRONMENTS, ids=lambda p: p.stem)
def test_every_shipped_jurisdiction_states_whether_its_rule_is_law(path: Path) -> None:
    # Read raw: the model's default must not be what answers the question for a shipped file.
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    for jurisdiction in raw["jurisdictions"]:
        assert jurisdiction.get("basis_kind") in {kind.value for kind in BasisKind}, jurisdiction["name"]
        assert "GDPR (EU 2016/679)" not in jurisdiction["legal_basis"]  # the old, GB-covering wording


def test_basis_kind_is_described_in_the_schema() -> None:
    schema = EnvironmentSpec.model_json_schema()
    field = schema["$defs"]["JurisdictionSpec"]["properties"]["basis_kind"]
    assert "company_policy" in field["description"] and field["default"] == "company_policy"
