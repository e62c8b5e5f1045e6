"""Integer DNS weights (Route 53: 0-255 per record) from a market's commanded traffic shares.

Pure: used by the Route 53 actuator (`controller/adapters/route53_actuator.py`) before it writes,
and by its tests. Two promises the rounding keeps, whatever the shares:
- a region the market's jurisdictions forbid never gets a non-zero weight: a positive share on one
  is refused (`ForbiddenShareError`), never rounded away silently, since it means the plan is wrong;
- an allowed region with a positive share never rounds to 0 (it gets at least 1; the rounding is
  reported through `effective_shares`), so a small share a failover or the planner placed there
  still reaches it.
Otherwise largest remainders over a total of `WEIGHT_TOTAL`, so the integer shares are within 1/255
of the commanded ones (apart from the minimum of 1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from controller.spec import EnvironmentSpec

MAX_WEIGHT = 255
"""Route 53's largest record weight (botocore's ResourceRecordSetWeight: long, 0-255)."""
WEIGHT_TOTAL = 255


class ForbiddenShareError(ValueError):
    """A positive share on a region outside the market's jurisdictions (or unknown to the spec)."""


def integer_weights(spec: EnvironmentSpec, market: str, shares: Mapping[str, float]) -> dict[str, int]:
    """Region -> weight for every region the market may use (0 where it has no share)."""
    if market not in spec.market_by_code:
        raise ForbiddenShareError(f"market {market}: not in environment {spec.name}")
    allowed = spec.allowed_regions(market)
    positive = {}
    for region, share in shares.items():
        if not math.isfinite(share) or share < 0:
            raise ForbiddenShareError(f"market {market}: region {region}: share {share!r} is not a finite share")
        if share <= 0:
            continue
        if region not in allowed:
            raise ForbiddenShareError(
                f"market {market}: region {region} is outside its jurisdictions "
                f"({', '.join(spec.market_by_code[market].allowed_jurisdictions)}) but has share {share:g}"
            )
        positive[region] = share
    weights = dict.fromkeys(allowed, 0)
    total = sum(positive.values())
    if total <= 0:
        return weights
    exact = {r: s / total * WEIGHT_TOTAL for r, s in positive.items()}
    floor = {r: max(1, math.floor(v)) for r, v in exact.items()}
    missing = WEIGHT_TOTAL - sum(floor.values())
    # Largest remainders first (ties by name, so the result is deterministic).
    for region in sorted(exact, key=lambda r: (-(exact[r] - math.floor(exact[r])), r)):
        if missing <= 0:
            break
        floor[region] += 1
        missing -= 1
    while missing < 0:  # the minimum of 1 overshot: take it back from the largest weights
        region = max(floor, key=lambda r: (floor[r], r))
        floor[region] -= 1
        missing += 1
    weights.update(floor)
    return weights


def effective_shares(weights: Mapping[str, int]) -> dict[str, float]:
    """The shares a set of record weights gives (Route 53 answers all zero-weight records evenly)."""
    total = sum(weights.values())
    if total == 0:
        return {r: 1.0 / len(weights) for r in weights} if weights else {}
    return {r: w / total for r, w in weights.items()}


def market_record_name(market: str, media_domain: str) -> str:
    """The weighted record set of a market, as Route 53 names it (lower case, trailing dot).

    Shared by the Route 53 actuator (which writes the set) and infra's controller policy (which lets
    the controller change exactly these names).
    """
    return f"{market.lower()}.markets.{media_domain.rstrip('.').lower()}."
