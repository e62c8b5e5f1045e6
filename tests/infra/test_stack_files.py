"""Pulumi.yaml and the per-environment stack files: shape, and that each stack names a deployable environment."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from controller.spec_file import load_environment
from infra.residency import residency_preflight
from tests.infra.conftest import REPO


def test_project_file_runs_infra_with_the_repo_virtualenv() -> None:
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text(encoding="utf-8"))
    assert project["name"] == "edgeplane"
    assert project["main"] == "infra/"
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}}
    assert (REPO / "infra" / "__main__.py").is_file()
    config = project["config"]
    # Unqualified keys are in the project namespace, i.e. edgeplane:<key>, as the program reads them.
    assert set(config) == {"environment", "dnsZoneId", "mediaDomain", "clusterApiCidrs"}
    assert "default" not in config["environment"]  # required
    for key, entry in config.items():
        assert entry["description"].strip(), key


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_each_stack_names_an_environment_that_passes_residency(stack: str) -> None:
    config = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))["config"]
    path = REPO / config["edgeplane:environment"]
    assert path.parent == REPO / "environments"
    spec = load_environment(path)
    assert spec.name == stack
    assert len(residency_preflight(spec)) == len(spec.regions)


def test_no_stack_config_hides_among_environment_specs() -> None:
    assert list((REPO / "environments").glob("Pulumi*.yaml")) == []


def test_policy_pack_runs_from_the_repo_virtualenv() -> None:
    pack = yaml.safe_load((REPO / "infra/policy/PulumiPolicy.yaml").read_text(encoding="utf-8"))
    assert pack["runtime"]["name"] == "python"
    venv = (REPO / "infra/policy" / pack["runtime"]["options"]["virtualenv"]).resolve()
    assert venv == (REPO / ".venv").resolve()
    assert Path(REPO / "infra/policy/__main__.py").is_file()
