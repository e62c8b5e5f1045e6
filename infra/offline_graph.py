"""Builds the program's resource graph offline, under `pulumi.runtime.set_mocks`, and records it.

No Pulumi CLI, provider plugin or cloud account is involved: the mock monitor answers every
registration, and `RecordingMonitor` keeps what the engine would have received (type, name,
inputs, provider reference, parent, ignore_changes). Used by `tests/infra/` to assert properties of
the real program and by `bench/infra_graph_build.py` to time it. The Mocks return plausible
outputs (ids, ARNs, the EKS cluster security group) so every `apply` in the program runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks

PROJECT = "edgeplane"
MOCK_ACCOUNT_ID = "123456789012"


@dataclass(frozen=True)
class RecordedResource:
    """One resource registration as the engine received it."""

    type: str
    name: str
    urn: str
    inputs: Mapping[str, Any]
    provider_urn: str | None
    """URN of the explicit provider (None: the default provider, or a component)."""
    parent_urn: str | None
    ignore_changes: tuple[str, ...]
    property_dependencies: Mapping[str, tuple[str, ...]]
    """Input property -> URNs of the resources its value came from."""
    custom: bool
    dependencies: tuple[str, ...] = ()
    """URNs the engine must create first: explicit `depends_on` plus every property dependency."""


@dataclass
class RecordedGraph:
    """Every resource of one program run, in registration order."""

    resources: list[RecordedResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    """Stack outputs with every Output resolved to its (mock) value."""

    def of_type(self, type_token: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_token]

    def by_urn(self) -> dict[str, RecordedResource]:
        return {r.urn: r for r in self.resources}

    def provider_of(self, resource: RecordedResource) -> RecordedResource | None:
        if resource.provider_urn is None:
            return None
        return self.by_urn().get(resource.provider_urn)


class EdgeplaneMocks(Mocks):
    """Outputs a real deployment would return, enough for every `apply` in the program.

    Keeps each resource's inputs (by type and name, unique in this program) for RecordingMonitor.
    """

    def __init__(self) -> None:
        self.inputs: dict[tuple[str, str], dict[str, Any]] = {}

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        self.inputs[(args.typ, args.name)] = dict(args.inputs)
        resource_id = f"{args.name}-id"
        state = dict(args.inputs)
        arn = f"arn:aws:mock:::{args.typ}/{args.name}"
        state.setdefault("arn", arn)
        if args.typ == "aws:eks/cluster:Cluster":
            state["name"] = args.inputs.get("name", args.name)
            state["endpoint"] = f"https://{args.name}.eks.mock"
            state["vpcConfig"] = {**args.inputs.get("vpcConfig", {}), "clusterSecurityGroupId": f"sg-{args.name}"}
        elif args.typ == "aws:eks/nodeGroup:NodeGroup":
            state["nodeGroupName"] = args.name
        elif args.typ == "aws:s3/bucket:Bucket":
            state["bucket"] = args.name
        elif args.typ == "aws:ec2/launchTemplate:LaunchTemplate":
            state["latestVersion"] = 1
        elif args.typ == "aws:kms/key:Key":
            state["keyId"] = resource_id
        elif args.typ == "aws:iam/role:Role":
            state["name"] = args.name
        elif args.typ == "aws:cloudwatch/logGroup:LogGroup":
            state["name"] = args.inputs.get("name", args.name)
        return resource_id, state

    def call(self, args: MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]]]:
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {"names": [f"zone-{s}" for s in "abcdef"], "zoneIds": [f"z{i}" for i in range(6)]}, []
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": MOCK_ACCOUNT_ID,
                "arn": f"arn:aws:iam::{MOCK_ACCOUNT_ID}:user/mock",
                "userId": "mock",
            }, []
        return {}, []


class RecordingMonitor(MockMonitor):
    """A MockMonitor that also keeps what the engine receives but MockResourceArgs leaves out."""

    def __init__(self, mocks: EdgeplaneMocks, graph: RecordedGraph) -> None:
        super().__init__(mocks)
        self.edgeplane_mocks = mocks
        self.graph = graph

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.graph.resources.append(
                RecordedResource(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    inputs=self.edgeplane_mocks.inputs.get((request.type, request.name), {}),
                    # A provider reference is "<provider urn>::<provider id>".
                    provider_urn=request.provider.rsplit("::", 1)[0] if request.provider else None,
                    parent_urn=request.parent or None,
                    ignore_changes=tuple(request.ignoreChanges),
                    property_dependencies={key: tuple(deps.urns) for key, deps in request.propertyDependencies.items()},
                    custom=bool(request.custom),
                    dependencies=tuple(request.dependencies),
                )
            )
        return response


def ensure_event_loop() -> None:
    """Give this thread an event loop if it has none: Pulumi's mocks and resources call
    `asyncio.get_event_loop()`, which raises once anything in the process (an `asyncio.run`) has
    closed and unset the loop it used."""
    try:
        asyncio.get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


def build_graph(config: Mapping[str, str], stack: str = "test") -> RecordedGraph:
    """Run `infra.program.run()` under mocks with the given `edgeplane:*` config; return its graph.

    Raises what the program raises (`pulumi.RunError` for a bad environment file).
    """
    ensure_event_loop()
    graph = RecordedGraph()
    mocks = EdgeplaneMocks()
    monitor = RecordingMonitor(mocks, graph)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(dict(config))
    from infra import program  # imported after set_mocks, as Pulumi's unit-testing guide requires

    @pulumi.runtime.test
    def _run() -> Any:
        return pulumi.Output.from_input(program.run()).apply(graph.outputs.update)

    _run()
    return graph


def environment_config(environment_file: str | Path, **extra: str) -> dict[str, str]:
    """Config map for `build_graph`: `edgeplane:environment` plus `edgeplane:<key>` extras."""
    config = {"edgeplane:environment": str(environment_file)}
    config.update({f"edgeplane:{key}": value for key, value in extra.items()})
    return config
