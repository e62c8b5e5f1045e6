"""`edgectl infra preflight` on the three shipped environments (human and --json), its refusals, and the
EKS token the controller's kubeconfig exec plugin produces."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from controller.spec_file import load_environment
from infra.eks_token import TOKEN_PREFIX, eks_token, exec_credential
from infra.preflight_report import instance_vcpus
from tests.infra.conftest import REPO, env_data, env_file, write_env

EDGECTL = str(Path(sys.executable).parent / "edgectl")


def _edgectl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EDGECTL, *args], capture_output=True, text=True, timeout=120, cwd=REPO)


@pytest.mark.parametrize("env", ["local", "staging", "prod"])
def test_preflight_json_lists_every_region_with_its_needs(env: str) -> None:
    result = _edgectl("infra", "preflight", "--env", str(env_file(env)), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    spec = load_environment(env_file(env))
    assert report["ok"] is True and report["environment"] == env
    assert [r["region"] for r in report["regions"]] == [r.name for r in spec.regions]
    for entry, region in zip(report["regions"], spec.regions, strict=True):
        assert entry["cloud_region"] == region.cloud_region
        assert entry["vcpus_at_max"] == region.max_nodes * instance_vcpus(region.node_instance_type) + 2 * (
            spec.infra.system_nodes_max if spec.infra else 0
        )
        assert entry["addresses_needed"] <= entry["addresses_available"]
        assert entry["resources"]["NodeGroup"] == 2 and entry["resources"]["Addon"] == 4
        assert any("get-region-opt-status" in c for c in entry["checks"]) is entry["opt_in"]
    assert report["global_resources"] == {"Role": 1, "RolePolicy": 1}  # the controller's identity


def test_preflight_human_output_names_opt_in_regions_and_quota_checks() -> None:
    result = _edgectl("infra", "preflight", "--env", str(env_file("prod")))
    assert result.returncode == 0, result.stderr
    assert "ruh me-west-1 (Middle East (Saudi Arabia)) opt-in region" in result.stdout
    assert "aws account get-region-opt-status --region-name me-west-1" in result.stdout
    assert "cgk ap-southeast-3 (Asia Pacific (Jakarta)) opt-in region" in result.stdout
    assert "vCPUs at max size: 3208 = 400 x c6gn.2xlarge (8 vCPU) + 4 x m7g.large (2 vCPU)" in result.stdout


def test_preflight_refuses_an_environment_without_infra_and_a_bad_file(tmp_path: Path) -> None:
    data = env_data("local")
    del data["infra"]
    result = _edgectl("infra", "preflight", "--env", str(write_env(tmp_path, data)))
    assert result.returncode == 1 and "infra: missing" in result.stderr and "Traceback" not in result.stderr
    data = env_data("local")
    data["regions"][0]["cloud_region"] = "me-central-2"
    result = _edgectl("infra", "preflight", "--env", str(write_env(tmp_path, data, "bad.yaml")))
    assert result.returncode == 1 and "regions[0].cloud_region: cloud region 'me-central-2'" in result.stderr


def test_instance_sizes_to_vcpus() -> None:
    assert [
        instance_vcpus(t)
        for t in ("m7g.medium", "m7g.large", "c6gn.xlarge", "c6gn.2xlarge", "c7g.16xlarge", "c7g.metal")
    ] == [1, 2, 4, 8, 64, None]


def test_eks_token_is_a_presigned_sts_call_bound_to_the_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
    for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    token = eks_token("edgeplane-prod-ruh", "me-west-1")
    assert token.startswith(TOKEN_PREFIX) and "=" not in token
    url = urlparse(base64.urlsafe_b64decode(token[len(TOKEN_PREFIX) :] + "==").decode())
    query = parse_qs(url.query)
    assert (url.scheme, url.netloc) == ("https", "sts.me-west-1.amazonaws.com")
    assert query["Action"] == ["GetCallerIdentity"] and query["X-Amz-Expires"] == ["60"]
    assert query["X-Amz-SignedHeaders"] == ["host;x-k8s-aws-id"]
    assert query["X-Amz-Credential"][0].startswith("AKIDEXAMPLE/")
    credential = json.loads(exec_credential(token, now=datetime(2026, 1, 1, tzinfo=UTC)))
    assert credential["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert credential["status"] == {"expirationTimestamp": "2026-01-01T00:14:00Z", "token": token}
