"""Steering gates for tests: the real SteeringAuthority over an in-memory (or file) store and any actuator.

The workflow tests act on the simulated fleet or the workflow fake fleet through the same gate the
worker uses (`edgectl/bootstrap.py`), so leases, fences and the journal are exercised, not faked.
"""

from __future__ import annotations

from pathlib import Path

from controller.adapters.steering_authority import SteeringAuthority
from controller.adapters.steering_store import FileSteeringStore, MemorySteeringStore
from controller.ports import Actuator
from controller.spec import EnvironmentSpec


def gate(spec: EnvironmentSpec, actuator: Actuator, steering_file: Path | None = None) -> SteeringAuthority:
    store = FileSteeringStore(steering_file, spec.name) if steering_file else MemorySteeringStore(spec.name)
    return SteeringAuthority(store, actuator, spec)
