"""The actuator `--actuate kubernetes --actuate aws` builds, with its AWS half against moto's server:
weights reach Route 53's records and a node count the region's EKS node group, while every verb
also reaches the Kubernetes backend (a recording stand-in here)."""

from __future__ import annotations

from pathlib import Path

from controller.spec_file import load_environment
from edgectl.bootstrap import AwsSettings, compose_with_aws
from tests.aws.test_eks_node_group_actuator import desired_of, make_node_group
from tests.aws.test_route53_actuator import DOMAIN, lay_out_zone, weights_in_zone
from tests.edgectl.test_actuate_option import Recording

LOCAL = load_environment(Path(__file__).resolve().parents[2] / "environments" / "local.yaml")


def test_weights_and_node_counts_reach_aws_and_kubernetes(moto_url):
    zone, _ = lay_out_zone(moto_url)
    eks = make_node_group(moto_url, "eu-central-1", "edge-fra", "media", min_size=2, max_size=40, desired=2)
    kubernetes = Recording("kubernetes")
    aws = AwsSettings(
        route53_zone_id=zone, media_domain=DOMAIN, node_groups=("fra=edge-fra/media",), endpoint_url=moto_url
    )
    actuator = compose_with_aws(LOCAL, aws, kubernetes)
    record = actuator.set_traffic_weights({"DE": {"fra": 0.25, "dub": 0.75}}, plan_id="p", actor="loop", reason="")
    assert record.changed and set(record.after) == {"kubernetes", "route53"}
    assert {r: x["Weight"] for r, x in weights_in_zone(moto_url, zone)["DE"].items()} == {"fra": 64, "dub": 191}
    actuator.set_desired_nodes("fra", 9, plan_id="p", actor="loop", reason="")
    actuator.set_desired_nodes("dub", 4, plan_id="p", actor="loop", reason="")  # no node group: Kubernetes only
    assert desired_of(eks, "edge-fra", "media")["desiredSize"] == 9
    assert kubernetes.calls == [
        ("set_traffic_weights", "weights"),
        ("set_desired_nodes", "fra"),
        ("set_desired_nodes", "dub"),
    ]
