"""Seeded trace generator: plausible demand scenarios nobody has seen, in the shipped traces' YAML format.

    python -m sim.traces.generator surge --seed 7 > my-surge.yaml
    edgectl sim run --env environments/prod.yaml --trace-file my-surge.yaml --policy edgeplane

Kinds (the surprises issue 19 names), each in a residency-bound market (ID: cgk only) or an open one
(TH, SG: any region; DE, FR: any EU region), chosen by the seed:
- `surge`: an unannounced 2-4x jump with a 5-20 min ramp, 30-90 min long, at any hour;
- `mega_sale`: an announced 2-5x sale at local midnight, 5-10 min ramp, an hour;
- `odd_hour_sale`: an announced 2-3x sale between 01:00 and 05:00 local;
- `growth`: 10-40% growth over the whole trace in two to five markets, unannounced;
- `moving_peak`: one market's evening peak moved 2-4 h earlier or later on day 2, unannounced.
Multipliers are bounded so the residency-bound market's demand stays within what its one region can
serve at its busiest hour of the event (a trace the fleet cannot serve at all tests nothing).
Only the markets present in every shipped environment are used (DE, FR, ID, SG, TH), so a generated
trace runs on local, staging and prod. Same kind and seed, same file.
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

KINDS = ("surge", "mega_sale", "odd_hour_sale", "growth", "moving_peak")
OPEN_MARKETS = ("TH", "SG", "DE", "FR")
RESIDENCY_BOUND = "ID"
UTC_OFFSET_HOURS = {"ID": 7, "TH": 7, "SG": 8, "DE": 1, "FR": 1}
"""Standard-time offsets of the markets (November: no DST), to place events on local clocks."""
QUIET_LOCAL_HOURS = (3.0, 15.0)
"""Local hours (from, to) at which ID's demand is below ~40% of its peak: where a residency-bound
surge can be up to 4x and still fit cgk."""


def _local_to_offset_minutes(market: str, local_hour: float, day: int = 0) -> float:
    """Minutes from a midnight-UTC trace start to `local_hour` on the market's clock on `day`."""
    return ((local_hour - UTC_OFFSET_HOURS[market]) % 24 + 24 * day) * 60


def generate_trace(kind: str, seed: int, *, start: datetime | None = None) -> dict[str, Any]:
    """The trace file (as the YAML mapping) of `kind` for `seed`."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})")
    rng = random.Random(f"{kind}/{seed}")
    begin = start or datetime(2026, 11, 9, tzinfo=UTC) + timedelta(days=rng.randrange(7))
    bound = rng.random() < 0.5
    market = RESIDENCY_BOUND if bound else rng.choice(OPEN_MARKETS)
    where = "residency-bound" if bound else "open"
    hours = 24
    events: list[dict[str, Any]] = []
    if kind == "surge":
        local = rng.uniform(*QUIET_LOCAL_HOURS) if bound else rng.uniform(0, 24)
        multiplier = round(rng.uniform(2.0, 4.0), 2)
        events.append(
            _event(market, _local_to_offset_minutes(market, local), rng.randint(5, 20), multiplier, rng.randint(30, 90))
        )
        events[-1]["announced"] = False
        text = f"unannounced {multiplier}x {market} surge ({where}) at {local:04.1f} h local"
    elif kind == "mega_sale":
        multiplier = round(rng.uniform(1.5, 2.2) if bound else rng.uniform(2.0, 5.0), 2)
        events.append(_event(market, _local_to_offset_minutes(market, 24.0), rng.randint(5, 10), multiplier, 60))
        text = f"announced {multiplier}x {market} mega-sale ({where}) at local midnight"
    elif kind == "odd_hour_sale":
        local = rng.uniform(3.0, 5.0) if bound else rng.uniform(1.0, 5.0)
        multiplier = round(rng.uniform(2.0, 3.0), 2)
        events.append(
            _event(market, _local_to_offset_minutes(market, local), rng.randint(5, 10), multiplier, rng.randint(30, 60))
        )
        text = f"announced {multiplier}x {market} sale ({where}) at {local:04.1f} h local"
    elif kind == "growth":
        hours = 48
        growth = round(rng.uniform(1.1, 1.4), 3)
        chosen = rng.sample((RESIDENCY_BOUND, *OPEN_MARKETS), rng.randint(2, 5))
        for code in sorted(chosen):
            events.append(_event(code, 0, hours * 60, growth, hours * 60) | {"announced": False})
        text = f"{growth - 1:.0%} growth over {hours} h in {', '.join(sorted(chosen))} (unannounced)"
    else:  # moving_peak
        hours = 48
        shift = rng.choice((-1, 1)) * rng.uniform(2.0, 4.0)
        usual = 21.0
        low = _local_to_offset_minutes(market, usual - 1, day=1)
        high = _local_to_offset_minutes(market, usual + shift - 1, day=1)
        events.append(_event(market, low, 60, 0.7, 120) | {"announced": False})
        events.append(_event(market, high, 60, 1.45, 150) | {"announced": False})
        text = f"{market} ({where}) evening peak moved {shift:+.1f} h on day 2 (unannounced)"
    return {
        "name": f"generated-{kind.replace('_', '-')}-{seed}",
        "version": 1,
        "description": f"Generated (kind {kind}, seed {seed}): {text}.",
        "start": begin.isoformat().replace("+00:00", "Z"),
        "duration_hours": hours,
        "events": events,
    }


def _event(market: str, offset: float, ramp: int, multiplier: float, duration: int) -> dict[str, Any]:
    return {
        "market": market,
        "start_offset_minutes": round(offset, 1),
        "ramp_minutes": ramp,
        "peak_multiplier": multiplier,
        "duration_minutes": duration,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sys.stdout.write(yaml.safe_dump(generate_trace(args.kind, args.seed), sort_keys=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
