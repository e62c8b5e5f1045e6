"""EksNodeGroupActuator against moto's EKS in server mode, through the real boto3 client over HTTP:
desired size within the spec's and the node group's bounds, idempotent, each region in its own AWS
region, API errors and throttling injected by the loopback proxy."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from controller.adapters.eks_node_group_actuator import EksNodeGroupActuator, EksSettings, NodeGroupRef, eks_client
from controller.ports import ActuationError
from controller.spec_file import load_environment
from tests.aws.conftest import rest_json_error

ROOT = Path(__file__).resolve().parents[2]
LOCAL = load_environment(ROOT / "environments" / "local.yaml")  # fra: eu-central-1, min 2, max 40


def make_node_group(url, aws_region, cluster, node_group, *, min_size, max_size, desired):
    eks = boto3.client("eks", region_name=aws_region, endpoint_url=url)
    eks.create_cluster(name=cluster, roleArn="arn:aws:iam::123456789012:role/eks",
                       resourcesVpcConfig={"subnetIds": ["subnet-1", "subnet-2"]})  # fmt: skip
    eks.create_nodegroup(clusterName=cluster, nodegroupName=node_group, nodeRole="arn:aws:iam::123456789012:role/node",
                         subnets=["subnet-1"], scalingConfig={"minSize": min_size, "maxSize": max_size, "desiredSize": desired})  # fmt: skip
    return eks


def desired_of(eks, cluster, node_group):
    return eks.describe_nodegroup(clusterName=cluster, nodegroupName=node_group)["nodegroup"]["scalingConfig"]


def actuator(url, **settings):
    groups = settings.pop(
        "node_groups", {"fra": NodeGroupRef("edge-fra", "media"), "cgk": NodeGroupRef("edge-cgk", "media")}
    )
    s = EksSettings(node_groups=groups, endpoint_url=url, settle_poll_seconds=0.0, **settings)
    return EksNodeGroupActuator(LOCAL, s, client_for=lambda region: eks_client(s, region), sleep=lambda s: None)


def updates(proxy):
    return [r for r in proxy.requests if r[0] == "POST" and r[1].endswith("/update-config")]


def test_desired_size_is_set_in_the_regions_own_aws_region_and_idempotent(moto_url, fault_proxy):
    fra = make_node_group(moto_url, "eu-central-1", "edge-fra", "media", min_size=2, max_size=40, desired=2)
    cgk = make_node_group(moto_url, "ap-southeast-3", "edge-cgk", "media", min_size=2, max_size=60, desired=2)
    act = actuator(fault_proxy.url)
    record = act.set_desired_nodes("fra", 12, plan_id="p1", actor="loop", reason="evening peak")
    assert record.changed and record.before == {"desired_nodes": 2} and record.after == {"desired_nodes": 12}
    assert desired_of(fra, "edge-fra", "media") == {"minSize": 2, "maxSize": 40, "desiredSize": 12}
    assert desired_of(cgk, "edge-cgk", "media")["desiredSize"] == 2  # other region untouched
    again = act.set_desired_nodes("fra", 12, plan_id="p1", actor="loop", reason="retry")
    assert not again.changed and len(updates(fault_proxy)) == 1
    act.set_desired_nodes("cgk", 55, plan_id="p2", actor="loop", reason="")
    assert desired_of(cgk, "edge-cgk", "media")["desiredSize"] == 55


def test_scale_in_is_deferred_never_written(moto_url, fault_proxy):
    """Lowering desiredSize would let the Auto Scaling group terminate busy instances: nodes leave by drain."""
    fra = make_node_group(moto_url, "eu-central-1", "edge-fra", "media", min_size=2, max_size=40, desired=10)
    record = actuator(fault_proxy.url).set_desired_nodes("fra", 4, plan_id="p", actor="loop", reason="night")
    assert not record.changed and record.after == {"desired_nodes": 10, "scale_in_deferred_to": 4}
    assert desired_of(fra, "edge-fra", "media")["desiredSize"] == 10 and updates(fault_proxy) == []


def test_out_of_bounds_is_refused_naming_spec_and_node_group(moto_url, fault_proxy):
    fra = make_node_group(moto_url, "eu-central-1", "edge-fra", "media", min_size=3, max_size=20, desired=5)
    act = actuator(fault_proxy.url)
    for desired, bounds in ((41, "[3, 20]"), (25, "[3, 20]"), (2, "[3, 20]")):  # below the minimum: refused too
        with pytest.raises(ActuationError, match=rf"desired size {desired} outside \[3, 20\]") as error:
            act.set_desired_nodes("fra", desired, plan_id="p", actor="loop", reason="")
        assert error.value.retryable is False and "spec fra: [2, 40]" in str(error.value) and bounds in str(error.value)
    assert desired_of(fra, "edge-fra", "media")["desiredSize"] == 5 and updates(fault_proxy) == []
    with pytest.raises(ActuationError, match="no node group configured for region dub") as missing:
        act.set_desired_nodes("dub", 3, plan_id="p", actor="loop", reason="")
    assert missing.value.retryable is False
    with pytest.raises(ValueError, match="regions not in local: atlantis"):
        actuator(fault_proxy.url, node_groups={"atlantis": NodeGroupRef("c", "n")})
    with pytest.raises(ValueError, match="expected CLUSTER/NODEGROUP"):
        NodeGroupRef.parse("edge-fra")


def test_throttling_is_retried_and_other_errors_are_typed(moto_url, fault_proxy):
    fra = make_node_group(moto_url, "eu-central-1", "edge-fra", "media", min_size=2, max_size=40, desired=2)
    is_update = lambda method, path: method == "POST" and path.endswith("/update-config")  # noqa: E731
    fault_proxy.fail_first(2, is_update, rest_json_error("ThrottlingException", "Rate exceeded"))
    act = actuator(fault_proxy.url, max_attempts=3)
    assert act.set_desired_nodes("fra", 7, plan_id="p", actor="loop", reason="").changed
    assert len(fault_proxy.faulted) == 2 and len(updates(fault_proxy)) == 3
    assert desired_of(fra, "edge-fra", "media")["desiredSize"] == 7

    # (each attempt below raises the size from 7, so it is a real write every time)
    fault_proxy.fail_first(1, is_update, rest_json_error("ResourceInUseException", "update in progress", status=409))
    with pytest.raises(ActuationError, match="ResourceInUseException: update in progress") as busy:
        act.set_desired_nodes("fra", 9, plan_id="p2", actor="loop", reason="")
    assert busy.value.retryable is True
    fault_proxy.fail_first(1, is_update, rest_json_error("InvalidParameterException", "bad size"))
    with pytest.raises(ActuationError, match="InvalidParameterException") as invalid:
        act.set_desired_nodes("fra", 9, plan_id="p3", actor="loop", reason="")
    assert invalid.value.retryable is False
    fault_proxy.fail_first(9, is_update, rest_json_error("ServerException", "oops", status=500))
    with pytest.raises(ActuationError) as server:
        act.set_desired_nodes("fra", 9, plan_id="p4", actor="loop", reason="")
    assert server.value.retryable is True
    assert desired_of(fra, "edge-fra", "media")["desiredSize"] == 7


def test_unknown_cluster_is_not_retryable(moto_url):
    with pytest.raises(ActuationError, match="ResourceNotFoundException") as error:
        actuator(moto_url).set_desired_nodes("fra", 3, plan_id="p", actor="loop", reason="")
    assert error.value.retryable is False
