"""The policy pack as the Pulumi engine sees it: `infra/policy/__main__.py` started as its own
process (it binds 127.0.0.1 on a free port and prints the port), queried over the Analyzer gRPC
interface the engine uses during `pulumi preview --policy-pack infra/policy`."""

from __future__ import annotations

import json
import select
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from infra.offline_graph import RecordedGraph
from infra.policy.pack import PACK_NAME, POLICIES
from tests.infra.conftest import REPO

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    process = subprocess.Popen(
        [sys.executable, "__main__.py"],
        cwd=REPO / "infra" / "policy",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "policy pack printed no port within 30 s"
        port = int(process.stdout.readline().strip())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=10)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.kill()
        process.wait(timeout=10)


def _struct(values: Any) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    json_format.ParseDict(json.loads(json.dumps(values)), struct)
    return struct


def _analyze(
    stub: analyzer_pb2_grpc.AnalyzerStub, graph: RecordedGraph, resource_name: str, provider_region: str
) -> list[analyzer_pb2.AnalyzeDiagnostic]:
    resource = next(r for r in graph.resources if r.name == resource_name and r.type.startswith("aws:"))
    request = analyzer_pb2.AnalyzeRequest(
        type=resource.type,
        properties=_struct(resource.inputs),
        urn=resource.urn,
        name=resource.name,
        provider=analyzer_pb2.AnalyzerProviderResource(
            type="pulumi:providers:aws",
            properties=_struct({"region": provider_region}),
            urn="urn:pulumi:prod::edgeplane::pulumi:providers:aws::x-aws",
            name="x-aws",
        ),
    )
    return list(stub.Analyze(request, timeout=30).diagnostics)


def test_engine_sees_every_policy_as_mandatory(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
    assert info.name == PACK_NAME
    assert {p.name for p in info.policies} == {p.name for p in POLICIES}
    mandatory = analyzer_pb2.EnforcementLevel.Value("MANDATORY")
    assert all(p.enforcementLevel == mandatory for p in info.policies)


def test_engine_gets_a_violation_for_a_bucket_outside_its_jurisdiction(
    analyzer: analyzer_pb2_grpc.AnalyzerStub, prod_graph: RecordedGraph
) -> None:
    assert _analyze(analyzer, prod_graph, "fra-recordings", "eu-central-1") == []
    diagnostics = _analyze(analyzer, prod_graph, "fra-recordings", "us-east-1")
    assert {d.policyName for d in diagnostics} == {
        "regional-resources-in-their-jurisdiction",
        "recordings-buckets-private-and-resident",
    }
    assert all(d.enforcementLevel == analyzer_pb2.EnforcementLevel.Value("MANDATORY") for d in diagnostics)
    assert any("created in us-east-1, outside jurisdiction 'eu'" in d.message for d in diagnostics)


def test_engine_gets_a_violation_for_ssh_open_to_the_world(
    analyzer: analyzer_pb2_grpc.AnalyzerStub, prod_graph: RecordedGraph
) -> None:
    assert _analyze(analyzer, prod_graph, "sin-media-turn-tls", "ap-southeast-1") == []
    rule = next(r for r in prod_graph.resources if r.name == "sin-media-turn-tls")
    request = analyzer_pb2.AnalyzeRequest(
        type=rule.type,
        properties=_struct({**rule.inputs, "fromPort": 22, "toPort": 22}),
        urn=rule.urn,
        name=rule.name,
    )
    diagnostics = analyzer.Analyze(request, timeout=30).diagnostics
    messages = {d.policyName: d.message for d in diagnostics}
    assert "opens tcp 22-22 to 0.0.0.0/0" in messages["security-groups-expose-only-media-ports"]
    assert "default AWS provider" in messages["regional-resources-in-their-jurisdiction"]
