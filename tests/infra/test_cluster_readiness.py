"""Each regional cluster can run the product: an untainted system node group beside the tainted media
group, managed add-ons in the order a real cluster needs, Pod Identity roles for every workload that
touches AWS, a pinned EKS version, and control-plane logs with retention and the region's key
(the real program under Pulumi mocks, for prod, staging and local)."""

from __future__ import annotations

import base64
import json

import pytest

from controller.spec import EnvironmentSpec
from controller.spec.address_plan import WARM_PREFIXES
from controller.spec_file import load_environment
from infra.cluster_compute import MEDIA_NODE_TAINT, NODE_ROLE_LABEL
from infra.offline_graph import MOCK_ACCOUNT_ID, RecordedGraph, RecordedResource
from infra.recordings_bucket import recordings_retention_days
from infra.workload_identities import CONTROLLER_KUBERNETES_GROUP
from tests.infra.conftest import MEDIA_DOMAIN, ZONE_ID, env_file

ENVS = ["prod", "staging", "local"]


def _spec(env: str) -> EnvironmentSpec:
    return load_environment(env_file(env))


def _named(graph: RecordedGraph, type_token: str) -> dict[str, RecordedResource]:
    return {r.name: r for r in graph.of_type(type_token)}


@pytest.mark.parametrize("env", ENVS)
def test_every_cluster_has_an_untainted_system_group_and_a_tainted_media_group(
    graphs: dict[str, RecordedGraph], env: str
) -> None:
    spec, graph = _spec(env), graphs[env]
    assert spec.infra is not None
    groups = _named(graph, "aws:eks/nodeGroup:NodeGroup")
    templates = _named(graph, "aws:ec2/launchTemplate:LaunchTemplate")
    assert len(groups) == 2 * len(spec.regions)
    for region in spec.regions:
        system, media = groups[f"{region.name}-system"], groups[f"{region.name}-media"]
        assert not system.inputs.get("taints")
        assert system.inputs["labels"][NODE_ROLE_LABEL] == "system"
        scaling = system.inputs["scalingConfig"]
        assert (scaling["minSize"], scaling["maxSize"]) == (spec.infra.system_nodes_min, spec.infra.system_nodes_max)
        assert media.inputs["taints"] == [{"key": MEDIA_NODE_TAINT, "value": "true", "effect": "NO_SCHEDULE"}]
        # kubelet maxPods from the spec, the number the subnets are sized with.
        for role, pods in (("system", spec.infra.pods_per_system_node), ("media", spec.infra.pods_per_media_node)):
            user_data = base64.b64decode(templates[f"{region.name}-{role}-node"].inputs["userData"]).decode()
            assert "Content-Type: application/node.eks.aws" in user_data and f"maxPods: {pods}\n" in user_data
        # System nodes get no media ports.
        assert templates[f"{region.name}-system-node"].inputs["vpcSecurityGroupIds"] == [f"sg-{region.name}-media"]


@pytest.mark.parametrize("env", ENVS)
def test_add_ons_prefix_delegation_and_creation_order(graphs: dict[str, RecordedGraph], env: str) -> None:
    spec, graph = _spec(env), graphs[env]
    addons = _named(graph, "aws:eks/addon:Addon")
    groups = _named(graph, "aws:eks/nodeGroup:NodeGroup")
    assert len(addons) == 4 * len(spec.regions)
    for region in spec.regions:
        name = region.name
        mine = {a.inputs["addonName"]: a for key, a in addons.items() if key.startswith(f"{name}-")}
        assert set(mine) == {"vpc-cni", "kube-proxy", "eks-pod-identity-agent", "coredns"}
        assert json.loads(mine["vpc-cni"].inputs["configurationValues"]) == {
            "env": {"ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": str(WARM_PREFIXES)}
        }
        for group in (groups[f"{name}-system"], groups[f"{name}-media"]):
            for early in ("vpc-cni", "kube-proxy", "eks-pod-identity-agent"):
                assert mine[early].urn in group.dependencies, (group.name, early)
        assert groups[f"{name}-system"].urn in mine["coredns"].dependencies


