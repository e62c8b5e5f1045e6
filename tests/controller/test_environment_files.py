"""The shipped environment files are valid and say what the product promises about residency."""

from pathlib import Path

import pytest

from controller.spec_file import load_environment

ENVIRONMENTS = sorted(Path(__file__).resolve().parents[2].joinpath("environments").glob("*.yaml"))


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
    assert {"ID", "VN", "TH", "PH", "MY", "SG", "IN", "SA", "AE", "EG", "NG", "ZA", "DE", "FR", "GB", "BR", "US"} <= codes
    assert spec.allowed_regions("ID") == ["cgk"]
    assert spec.allowed_regions("SA") == ["ruh"]
    assert set(spec.allowed_regions("DE")) == {"fra", "dub", "par"}
    assert len(spec.allowed_regions("BR")) == len(spec.regions)
