"""Backbone series -> BackboneObservations: the observer's reading of `edge_backbone_rtt_ms` and
`edge_backbone_loss_ratio` (labels region, peer_region).

Called by `controller/adapters/prometheus_observer.py` on the answer of its `paths` query (the backbone
names join that query's `__name__` regex, so the query count per tick stays constant). Samples of
unknown regions are left out; implausible values (infinite, beyond `PhysicalBounds`, loss above 1)
are dropped and counted by the observer's plausibility filter, so they read as unknown, never as
"zero loss". Both directions of a pair are kept: the health model takes the worse.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, Protocol

from controller import metric_names as m
from controller.snapshot import BackboneObservation, PhysicalBounds

BACKBONE_FAMILY = (m.BACKBONE_RTT_MS, m.BACKBONE_LOSS_RATIO)
_RANGES = {m.BACKBONE_RTT_MS: (0.0, PhysicalBounds.MAX_MILLISECONDS), m.BACKBONE_LOSS_RATIO: (0.0, 1.0)}


class _Filter(Protocol):
    def keep(
        self, metric: str, labels: Mapping[str, str], value: float | None, low: float, high: float
    ) -> float | None: ...


def _value(sample: Mapping[str, Any]) -> float | None:
    try:
        number = float(sample["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def backbone_observations(
    samples: list[dict[str, Any]], known_regions: set[str], plausible: _Filter
) -> list[BackboneObservation]:
    """One observation per (region, peer_region) seen among `samples` (other families are ignored)."""
    values: dict[tuple[str, str], dict[str, float | None]] = defaultdict(dict)
    for sample in samples:
        labels = sample.get("metric", {})
        name = labels.get("__name__", "")
        if name not in _RANGES:
            continue
        region, peer = labels.get("region", ""), labels.get("peer_region", "")
        if region not in known_regions or peer not in known_regions or region == peer:
            continue
        values[(region, peer)][name] = plausible.keep(name, labels, _value(sample), *_RANGES[name])
    return [
        BackboneObservation(
            region=region,
            peer_region=peer,
            rtt_ms=found.get(m.BACKBONE_RTT_MS),
            loss_ratio=found.get(m.BACKBONE_LOSS_RATIO),
        )
        for (region, peer), found in sorted(values.items())
    ]
