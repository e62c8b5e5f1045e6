"""The A/B tool's variants set every lever explicitly, so `off` means off whatever the environment enables."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.capacity_levers_ab import residency_bound_regions, variant_spec
from controller.spec_file import load_environment

PROD = load_environment(Path(__file__).resolve().parents[2] / "environments" / "prod.yaml")


def test_off_switches_off_what_the_environment_enables():
    assert PROD.scaling.drain_order and PROD.scaling.drain_move_calls_below > 0
    off = variant_spec(PROD, "off").scaling
    assert not off.drain_order and off.drain_move_calls_below == 0 and off.uncertainty_quantile == 0.0


def test_parts_set_their_lever_and_warm_pools_go_to_residency_bound_regions_only():
    spec = variant_spec(PROD, "on+move5+q90+remaining+warm150")
    assert spec.scaling.drain_order and spec.scaling.drain_move_calls_below == 5
    assert spec.scaling.uncertainty_quantile == pytest.approx(0.9)
    assert spec.scaling.draining_remaining_horizon_seconds == PROD.scaling.scale_in_cooldown_seconds
    assert residency_bound_regions(PROD) == {"cgk", "ruh"}
    assert {r.name for r in spec.regions if r.warm_pool is not None} == {"cgk", "ruh"}
    paced = variant_spec(PROD, "on+cool300+step400").scaling
    assert paced.scale_in_cooldown_seconds == 300 and paced.max_step_nodes == 400
    with pytest.raises(ValueError, match="unknown variant part"):
        variant_spec(PROD, "on+turbo")
