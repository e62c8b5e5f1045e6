"""EksNodeGroupActuator: a region's node count as its EKS managed node group's desired size.

Implements the `set_desired_nodes` verb of `controller.ports.Actuator` (the composite actuator sends
it node counts; pods and drains go to Kubernetes, weights to Route 53 and the selector). One node
group per region: the media node group `infra/edge_media_cluster.py` declares, whose desired size
Pulumi sets once and then ignores, named by its stack outputs (`cluster_name`, `node_group_name`)
and reached in the region's own AWS region (`RegionSpec.cloud_region`).

One call: DescribeNodegroup; a desired size outside the spec's [min_nodes, max_nodes] or the node
group's own [minSize, maxSize] is refused (not clamped: it means a plan or the infrastructure is
wrong, and the message names both); equal to the current desired size -> nothing written,
`changed=False`; larger -> UpdateNodegroupConfig with `scalingConfig.desiredSize` only (the API lets
an update name any subset, so min/max stay what `pulumi up` set), then DescribeNodegroup until it
reports the new size (bounded; the retry verifies it).

Smaller: desiredSize is never lowered. The port's contract is that nodes leave only through a drain
(DESIGN invariant 3), and lowering desiredSize lets the Auto Scaling group pick which instances to
terminate, busy ones included. Instead the node group shrinks by exactly the instances whose drain
is over: the node group's Auto Scaling group (DescribeNodegroup's `resources.autoScalingGroups`) is
described, and each instance that `DrainedInstances` reports (edgeplane drained its node and no
media pod is left on it; `controller/adapters/kubernetes_drained_nodes.py`) and that is InService
in that group is terminated with TerminateInstanceInAutoScalingGroup(ShouldDecrementDesiredCapacity
=True), so the group's desired capacity drops by one per instance and nothing replaces it. Never
below the floor: at most (group desired capacity - max(desired, spec min_nodes, node group minSize,
group MinSize)) instances per call. Nodes still draining are not touched; the record says how many
terminated (`after.terminated_instances`) and what is left (`after.scale_in_deferred_to`), and the
controller's next tick, re-issuing the same desired size, terminates the ones drained since. A
retry is harmless: a terminated instance is no longer InService and the group's capacity already
counts it. Without a `DrainedInstances` the scale-in is only deferred (`changed=False`). EKS
reflects the group's desired capacity in the node group's desiredSize (as it does for the cluster
autoscaler's terminations), possibly a little later: a scale-out seen against a desiredSize not yet
updated waits for the next tick.

Who owns desired size: this actuator, and nothing else (docs/deploy-aws.md). With the Kubernetes cluster autoscaler on
the same node group, AWS's own API reference says not to change desiredSize directly: the two would
fight; run `--actuate kubernetes` alone there (the controller sets media pod replicas and the
autoscaler sizes the node group to fit). Karpenter does not use managed node groups at all: leave
the media node group out of this actuator's settings. See docs/operations.md.

Throttling is retried by botocore's standard mode; ResourceInUseException (another update in
flight), 5xx and connection errors are retryable `ActuationError`s; InvalidParameterException,
ResourceNotFoundException and the like are not. The Auto Scaling API's throttling (`Throttling`)
is retried the same way; its ValidationError (an instance not in the group) is not retryable.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from controller.audit import AuditRecord
from controller.ports import ActuationError
from controller.spec import EnvironmentSpec

RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "TooManyRequestsException",
        "ResourceInUseException",
        "ServerException",
        "Throttling",  # the Auto Scaling API's
        "ScalingActivityInProgress",
    }
)


class DrainedInstances(Protocol):
    def drained_instances(self, region: str) -> list[str]:
        """EC2 instance ids of the region's media nodes that edgeplane drained and that carry no media
        pod any more: safe to terminate. Raises ActuationError when it cannot tell."""
        ...


@dataclass(frozen=True)
class NodeGroupRef:
    cluster: str
    node_group: str

    @classmethod
    def parse(cls, text: str) -> NodeGroupRef:
        """`CLUSTER/NODEGROUP`, as `pulumi stack output` names them."""
        cluster, sep, node_group = text.partition("/")
        if not sep or not cluster or not node_group or "/" in node_group:
            raise ValueError(f"{text!r}: expected CLUSTER/NODEGROUP")
        return cls(cluster, node_group)


@dataclass(frozen=True)
class EksSettings:
    node_groups: Mapping[str, NodeGroupRef] = field(default_factory=dict)
    """Region name -> its media node group."""
    endpoint_url: str | None = None
    """EKS API endpoint for every region; None for AWS's own (tests point it at a local server)."""
    max_attempts: int = 5
    """Attempts per API call, the first included (botocore `total_max_attempts`, standard mode)."""
    settle_timeout_seconds: float = 60.0
    """Longest wait for DescribeNodegroup to report the new desired size."""
    settle_poll_seconds: float = 2.0