@pytest.mark.parametrize("env", ENVS)
def test_cluster_is_pinned_and_created_after_its_role_policies_and_log_group(
    graphs: dict[str, RecordedGraph], env: str
) -> None:
    spec, graph = _spec(env), graphs[env]
    assert spec.infra is not None
    clusters = _named(graph, "aws:eks/cluster:Cluster")
    attachments = _named(graph, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    inline = _named(graph, "aws:iam/rolePolicy:RolePolicy")
    logs = _named(graph, "aws:cloudwatch/logGroup:LogGroup")
    keys = _named(graph, "aws:kms/key:Key")
    for region in spec.regions:
        name = region.name
        cluster = clusters[f"{name}-media"]
        assert cluster.inputs["version"] == spec.infra.kubernetes_version
        assert cluster.inputs["name"] == f"edgeplane-{env}-{name}"
        assert cluster.inputs["bootstrapSelfManagedAddons"] is False
        assert cluster.inputs["accessConfig"]["authenticationMode"] == "API"
        log_group = logs[f"{name}-control-plane"]
        required = {
            attachments[f"{name}-cluster-AmazonEKSClusterPolicy"].urn,
            inline[f"{name}-cluster-secrets-key"].urn,
            log_group.urn,
        }
        assert required <= set(cluster.dependencies)
        assert log_group.inputs["name"] == f"/aws/eks/edgeplane-{env}-{name}/cluster"
        assert log_group.inputs["retentionInDays"] == spec.infra.log_retention_days
        assert log_group.inputs["kmsKeyId"] == f"arn:aws:mock:::aws:kms/key:Key/{name}-media"
        statements = json.loads(keys[f"{name}-media"].inputs["policy"])["Statement"]
        logs_statement = next(s for s in statements if s["Sid"] == "ControlPlaneLogsOfThisClusterOnly")
        assert logs_statement["Principal"] == {"Service": f"logs.{region.cloud_region}.amazonaws.com"}
        assert logs_statement["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"] == (
            f"arn:aws:logs:{region.cloud_region}:{MOCK_ACCOUNT_ID}:log-group:/aws/eks/edgeplane-{env}-{name}/cluster"
        )


@pytest.mark.parametrize("env", ENVS)
def test_pod_identities_for_recorder_autoscaler_external_dns_and_controller(
    graphs: dict[str, RecordedGraph], env: str
) -> None:
    spec, graph = _spec(env), graphs[env]
    assert spec.infra is not None
    associations = _named(graph, "aws:eks/podIdentityAssociation:PodIdentityAssociation")
    roles = _named(graph, "aws:iam/role:Role")
    inline = _named(graph, "aws:iam/rolePolicy:RolePolicy")
    entries = _named(graph, "aws:eks/accessEntry:AccessEntry")
    controller_role_arn = "arn:aws:mock:::aws:iam/role:Role/controller-role"
    for region in spec.regions:
        name = region.name
        expected = {
            f"{name}-recordings-writer": ("edge-media", "edge-recorder"),
            f"{name}-node-autoscaler": ("kube-system", "cluster-autoscaler"),
            f"{name}-external-dns": ("external-dns", "external-dns"),
        }
        if name == spec.infra.controller_region:
            expected[f"{name}-controller"] = ("edgeplane-system", "edgeplane-controller")
        mine = {k: a for k, a in associations.items() if k.startswith(f"{name}-")}
        assert {k: (a.inputs["namespace"], a.inputs["serviceAccount"]) for k, a in mine.items()} == expected
        for key in expected:
            if key.endswith("-controller"):
                assert mine[key].inputs["roleArn"] == controller_role_arn
                continue
            trust = json.loads(roles[key].inputs["assumeRolePolicy"])["Statement"]
            assert trust == [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "pods.eks.amazonaws.com"},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                }
            ]
            assert inline[key].urn in mine[key].dependencies  # permissions before credentials
        writer = json.loads(inline[f"{name}-recordings-writer"].inputs["policy"])["Statement"]
        bucket_arn = f"arn:aws:mock:::aws:s3/bucket:Bucket/{name}-recordings"
        assert writer[0]["Resource"] == f"{bucket_arn}/*"
        assert writer[1]["Resource"] == f"arn:aws:mock:::aws:kms/key:Key/{name}-media"
        assert writer[1]["Condition"]["StringEquals"] == {
            "kms:ViaService": f"s3.{region.cloud_region}.amazonaws.com",
            "kms:EncryptionContext:aws:s3:arn": bucket_arn,
        }
        dns = json.loads(inline[f"{name}-external-dns"].inputs["policy"])["Statement"][0]
        assert dns["Resource"] == f"arn:aws:route53:::hostedzone/{ZONE_ID}"
        names = dns["Condition"]["ForAllValues:StringEquals"]["route53:ChangeResourceRecordSetsNormalizedRecordNames"]
        assert f"{name}.regions.{MEDIA_DOMAIN}" in names and all(
            n.endswith(f"{name}.regions.{MEDIA_DOMAIN}") for n in names
        )
        scaler = json.loads(inline[f"{name}-node-autoscaler"].inputs["policy"])["Statement"][0]
        assert scaler["Condition"] == {"StringEquals": {"aws:ResourceTag/eks:cluster-name": f"edgeplane-{env}-{name}"}}
        entry = entries[f"{name}-controller"]
        assert entry.inputs["principalArn"] == controller_role_arn
        assert entry.inputs["kubernetesGroups"] == [CONTROLLER_KUBERNETES_GROUP]
    statements = json.loads(inline["controller-describe-clusters"].inputs["policy"])["Statement"]
    controller_policy = statements[0]
    assert sorted(controller_policy["Resource"]) == sorted(
        f"arn:aws:eks:{r.cloud_region}:{MOCK_ACCOUNT_ID}:cluster/edgeplane-{env}-{r.name}" for r in spec.regions
    )
    # What --actuate aws calls, and only on this environment's node groups, clusters and market records.
    by_sid = {s["Sid"]: s for s in statements}
    assert by_sid["ScaleOutNodeGroups"]["Action"] == "eks:UpdateNodegroupConfig"
    assert all(":nodegroup/edgeplane-" in arn for arn in by_sid["ScaleOutNodeGroups"]["Resource"])
    terminate = by_sid["TerminateDrainedInstancesOfTheseClusters"]
    assert terminate["Action"] == "autoscaling:TerminateInstanceInAutoScalingGroup"
    assert sorted(terminate["Condition"]["StringEquals"]["aws:ResourceTag/eks:cluster-name"]) == sorted(
        f"edgeplane-{env}-{r.name}" for r in spec.regions
    )
    records = by_sid["WriteOnlyTheMarketsWeightedRecords"]
    assert records["Resource"] == f"arn:aws:route53:::hostedzone/{ZONE_ID}"
    assert records["Condition"]["ForAllValues:StringEquals"][
        "route53:ChangeResourceRecordSetsNormalizedRecordNames"
    ] == sorted(f"{m.code.lower()}.markets.{MEDIA_DOMAIN}" for m in spec.markets)
    assert by_sid["WaitForInsync"]["Action"] == "route53:GetChange"


