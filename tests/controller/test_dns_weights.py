"""Integer Route 53 weights from commanded shares: never a forbidden region, never a served share
rounded to 0, otherwise within one step of 1/255 of the share (property tests over random shares)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.dns_weights import ForbiddenShareError, effective_shares, integer_weights
from controller.spec_file import load_environment

ROOT = Path(__file__).resolve().parents[2]
PROD = load_environment(ROOT / "environments" / "prod.yaml")
MARKETS = [m.code for m in PROD.markets]


@st.composite
def market_shares(draw):
    market = draw(st.sampled_from(MARKETS))
    allowed = PROD.allowed_regions(market)
    regions = draw(st.lists(st.sampled_from(allowed), unique=True, min_size=0, max_size=len(allowed)))
    shares = {r: draw(st.one_of(st.just(0.0), st.floats(1e-9, 1.0))) for r in regions}
    return market, shares


@settings(max_examples=500, deadline=None)
@given(market_shares())
def test_rounding_keeps_residency_and_every_served_share(case):
    market, shares = case
    weights = integer_weights(PROD, market, shares)
    allowed = set(PROD.allowed_regions(market))
    assert set(weights) == allowed  # every record the market may have, and only those
    assert all(0 <= w <= 255 for w in weights.values())
    served = {r for r, s in shares.items() if s > 0}
    assert all(weights[r] >= 1 for r in served)
    assert all(weights[r] == 0 for r in allowed - served)
    if served:
        assert sum(weights.values()) == 255
        total = sum(shares.values())
        for region in served:
            # within one step, except where the minimum of 1 (or taking it back) moved it
            assert abs(weights[region] - shares[region] / total * 255) <= 1 + len(served)


def test_a_forbidden_share_is_refused_not_rounded_away():
    with pytest.raises(ForbiddenShareError, match="region sin is outside its jurisdictions"):
        integer_weights(PROD, "ID", {"cgk": 0.99, "sin": 0.01})
    with pytest.raises(ForbiddenShareError, match="not in environment"):
        integer_weights(PROD, "XX", {"cgk": 1.0})
    with pytest.raises(ForbiddenShareError, match="not a finite share"):
        integer_weights(PROD, "DE", {"fra": float("nan")})


def test_a_tiny_allowed_share_still_gets_a_record_weight():
    weights = integer_weights(PROD, "DE", {"fra": 0.999, "dub": 0.001})
    assert weights["dub"] == 1 and weights["fra"] == 254 and weights["par"] == 0
    assert effective_shares(weights)["dub"] == pytest.approx(1 / 255)


def test_all_zero_weights_mean_even_answers():
    assert effective_shares({"fra": 0, "dub": 0}) == {"fra": 0.5, "dub": 0.5}
