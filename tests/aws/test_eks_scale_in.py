"""EKS scale-in by exactly the drained instances, against moto in server mode over HTTP (real boto3).

moto's EKS names an Auto Scaling group in DescribeNodegroup's `resources.autoScalingGroups` but does
not create it (moto/eks/models.py: the name only), so `node_group_with_instances` creates that group
in moto's Auto Scaling backend the way EKS does for a managed node group: same name, the node
group's min/max/desired, instances from a launch template. moto also does not carry the group's
desired capacity back into the node group's desiredSize (real EKS does), so the tests read the group.
"""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from controller.adapters.eks_node_group_actuator import EksNodeGroupActuator, EksSettings, NodeGroupRef, eks_client
from controller.ports import ActuationError
from controller.spec_file import load_environment
from tests.aws.conftest import query_error
from tests.aws.test_eks_node_group_actuator import make_node_group

ROOT = Path(__file__).resolve().parents[2]
LOCAL = load_environment(ROOT / "environments" / "local.yaml")  # fra: eu-central-1, min 2, max 40
WHO = {"plan_id": "p", "actor": "loop", "reason": "night"}


def node_group_with_instances(url, *, min_size=2, desired=5, asg_min=None):
    """The fra media node group and its Auto Scaling group (as EKS creates it); the group's instance ids."""
    eks = make_node_group(url, "eu-central-1", "edge-fra", "media", min_size=min_size, max_size=40, desired=desired)
    group = eks.describe_nodegroup(clusterName="edge-fra", nodegroupName="media")["nodegroup"]
    name = group["resources"]["autoScalingGroups"][0]["name"]
    ec2 = boto3.client("ec2", region_name="eu-central-1", endpoint_url=url)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.create_launch_template(
        LaunchTemplateName="edge-fra-media", LaunchTemplateData={"ImageId": image, "InstanceType": "c6gn.xlarge"}
    )
    autoscaling = boto3.client("autoscaling", region_name="eu-central-1", endpoint_url=url)
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": "edge-fra-media"},
        MinSize=min_size if asg_min is None else asg_min,
        MaxSize=40,
        DesiredCapacity=desired,
        AvailabilityZones=["eu-central-1a", "eu-central-1b"],
    )
    return autoscaling, ec2, name, sorted(i["InstanceId"] for i in group_of(autoscaling, name)["Instances"])


def group_of(autoscaling, name):
    return autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]


def state_of(ec2, instance):
    return ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]["State"]["Name"]


class DrainedStandIn:
    """`DrainedInstances` as the Kubernetes side would answer: the instances whose drain is over."""

    def __init__(self, instances: list[str]) -> None:
        self.instances = instances
        self.asked: list[str] = []

    def drained_instances(self, region: str) -> list[str]:
        self.asked.append(region)
        return list(self.instances)


def actuator(url, drained, **settings):
    s = EksSettings(
        node_groups={"fra": NodeGroupRef("edge-fra", "media")}, endpoint_url=url, settle_poll_seconds=0.0, **settings
    )
    return EksNodeGroupActuator(
        LOCAL,
        s,
        client_for=lambda region: eks_client(s, region),
        autoscaling_client_for=lambda region: eks_client(s, region, "autoscaling"),
        drained=drained,
        sleep=lambda _s: None,
    )


def test_exactly_the_drained_instances_are_terminated_and_the_group_shrinks_by_them(moto_url, fault_proxy):
    autoscaling, ec2, name, instances = node_group_with_instances(moto_url, desired=5)
    drained = DrainedStandIn([instances[3], instances[1], "i-0notinthisgroup"])
    act = actuator(fault_proxy.url, drained)
    record = act.set_desired_nodes("fra", 3, **WHO)
    assert record.changed and drained.asked == ["fra"]
    assert record.before == {"auto_scaling_group": name, "desired_capacity": 5}
    assert record.after == {
        "auto_scaling_group": name,
        "desired_capacity": 3,
        "terminated_instances": sorted([instances[1], instances[3]]),
    }
    group = group_of(autoscaling, name)
    assert group["DesiredCapacity"] == 3
    assert sorted(i["InstanceId"] for i in group["Instances"]) == [instances[0], instances[2], instances[4]]
    assert {state_of(ec2, i) for i in (instances[1], instances[3])} == {"terminated"}
    assert {state_of(ec2, i) for i in (instances[0], instances[2], instances[4])} == {"running"}  # busy: untouched
    assert fault_proxy.actions("TerminateInstanceInAutoScalingGroup") == 2
    assert not [r for r in fault_proxy.requests if r[1].endswith("/update-config")]  # desiredSize never lowered

    again = act.set_desired_nodes("fra", 3, **WHO)  # the retry, or the next tick
    assert not again.changed and again.after == {"auto_scaling_group": name, "desired_capacity": 3}
    assert fault_proxy.actions("TerminateInstanceInAutoScalingGroup") == 2