def test_without_a_dns_zone_external_dns_gets_no_role(staging_graph: RecordedGraph) -> None:
    roles = _named(staging_graph, "aws:iam/role:Role")
    assert not [name for name in roles if name.endswith("-external-dns")]
    assert [name for name in roles if name.endswith("-recordings-writer")]


@pytest.mark.parametrize("env", ENVS)
def test_recordings_expire_after_the_shortest_retention_of_the_regions_jurisdictions(
    graphs: dict[str, RecordedGraph], env: str
) -> None:
    spec, graph = _spec(env), graphs[env]
    lifecycles = _named(graph, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    buckets = _named(graph, "aws:s3/bucket:Bucket")
    for region in spec.regions:
        lifecycle = lifecycles[f"{region.name}-recordings"]
        (rule,) = lifecycle.inputs["rules"]
        days = recordings_retention_days(spec, region.name)
        listing = [j.recordings_retention_days for j in spec.jurisdictions if region.name in j.allowed_regions]
        assert days == min(d for d in listing if d is not None)
        assert rule["status"] == "Enabled" and rule["expiration"] == {"days": days}
        assert rule["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 1}
        assert lifecycle.property_dependencies["bucket"] == (buckets[f"{region.name}-recordings"].urn,)


def test_retention_takes_the_strictest_jurisdiction() -> None:
    spec = _spec("prod")
    strict = spec.model_copy(
        update={
            "jurisdictions": [
                j.model_copy(update={"recordings_retention_days": 5}) if j.name == "uk" else j
                for j in spec.jurisdictions
            ]
        }
    )
    assert recordings_retention_days(strict, "fra") == 5  # uk lists fra
    assert recordings_retention_days(strict, "iad") == 30  # only global lists iad
