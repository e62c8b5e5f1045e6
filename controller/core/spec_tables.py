"""Per-spec tables the core reads every tick: allowed market -> region pairs and their unloaded RTT.

Derived only from the EnvironmentSpec, so they are computed once per spec object and reused by
`health.py` and `allocation.py` (a 30 x 250 fleet has 7,500 pairs; recomputing great-circle
distances every tick would cost more than the solve). The cache keeps at most a few specs and
holds a reference to each, so an `id()` is never reused while its entry lives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from controller.spec import EnvironmentSpec


@dataclass(frozen=True)
class SpecTables:
    """Static arrays over the spec's allowed (market, region) pairs, in spec order."""

    region_names: list[str]
    region_index: dict[str, int]
    market_codes: list[str]
    market_index: dict[str, int]
    allowed_regions: dict[str, list[str]]  # market -> allowed regions, spec order
    pair_market: npt.NDArray[np.int64]  # pair -> market index
    pair_region: npt.NDArray[np.int64]  # pair -> region index
    pair_base_rtt_ms: npt.NDArray[np.float64]
    pair_index: dict[tuple[str, str], int]  # (market, region) -> pair
    base_rtt_ms: dict[tuple[str, str], float]  # allowed pairs only
    pair_mix: npt.NDArray[np.float64]  # (K, S) scenario share of the pair's market
    scenario_rtt_slo: npt.NDArray[np.float64]  # (S,)
    scenario_loss_slo: npt.NDArray[np.float64]  # (S,)
    scenario_jitter_slo: npt.NDArray[np.float64]  # (S,)
    pair_feasible: npt.NDArray[np.bool_]  # (K,) the unloaded RTT meets the mix-weighted RTT SLO
    market_boot_seconds: dict[str, int]  # market -> slowest node boot among its allowed regions (if any)


_CACHE: dict[int, tuple[EnvironmentSpec, SpecTables]] = {}
_CACHE_SIZE = 8


def spec_tables(spec: EnvironmentSpec) -> SpecTables:
    """The tables of `spec`, computed on first use."""
    cached = _CACHE.get(id(spec))
    if cached is not None and cached[0] is spec:
        return cached[1]
    tables = _build(spec)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[id(spec)] = (spec, tables)
    return tables


def _build(spec: EnvironmentSpec) -> SpecTables:
    region_names = [r.name for r in spec.regions]
    region_index = {name: i for i, name in enumerate(region_names)}
    market_codes = [m.code for m in spec.markets]
    market_index = {code: i for i, code in enumerate(market_codes)}
    allowed = {code: spec.allowed_regions(code) for code in market_codes}
    pair_market: list[int] = []
    pair_region: list[int] = []
    rtts: list[float] = []
    pair_index: dict[tuple[str, str], int] = {}
    base: dict[tuple[str, str], float] = {}
    for m, code in enumerate(market_codes):
        for region in allowed[code]:
            rtt = spec.base_rtt_ms(code, region)
            pair_index[(code, region)] = len(pair_market)
            pair_market.append(m)
            pair_region.append(region_index[region])
            rtts.append(rtt)
            base[(code, region)] = rtt
    scenarios = list(spec.scenarios)
    mix = np.array([[m.demand.scenario_mix.get(s, 0.0) for s in scenarios] for m in spec.markets], dtype=np.float64)
    rtt_slo = np.array([spec.scenarios[s].rtt_p95_ms for s in scenarios])
    pair_mix = mix[np.asarray(pair_market, dtype=np.int64)] if pair_market else np.zeros((0, len(scenarios)))
    base_severity = (pair_mix * (np.asarray(rtts)[:, None] / rtt_slo[None, :])).sum(axis=1)
    boot = {r.name: r.node_boot_seconds for r in spec.regions}
    return SpecTables(
        market_boot_seconds={code: max(boot[r] for r in regions) for code, regions in allowed.items() if regions},
        pair_mix=pair_mix,
        scenario_rtt_slo=rtt_slo,
        scenario_loss_slo=np.array([spec.scenarios[s].max_loss_ratio for s in scenarios]),
        scenario_jitter_slo=np.array([spec.scenarios[s].max_jitter_ms for s in scenarios]),
        pair_feasible=base_severity <= 1.0,
        region_names=region_names,
        region_index=region_index,
        market_codes=market_codes,
        market_index=market_index,
        allowed_regions=allowed,
        pair_market=np.asarray(pair_market, dtype=np.int64),
        pair_region=np.asarray(pair_region, dtype=np.int64),
        pair_base_rtt_ms=np.asarray(rtts, dtype=np.float64),
        pair_index=pair_index,
        base_rtt_ms=base,
    )


def base_rtt(spec: EnvironmentSpec, market: str, region: str) -> float:
    """Unloaded RTT of a path, from the cache for allowed pairs, else computed."""
    tables = spec_tables(spec)
    rtt = tables.base_rtt_ms.get((market, region))
    return rtt if rtt is not None else spec.base_rtt_ms(market, region)
