"""`assess_backbone` (numpy over the observations) gives exactly what the per-observation rule of its module
doc gives: the worse observation of a path wins (both directions one path), never below the unloaded RTT,
an unknown metric changes nothing, unknown regions and self-paths are ignored."""

from __future__ import annotations

import random

import numpy as np

from controller.core.backbone_health import SICK_RTT_MARGIN_MS, assess_backbone, unloaded_backbone_rtt
from controller.snapshot import BackboneObservation
from controller.spec import BackboneModel, EnvironmentSpec


def rule_one_by_one(spec: EnvironmentSpec, observations: list[BackboneObservation]) -> tuple[np.ndarray, ...]:
    """The module doc's rule, one observation at a time (the loop assess_backbone replaced)."""
    backbone = spec.sessions.backbone if spec.sessions is not None else BackboneModel()
    base = unloaded_backbone_rtt(spec)
    n = len(spec.regions)
    index = {r.name: i for i, r in enumerate(spec.regions)}
    rtt, loss, observed = base.copy(), np.zeros((n, n)), np.zeros((n, n), dtype=bool)
    for sample in observations:
        i, j = index.get(sample.region), index.get(sample.peer_region)
        if i is None or j is None or i == j:
            continue
        if sample.rtt_ms is not None:
            worse = max(sample.rtt_ms, base[i, j], rtt[i, j] if observed[i, j] else 0.0)
            rtt[i, j] = rtt[j, i] = worse
        if sample.loss_ratio is not None:
            loss[i, j] = loss[j, i] = max(loss[i, j], sample.loss_ratio)
        observed[i, j] = observed[j, i] = True
    failed = (loss >= backbone.sick_loss_ratio) | (rtt >= backbone.sick_rtt_factor * base + SICK_RTT_MARGIN_MS)
    np.fill_diagonal(failed, False)
    return rtt, loss, failed, observed


def test_assess_backbone_matches_the_rule_one_observation_at_a_time(prod_spec: EnvironmentSpec) -> None:
    rng = random.Random(26)
    names = [r.name for r in prod_spec.regions] + ["atlantis"]
    for _ in range(200):
        observations = [
            BackboneObservation(
                region=rng.choice(names),
                peer_region=rng.choice(names),
                rtt_ms=rng.choice([None, rng.uniform(0, 400), rng.uniform(0, 20)]),
                loss_ratio=rng.choice([None, rng.random() * 0.1, 0.0, 1.0]),
            )
            for _ in range(rng.randint(0, 120))
        ]
        health = assess_backbone(prod_spec, observations)
        rtt, loss, failed, observed = rule_one_by_one(prod_spec, observations)
        assert np.array_equal(health.rtt_ms, rtt) and np.array_equal(health.loss_ratio, loss)
        assert np.array_equal(health.failed, failed) and np.array_equal(health.observed, observed)
    assert assess_backbone(prod_spec, []).failed_links() == []
