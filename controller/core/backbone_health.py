"""Backbone health: the QoS of every inter-region path, as the cross-border placement prices it.

Called by `controller/core/cross_border.py` (through `plan_cross_border`'s `backbone` argument) with
the snapshot's `backbone` observations (`edge_backbone_rtt_ms` / `edge_backbone_loss_ratio`, see
`controller/metric_names.py`). Per path (both directions count as one; the worse observation wins):

- unobserved: its unloaded RTT from the spec (`EnvironmentSpec.backbone_rtt_ms`), no loss;
- observed: the observed p95 RTT (never below the unloaded one) and loss, which the placement prices;
- failed: loss at or above `sessions.backbone.sick_loss_ratio`, or RTT at or above
  `sick_rtt_factor` x unloaded + 20 ms: no session is cascaded over it, so the cross-region sessions
  on it move to other region pairs their markets allow, or are reported unserved.

A stale snapshot keeps its last verdicts out of it: the caller passes no observations (fail static:
the placement then plans on the unloaded backbone, never on "zero loss" read from missing data).
Pure: numpy over the spec's regions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from controller.snapshot import BackboneObservation
from controller.spec import BackboneModel, EnvironmentSpec

FloatArray = npt.NDArray[np.float64]

SICK_RTT_MARGIN_MS = 20.0
"""Added to sick_rtt_factor x unloaded RTT: a short path tripling from 4 to 12 ms is not sick."""


@dataclass(frozen=True)
class BackboneHealth:
    """Per region pair (R x R, symmetric): RTT and loss to plan with, and which paths are failed."""

    region_names: list[str]
    rtt_ms: FloatArray
    loss_ratio: FloatArray
    failed: npt.NDArray[np.bool_]
    observed: npt.NDArray[np.bool_]

    def failed_links(self) -> list[tuple[str, str]]:
        a, b = np.nonzero(np.triu(self.failed, k=1))
        return [(self.region_names[i], self.region_names[j]) for i, j in zip(a.tolist(), b.tolist(), strict=True)]


_BASE_CACHE: dict[int, tuple[EnvironmentSpec, FloatArray]] = {}


def unloaded_backbone_rtt(spec: EnvironmentSpec) -> FloatArray:
    """R x R unloaded backbone RTT (0 on the diagonal), computed once per spec object."""
    cached = _BASE_CACHE.get(id(spec))
    if cached is not None and cached[0] is spec:
        return cached[1]
    backbone = spec.sessions.backbone if spec.sessions is not None else BackboneModel()
    lat = np.radians([r.location.lat for r in spec.regions])
    lon = np.radians([r.location.lon for r in spec.regions])
    dphi = lat[None, :] - lat[:, None]
    dlambda = lon[None, :] - lon[:, None]
    a = np.sin(dphi / 2) ** 2 + np.cos(lat[:, None]) * np.cos(lat[None, :]) * np.sin(dlambda / 2) ** 2
    km = 2 * 6371.0 * np.arcsin(np.minimum(1.0, np.sqrt(a)))
    rtt = backbone.base_rtt_ms + km * backbone.rtt_ms_per_km
    index = {r.name: i for i, r in enumerate(spec.regions)}
    for link in backbone.measured:
        i, j = index.get(link.regions[0]), index.get(link.regions[1])
        if i is not None and j is not None:
            rtt[i, j] = rtt[j, i] = link.rtt_ms
    np.fill_diagonal(rtt, 0.0)
    if len(_BASE_CACHE) >= 8:
        _BASE_CACHE.pop(next(iter(_BASE_CACHE)))
    _BASE_CACHE[id(spec)] = (spec, rtt)
    return rtt


_INDEX_CACHE: dict[int, tuple[EnvironmentSpec, dict[str, int]]] = {}


def _region_index(spec: EnvironmentSpec) -> dict[str, int]:
    """Region name -> index in spec order, computed once per spec object."""
    cached = _INDEX_CACHE.get(id(spec))
    if cached is not None and cached[0] is spec:
        return cached[1]
    index = {r.name: i for i, r in enumerate(spec.regions)}
    if len(_INDEX_CACHE) >= 8:
        _INDEX_CACHE.pop(next(iter(_INDEX_CACHE)))
    _INDEX_CACHE[id(spec)] = (spec, index)
    return index


def assess_backbone(spec: EnvironmentSpec, observations: Iterable[BackboneObservation] = ()) -> BackboneHealth:
    """The backbone to plan with: the spec's unloaded paths, overridden by what was observed (module doc)."""
    backbone = spec.sessions.backbone if spec.sessions is not None else BackboneModel()
    base = unloaded_backbone_rtt(spec)
    regions = len(spec.regions)
    rtt = base.copy()
    loss = np.zeros((regions, regions))
    observed = np.zeros((regions, regions), dtype=bool)
    samples = list(observations)
    if samples:
        # One pass over the models for their fields, then numpy: a tick at 30 regions has ~900 paths.
        index = _region_index(spec)
        i = np.array([index.get(o.region, -1) for o in samples], dtype=np.int64)
        j = np.array([index.get(o.peer_region, -1) for o in samples], dtype=np.int64)
        sample_rtt = np.array([np.nan if o.rtt_ms is None else o.rtt_ms for o in samples], dtype=np.float64)
        sample_loss = np.array([np.nan if o.loss_ratio is None else o.loss_ratio for o in samples], dtype=np.float64)
        keep = (i >= 0) & (j >= 0) & (i != j)
        i, j, sample_rtt, sample_loss = i[keep], j[keep], sample_rtt[keep], sample_loss[keep]
        both = np.concatenate([i * regions + j, j * regions + i])  # both directions are one path
        # The worse observation wins, never below the unloaded RTT; an unknown metric changes nothing.
        np.maximum.at(rtt.reshape(-1), both, np.nan_to_num(np.tile(sample_rtt, 2), nan=-np.inf))
        np.maximum.at(loss.reshape(-1), both, np.nan_to_num(np.tile(sample_loss, 2), nan=0.0))
        observed.reshape(-1)[both] = True
    failed = (loss >= backbone.sick_loss_ratio) | (rtt >= backbone.sick_rtt_factor * base + SICK_RTT_MARGIN_MS)
    np.fill_diagonal(failed, False)
    return BackboneHealth([r.name for r in spec.regions], rtt, loss, failed, observed)
