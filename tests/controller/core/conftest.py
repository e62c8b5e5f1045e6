"""Shared inputs of the decision-core tests: the real environment files and a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.spec import EnvironmentSpec
from controller.spec_file import load_environment

ENVIRONMENTS = Path(__file__).resolve().parents[3] / "environments"
NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def local_spec() -> EnvironmentSpec:
    return load_environment(ENVIRONMENTS / "local.yaml")


@pytest.fixture(scope="session")
def prod_spec() -> EnvironmentSpec:
    return load_environment(ENVIRONMENTS / "prod.yaml")
