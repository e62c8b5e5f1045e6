"""Properties of every regional resource the real program declares, under Pulumi mocks (prod: 13 regions)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from controller.spec_file import load_environment
from infra import residency_tags as tags
from infra.edge_media_cluster import MEDIA_NODE_LABEL, MEDIA_NODE_TAINT, node_ami_type
from infra.offline_graph import RecordedGraph, RecordedResource, build_graph, environment_config
from infra.policy.residency_policies import GLOBAL_SERVICE_MODULES, UNTAGGABLE_TYPES
from tests.infra.conftest import env_file

PROD = load_environment(env_file("prod"))
COMPONENT = "edgeplane:infra:EdgeMediaCluster"


def _component_region(graph: RecordedGraph, resource: RecordedResource) -> str | None:
    """Name of the EdgeMediaCluster (= region) a resource belongs to, following parents."""
    by_urn = graph.by_urn()
    current: RecordedResource | None = resource
    while current is not None:
        if current.type == COMPONENT:
            return current.name
        current = by_urn.get(current.parent_urn or "")
    return None


def _regional(graph: RecordedGraph) -> list[RecordedResource]:
    return [r for r in graph.resources if r.type.startswith("aws:") and _component_region(graph, r) is not None]


def test_one_explicit_provider_per_region_and_unknown_regions_skip_enum_validation(prod_graph: RecordedGraph) -> None:
    providers = prod_graph.of_type("pulumi:providers:aws")
    regional = {_component_region(prod_graph, p): p for p in providers if _component_region(prod_graph, p)}
    assert set(regional) == {r.name for r in PROD.regions}
    for region in PROD.regions:
        inputs = regional[region.name].inputs
        assert inputs["region"] == region.cloud_region
        # me-west-1 is newer than pulumi-aws's Region enum; every other prod region is in it.
        expected_skip = "true" if region.cloud_region == "me-west-1" else "false"
        assert str(inputs["skipRegionValidation"]).lower() == expected_skip, region.name


@pytest.mark.parametrize("env", ["prod", "staging", "local"])
def test_no_resource_outside_its_regions_provider(graphs: dict[str, RecordedGraph], env: str) -> None:
    graph = graphs[env]
    spec = load_environment(env_file(env))
    assert spec.infra is not None
    aws_resources = [r for r in graph.resources if r.type.startswith("aws:")]
    assert aws_resources
    region_of = {r.name: r.cloud_region for r in spec.regions}
    by_urn = graph.by_urn()
    for resource in aws_resources:
        provider = graph.provider_of(resource)
        assert provider is not None, f"{resource.urn} uses the default provider"
        region = _component_region(graph, resource)
        if region is not None:
            assert provider.inputs["region"] == region_of[region], resource.urn
            assert _component_region(graph, provider) == region
            continue
        parent = by_urn[resource.parent_urn or ""]
        if parent.type == "edgeplane:infra:ControllerIdentity":
            # IAM is global, but even the controller's role goes through its home region's provider.
            assert resource.type.startswith("aws:iam/"), resource.urn
            assert provider.inputs["region"] == region_of[spec.infra.controller_region]
        else:
            assert resource.type.startswith("aws:route53/"), resource.urn
            assert provider.inputs["region"] == "us-east-1"


def test_regional_resources_carry_residency_tags_matching_their_region(prod_graph: RecordedGraph) -> None:
    regions = PROD.region_by_name
    checked: dict[str, set[str]] = {}
    for resource in _regional(prod_graph):
        module = resource.type.split(":")[1].split("/")[0]
        if resource.type in UNTAGGABLE_TYPES or (module in GLOBAL_SERVICE_MODULES and "tags" not in resource.inputs):
            continue
        region = regions[_component_region(prod_graph, resource) or ""]
        jurisdiction = PROD.jurisdiction_by_name[region.jurisdiction]
        resource_tags = resource.inputs.get("tags")
        assert resource_tags, f"{resource.urn} has no tags"
        assert resource_tags[tags.ENVIRONMENT] == "prod"
        assert resource_tags[tags.REGION] == region.name
        assert resource_tags[tags.CLOUD_REGION] == region.cloud_region
        assert resource_tags[tags.JURISDICTION] == region.jurisdiction
        assert resource_tags[tags.JURISDICTION_CLOUD_REGIONS].split() == [
            regions[n].cloud_region for n in jurisdiction.allowed_regions
        ]
        assert all(len(v) <= 256 for v in resource_tags.values())
        checked.setdefault(region.name, set()).add(resource.type.rsplit(":", 1)[-1])
    must_be_tagged = {
        "Vpc",
        "Subnet",
        "SecurityGroup",
        "Key",
        "Role",
        "Cluster",
        "LaunchTemplate",
        "NodeGroup",
        "Bucket",
    }
    assert all(must_be_tagged <= kinds for kinds in checked.values())
    assert set(checked) == set(regions)


def test_media_security_group_opens_only_rtp_udp_and_turn_tls(prod_graph: RecordedGraph) -> None:
    network = PROD.network
    assert not any(sg.inputs.get("ingress") for sg in prod_graph.of_type("aws:ec2/securityGroup:SecurityGroup"))
    rules = prod_graph.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert len(rules) == 2 * len(PROD.regions)
    for region in PROD.regions:
        mine = [r.inputs for r in rules if _component_region(prod_graph, r) == region.name]
        opened = sorted((r["ipProtocol"], int(r["fromPort"]), int(r["toPort"]), r["cidrIpv4"]) for r in mine)
        assert opened == [
            ("tcp", network.turn_tls_port, network.turn_tls_port, "0.0.0.0/0"),
            ("udp", network.media_udp_port_min, network.media_udp_port_max, "0.0.0.0/0"),
        ]
    assert not prod_graph.of_type("aws:ec2/securityGroupRule:SecurityGroupRule")


def test_node_group_sizes_come_from_the_spec_and_desired_size_belongs_to_the_controller(
    prod_graph: RecordedGraph,
) -> None:
    groups = {
        _component_region(prod_graph, g): g
        for g in prod_graph.of_type("aws:eks/nodeGroup:NodeGroup")
        if g.name.endswith("-media")
    }
    assert set(groups) == {r.name for r in PROD.regions}
    for region in PROD.regions:
        group = groups[region.name]
        scaling = group.inputs["scalingConfig"]
        assert (int(scaling["minSize"]), int(scaling["maxSize"])) == (region.min_nodes, region.max_nodes)
        assert int(scaling["desiredSize"]) == region.min_nodes
        assert group.ignore_changes == ("scalingConfig.desiredSize",)
        assert group.inputs["instanceTypes"] == [region.node_instance_type]
        assert group.inputs["amiType"] == "AL2023_ARM_64_STANDARD"  # c6gn is Graviton
        assert group.inputs["capacityType"] == "ON_DEMAND"
        assert group.inputs["labels"][MEDIA_NODE_LABEL] == "media"
        assert group.inputs["taints"] == [{"key": MEDIA_NODE_TAINT, "value": "true", "effect": "NO_SCHEDULE"}]


def test_ami_type_follows_the_instance_architecture() -> None:
    assert node_ami_type("c6gn.2xlarge") == "AL2023_ARM_64_STANDARD"
    assert node_ami_type("m7g.large") == "AL2023_ARM_64_STANDARD"
    assert node_ami_type("c6i.2xlarge") == "AL2023_x86_64_STANDARD"
    assert node_ami_type("g5.xlarge") == "AL2023_x86_64_STANDARD"


def test_media_nodes_get_the_media_group_and_imdsv2_through_the_launch_template(prod_graph: RecordedGraph) -> None:
    for template in prod_graph.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        if not template.name.endswith("-media-node"):
            continue
        region = _component_region(prod_graph, template)
        assert template.inputs["metadataOptions"]["httpTokens"] == "required"
        assert int(template.inputs["metadataOptions"]["httpPutResponseHopLimit"]) == 1
        assert template.inputs["vpcSecurityGroupIds"] == [f"sg-{region}-media", f"{region}-media-id"]
        kinds = {spec["resourceType"] for spec in template.inputs["tagSpecifications"]}
        assert kinds == {"instance", "volume", "network-interface"}
        for spec in template.inputs["tagSpecifications"]:
            assert spec["tags"][tags.JURISDICTION] == PROD.region_by_name[region or ""].jurisdiction


def test_iam_roles_get_only_the_managed_policies_they_need(prod_graph: RecordedGraph) -> None:
    attachments = prod_graph.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    for region in PROD.regions:
        mine = [a.inputs for a in attachments if _component_region(prod_graph, a) == region.name]
        by_role: dict[str, set[str]] = {}
        for attachment in mine:
            by_role.setdefault(attachment["role"], set()).add(attachment["policyArn"].rsplit("/", 1)[-1])
        assert by_role == {  # Pod Identity roles have inline policies only
            f"{region.name}-cluster": {"AmazonEKSClusterPolicy"},
            f"{region.name}-node": {
                "AmazonEKSWorkerNodePolicy",
                "AmazonEKS_CNI_Policy",
                "AmazonEC2ContainerRegistryPullOnly",
            },
        }
    for inline in prod_graph.of_type("aws:iam/rolePolicy:RolePolicy"):
        if not inline.name.endswith("-cluster-secrets-key"):
            continue
        owner = _component_region(prod_graph, inline)
        statements = json.loads(inline.inputs["policy"])["Statement"]
        assert statements == [
            {
                "Effect": "Allow",
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
                "Resource": f"arn:aws:mock:::aws:kms/key:Key/{owner}-media",
            }
        ]


def test_recordings_bucket_is_kms_encrypted_with_its_regions_key_and_private(prod_graph: RecordedGraph) -> None:
    def regional(type_token: str) -> dict[str | None, RecordedResource]:
        return {_component_region(prod_graph, r): r for r in prod_graph.of_type(type_token)}

    buckets = regional("aws:s3/bucket:Bucket")
    encryption = regional("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    blocks = regional("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    ownership = regional("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    policies = regional("aws:s3/bucketPolicy:BucketPolicy")
    keys = regional("aws:kms/key:Key")
    for region in PROD.regions:
        name = region.name
        bucket = buckets[name]
        assert bucket.inputs["tags"][tags.PURPOSE] == tags.PURPOSE_RECORDINGS
        assert bucket.inputs["forceDestroy"] is False
        assert prod_graph.provider_of(bucket).inputs["region"] == region.cloud_region  # type: ignore[union-attr]
        (rule,) = encryption[name].inputs["rules"]
        assert rule["applyServerSideEncryptionByDefault"] == {
            "sseAlgorithm": "aws:kms",
            "kmsMasterKeyId": f"arn:aws:mock:::aws:kms/key:Key/{name}-media",
        }
        assert keys[name].inputs["enableKeyRotation"] is True
        assert encryption[name].property_dependencies["bucket"] == (bucket.urn,)
        assert all(
            blocks[name].inputs[flag] is True
            for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        )
        assert blocks[name].property_dependencies["bucket"] == (bucket.urn,)
        assert ownership[name].inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
        (deny,) = json.loads(policies[name].inputs["policy"])["Statement"]
        assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_cluster_encrypts_secrets_and_keeps_its_api_private_by_default(
    prod_graph: RecordedGraph, staging_graph: RecordedGraph
) -> None:
    for cluster in prod_graph.of_type("aws:eks/cluster:Cluster"):
        region_name = _component_region(prod_graph, cluster)
        assert cluster.inputs["encryptionConfig"] == {
            "provider": {"keyArn": f"arn:aws:mock:::aws:kms/key:Key/{region_name}-media"},
            "resources": ["secrets"],
        }
        assert cluster.inputs["vpcConfig"]["endpointPublicAccess"] is False
        assert len(cluster.inputs["vpcConfig"]["subnetIds"]) == PROD.region_by_name[region_name or ""].az_count
    assert len(staging_graph.of_type("aws:ec2/subnet:Subnet")) == 2 * len(staging_graph.of_type(COMPONENT))


def test_cluster_api_opens_only_to_configured_cidrs() -> None:
    graph = build_graph(environment_config(env_file("local"), clusterApiCidrs='["203.0.113.0/24"]'), stack="local")
    for cluster in graph.of_type("aws:eks/cluster:Cluster"):
        vpc_config = cluster.inputs["vpcConfig"]
        assert vpc_config["endpointPublicAccess"] is True
        assert vpc_config["publicAccessCidrs"] == ["203.0.113.0/24"]
    assert not graph.of_type("aws:route53/record:Record")  # no dnsZoneId: DNS left alone


@pytest.mark.parametrize(
    "extra, fragment",
    [
        ({"dnsZoneId": "Z1"}, "edgeplane:dnsZoneId and edgeplane:mediaDomain go together"),
        ({"clusterApiCidrs": '"10.0.0.0/8"'}, "edgeplane:clusterApiCidrs must be a list"),
    ],
)
def test_inconsistent_stack_config_is_refused_with_the_key_named(extra: dict[str, str], fragment: str) -> None:
    import pulumi

    with pytest.raises(pulumi.RunError, match=fragment):
        build_graph(environment_config(env_file("local"), **extra))


def test_stack_outputs_name_each_regions_cluster_node_group_and_bucket(prod_graph: RecordedGraph) -> None:
    outputs = prod_graph.outputs
    assert outputs["environment"] == "prod"
    assert set(outputs["regions"]) == {r.name for r in PROD.regions}
    for region in PROD.regions:
        assert outputs["regions"][region.name] == {
            "cloud_region": region.cloud_region,
            "jurisdiction": region.jurisdiction,
            "cluster_name": f"edgeplane-prod-{region.name}",
            "cluster_endpoint": f"https://{region.name}-media.eks.mock",
            "node_group": f"{region.name}-media",
            "system_node_group": f"{region.name}-system",
            "recordings_bucket": f"{region.name}-recordings",
            "control_plane_log_group": f"/aws/eks/edgeplane-prod-{region.name}/cluster",
            "vpc_cidr": region.vpc_cidr,
        }
    assert set(outputs["routing"]["health_check_ids"]) == {r.name for r in PROD.regions}


def test_component_refuses_a_tampered_placement_before_registering_anything() -> None:
    import pulumi

    from controller.spec.address_plan import plan_region
    from infra import offline_graph
    from infra.edge_media_cluster import EdgeMediaCluster, EdgeMediaClusterArgs
    from infra.residency import ResidencyError, residency_preflight

    placement = {p.region: p for p in residency_preflight(PROD)}["ruh"]
    moved = dataclasses.replace(placement, cloud_region="me-central-1", country="AE")  # Saudi recordings to the UAE
    region = PROD.region_by_name["ruh"].model_copy(update={"cloud_region": "me-central-1"})
    graph = offline_graph.RecordedGraph()
    mocks = offline_graph.EdgeplaneMocks()
    pulumi.runtime.set_mocks(
        mocks, project="edgeplane", stack="t", monitor=offline_graph.RecordingMonitor(mocks, graph)
    )

    assert PROD.infra is not None

    @pulumi.runtime.test
    def declare() -> None:
        args = EdgeMediaClusterArgs(
            "prod", region, moved, PROD.network, PROD.infra, plan_region(region, PROD.infra), 30, "arn:role"
        )
        EdgeMediaCluster("ruh", args)

    with pytest.raises(ResidencyError, match=r"refused: region 'ruh' \(me-central-1\) is not among the cloud regions"):
        declare()
    assert graph.resources == []