def test_never_below_the_floor_and_nodes_still_draining_wait(moto_url, fault_proxy):
    autoscaling, _ec2, name, instances = node_group_with_instances(moto_url, desired=4, asg_min=3)
    drained = DrainedStandIn([])
    act = actuator(fault_proxy.url, drained)
    waiting = act.set_desired_nodes("fra", 2, **WHO)  # nothing drained yet
    assert not waiting.changed and waiting.after["scale_in_deferred_to"] == 2
    assert waiting.after["why"] == "1 node(s) still draining or not yet drained"
    assert fault_proxy.actions("TerminateInstanceInAutoScalingGroup") == 0

    drained.instances = instances  # all four drained: the group's MinSize (3) still holds
    record = act.set_desired_nodes("fra", 2, **WHO)
    assert record.changed and len(record.after["terminated_instances"]) == 1
    assert record.after["why"] == "at the floor of 3 nodes" and record.after["scale_in_deferred_to"] == 2
    assert group_of(autoscaling, name)["DesiredCapacity"] == 3
    with pytest.raises(ActuationError, match=r"desired size 1 outside \[2, 40\]"):  # below the spec's min: refused
        act.set_desired_nodes("fra", 1, **WHO)


def test_throttling_is_retried_errors_are_typed_and_a_partial_scale_in_converges(moto_url, fault_proxy):
    autoscaling, _ec2, name, instances = node_group_with_instances(moto_url, desired=5)
    drained = DrainedStandIn(instances[:1])
    act = actuator(fault_proxy.url, drained, max_attempts=3)
    fault_proxy.fail_first_action(2, "TerminateInstanceInAutoScalingGroup", query_error("Throttling", "Rate exceeded"))
    record = act.set_desired_nodes("fra", 4, **WHO)  # two throttled answers, then through
    assert record.after["terminated_instances"] == instances[:1]
    assert fault_proxy.actions("TerminateInstanceInAutoScalingGroup") == 3
    assert group_of(autoscaling, name)["DesiredCapacity"] == 4

    drained.instances = instances[1:2]
    fault_proxy.fail_first_action(1, "TerminateInstanceInAutoScalingGroup", query_error("ValidationError", "bad"))
    with pytest.raises(ActuationError, match=r"TerminateInstanceInAutoScalingGroup i-\w+: ValidationError: bad") as bad:
        act.set_desired_nodes("fra", 3, **WHO)
    assert bad.value.retryable is False and group_of(autoscaling, name)["DesiredCapacity"] == 4

    # Two terminations due: the first goes through, the second meets server errors (retryable), and
    # the retry terminates only what is left (the first is no longer InService in the group).
    drained.instances = instances[1:3]
    answers = iter([None, *[query_error("InternalFailure", "oops", status=500)] * 3])

    def second_fails(method, path, body):
        if b"Action=TerminateInstanceInAutoScalingGroup&" in body:
            return next(answers, None)
        return None

    fault_proxy.body_fault = second_fails
    with pytest.raises(ActuationError) as server:
        act.set_desired_nodes("fra", 2, **WHO)
    assert server.value.retryable is True
    assert group_of(autoscaling, name)["DesiredCapacity"] == 3  # the first went through
    fault_proxy.body_fault = None
    retried = act.set_desired_nodes("fra", 2, **WHO)
    assert retried.changed and retried.after["terminated_instances"] == [instances[2]]
    assert group_of(autoscaling, name)["DesiredCapacity"] == 2


def test_a_node_group_without_its_auto_scaling_group_is_an_error(moto_url, fault_proxy):
    make_node_group(moto_url, "eu-central-1", "edge-fra", "media", min_size=2, max_size=40, desired=5)
    with pytest.raises(ActuationError, match=r"Auto Scaling group eks-.* not found") as missing:
        actuator(fault_proxy.url, DrainedStandIn([])).set_desired_nodes("fra", 3, **WHO)
    assert missing.value.retryable is False