def eks_client(settings: EksSettings, aws_region: str, service: str = "eks") -> Any:
    """A boto3 client of `service` (eks, autoscaling) in `aws_region`, retrying in standard mode."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "total_max_attempts": settings.max_attempts})
    return boto3.client(service, region_name=aws_region, endpoint_url=settings.endpoint_url, config=config)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class EksNodeGroupActuator:
    """Desired nodes per region as EKS managed node group desired size (see module doc)."""

    def __init__(
        self,
        spec: EnvironmentSpec,
        settings: EksSettings,
        *,
        client_for: Callable[[str], Any] | None = None,
        autoscaling_client_for: Callable[[str], Any] | None = None,
        drained: DrainedInstances | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        unknown = sorted(set(settings.node_groups) - set(spec.region_by_name))
        if unknown:
            raise ValueError(f"node groups given for regions not in {spec.name}: {', '.join(unknown)}")
        self._spec = spec
        self._settings = settings
        self._client_for = client_for or (lambda aws_region: eks_client(settings, aws_region))
        self._autoscaling_client_for = autoscaling_client_for or (
            lambda aws_region: eks_client(settings, aws_region, "autoscaling")
        )
        self._clients: dict[str, Any] = {}
        self._autoscaling_clients: dict[str, Any] = {}
        self._drained = drained
        self._sleep = sleep
        self._clock = clock

    def regions(self) -> list[str]:
        return sorted(self._settings.node_groups)

    def set_desired_nodes(
        self, region: str, desired_nodes: int, *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        ref = self._settings.node_groups.get(region)
        if ref is None:
            raise ActuationError(f"EKS: no node group configured for region {region}", retryable=False)
        spec_region = self._spec.region_by_name[region]
        client = self._client(spec_region.cloud_region)
        what = f"EKS node group {ref.cluster}/{ref.node_group} ({spec_region.cloud_region})"
        node_group = self._describe(client, ref, what)
        scaling = node_group["scalingConfig"]
        current = int(scaling["desiredSize"])
        low, high = (
            max(spec_region.min_nodes, int(scaling["minSize"])),
            min(spec_region.max_nodes, int(scaling["maxSize"])),
        )
        if not low <= desired_nodes <= high:
            raise ActuationError(
                f"{what}: desired size {desired_nodes} outside [{low}, {high}] (spec {region}: "
                f"[{spec_region.min_nodes}, {spec_region.max_nodes}]; node group: [{scaling['minSize']}, "
                f"{scaling['maxSize']}])",
                retryable=False,
            )
        if desired_nodes < current:
            if self._drained is None:
                return AuditRecord(
                    plan_id=plan_id,
                    actor=actor,
                    action="set_desired_nodes",
                    target=region,
                    reason=reason,
                    before={"desired_nodes": current},
                    after={"desired_nodes": current, "scale_in_deferred_to": desired_nodes},
                    changed=False,
                    at=self._clock(),
                )
            return self._terminate_drained(
                region, node_group, desired_nodes, low, what, plan_id=plan_id, actor=actor, reason=reason
            )
        if current != desired_nodes:
            self._call(
                what,
                "UpdateNodegroupConfig",
                lambda: client.update_nodegroup_config(
                    clusterName=ref.cluster,
                    nodegroupName=ref.node_group,
                    scalingConfig={"desiredSize": desired_nodes},
                ),
            )
            self._wait_for(client, ref, what, desired_nodes)
        return AuditRecord(
            plan_id=plan_id,
            actor=actor,
            action="set_desired_nodes",
            target=region,
            reason=reason,
            before={"desired_nodes": current},
            after={"desired_nodes": desired_nodes},
            changed=current != desired_nodes,
            at=self._clock(),
        )

    def _terminate_drained(
        self,
        region: str,
        node_group: dict[str, Any],
        desired_nodes: int,
        floor: int,
        what: str,
        *,
        plan_id: str,
        actor: str,
        reason: str,
    ) -> AuditRecord:
        """Scale-in by terminating exactly the drained instances, never below the floor (module doc)."""
        assert self._drained is not None
        groups = [g["name"] for g in (node_group.get("resources") or {}).get("autoScalingGroups") or []]
        if len(groups) != 1:
            raise ActuationError(
                f"{what}: expected one Auto Scaling group in DescribeNodegroup's resources, found {groups or 'none'}",
                retryable=not groups,  # none yet: a node group still being created
            )
        aws_region = self._spec.region_by_name[region].cloud_region
        autoscaling = self._autoscaling_client(aws_region)
        answer = self._call(
            what,
            "DescribeAutoScalingGroups",
            lambda: autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=groups),
        )
        found = answer.get("AutoScalingGroups") or []
        if not found:
            raise ActuationError(f"{what}: Auto Scaling group {groups[0]} not found", retryable=False)
        group = found[0]
        capacity = int(group["DesiredCapacity"])
        floor = max(floor, int(group.get("MinSize", 0)))
        in_service = {i["InstanceId"] for i in group.get("Instances") or [] if i.get("LifecycleState") == "InService"}
        drained = sorted(set(self._drained.drained_instances(region)) & in_service)
        room = max(0, capacity - max(desired_nodes, floor))
        chosen = drained[:room]
        for instance in chosen:
            self._call(
                what,
                f"TerminateInstanceInAutoScalingGroup {instance}",
                functools.partial(
                    autoscaling.terminate_instance_in_auto_scaling_group,
                    InstanceId=instance,
                    ShouldDecrementDesiredCapacity=True,
                ),
            )
        left = capacity - len(chosen)
        after: dict[str, Any] = {"auto_scaling_group": groups[0], "desired_capacity": left}
        if chosen:
            after["terminated_instances"] = chosen
        if left > desired_nodes:
            after["scale_in_deferred_to"] = desired_nodes
            after["why"] = (
                f"at the floor of {floor} nodes"
                if left <= floor
                else f"{left - max(desired_nodes, floor)} node(s) still draining or not yet drained"
            )
        return AuditRecord(
            plan_id=plan_id,
            actor=actor,
            action="set_desired_nodes",
            target=region,
            reason=reason,
            before={"auto_scaling_group": groups[0], "desired_capacity": capacity},
            after=after,
            changed=bool(chosen),
            at=self._clock(),
        )

    def _autoscaling_client(self, aws_region: str) -> Any:
        if aws_region not in self._autoscaling_clients:
            self._autoscaling_clients[aws_region] = self._autoscaling_client_for(aws_region)
        return self._autoscaling_clients[aws_region]

    def _client(self, aws_region: str) -> Any:
        if aws_region not in self._clients:
            self._clients[aws_region] = self._client_for(aws_region)
        return self._clients[aws_region]

    def _describe(self, client: Any, ref: NodeGroupRef, what: str) -> dict[str, Any]:
        answer = self._call(
            what,
            "DescribeNodegroup",
            lambda: client.describe_nodegroup(clusterName=ref.cluster, nodegroupName=ref.node_group),
        )
        return dict(answer["nodegroup"])

    def _wait_for(self, client: Any, ref: NodeGroupRef, what: str, desired: int) -> None:
        deadline = time.monotonic() + self._settings.settle_timeout_seconds
        while True:
            seen = int(self._describe(client, ref, what)["scalingConfig"]["desiredSize"])
            if seen == desired:
                return
            if time.monotonic() >= deadline:
                raise ActuationError(
                    f"{what}: desired size reads {seen}, not {desired}, after "
                    f"{self._settings.settle_timeout_seconds:g} s (another writer, or still updating)",
                    retryable=True,
                )
            self._sleep(self._settings.settle_poll_seconds)

    def _call(self, what: str, operation: str, call: Callable[[], Any]) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

        try:
            return call()
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            message = error.response.get("Error", {}).get("Message", "")
            retryable = code in RETRYABLE_CODES or status >= 500
            raise ActuationError(f"{what}: {operation}: {code or status}: {message}", retryable=retryable) from error
        except (NoCredentialsError, PartialCredentialsError) as error:
            raise ActuationError(f"{what}: {operation}: {error}", retryable=False) from error
        except BotoCoreError as error:
            raise ActuationError(f"{what}: {operation}: {error}", retryable=True) from error
