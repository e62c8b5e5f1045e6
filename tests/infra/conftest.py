"""Shared fixtures for the infra tests: the real program's graph under Pulumi mocks, per environment,
and converters from recorded resources to the arguments the policy pack receives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)

from infra.offline_graph import RecordedGraph, RecordedResource, build_graph, environment_config

REPO = Path(__file__).resolve().parents[2]
ENVIRONMENTS = REPO / "environments"
ZONE_ID = "Z0123456789EXAMPLE"
MEDIA_DOMAIN = "media.example.com"


def env_file(name: str) -> Path:
    return ENVIRONMENTS / f"{name}.yaml"


def env_data(name: str) -> dict[str, Any]:
    data = yaml.safe_load(env_file(name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def write_env(tmp_path: Path, data: dict[str, Any], name: str = "broken.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def prod_graph() -> RecordedGraph:
    return build_graph(environment_config(env_file("prod"), dnsZoneId=ZONE_ID, mediaDomain=MEDIA_DOMAIN), stack="prod")


@pytest.fixture(scope="session")
def staging_graph() -> RecordedGraph:
    return build_graph(environment_config(env_file("staging")), stack="staging")


@pytest.fixture(scope="session")
def graphs(prod_graph: RecordedGraph) -> dict[str, RecordedGraph]:
    """Every shipped environment's graph, each with a DNS zone so every identity is declared."""
    built = {"prod": prod_graph}
    for env in ("staging", "local"):
        config = environment_config(env_file(env), dnsZoneId=ZONE_ID, mediaDomain=MEDIA_DOMAIN)
        built[env] = build_graph(config, stack=env)
    return built


def _options(resource: RecordedResource) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=False,
        ignore_changes=list(resource.ignore_changes),
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=resource.parent_urn,
    )


def policy_provider(graph: RecordedGraph, resource: RecordedResource) -> PolicyProviderResource | None:
    provider = graph.provider_of(resource)
    if provider is None:
        return None
    return PolicyProviderResource(provider.type, dict(provider.inputs), provider.urn, provider.name)


def validation_args(
    graph: RecordedGraph,
    resource: RecordedResource,
    props: dict[str, Any] | None = None,
    provider: PolicyProviderResource | str | None = "recorded",
    config: dict[str, Any] | None = None,
) -> ResourceValidationArgs:
    """What the engine hands a ResourceValidationPolicy for `resource` (optionally tampered with)."""
    return ResourceValidationArgs(
        resource_type=resource.type,
        props=dict(resource.inputs) if props is None else props,
        urn=resource.urn,
        name=resource.name,
        opts=_options(resource),
        provider=policy_provider(graph, resource) if provider == "recorded" else provider,  # type: ignore[arg-type]
        config=config,
    )


def stack_args(graph: RecordedGraph, drop: set[str] | None = None) -> StackValidationArgs:
    """What the engine hands a StackValidationPolicy for the whole graph (minus URNs in `drop`)."""
    kept = [r for r in graph.resources if r.urn not in (drop or set())]
    by_urn: dict[str, PolicyResource] = {}
    for r in kept:
        by_urn[r.urn] = PolicyResource(
            r.type, dict(r.inputs), r.urn, r.name, _options(r), policy_provider(graph, r), None, [], {}
        )
    for r in kept:
        by_urn[r.urn].property_dependencies = {
            key: [by_urn[u] for u in urns if u in by_urn] for key, urns in r.property_dependencies.items()
        }
    return StackValidationArgs(list(by_urn.values()))


class Violations(list[str]):
    """A report_violation callback that collects messages."""

    def __call__(self, message: str, urn: str | None = None) -> None:
        self.append(message)


@pytest.fixture(autouse=True)
def _event_loop_for_pulumi() -> None:
    """Pulumi's mocks need a current event loop; earlier tests' `asyncio.run` unset it."""
    from infra.offline_graph import ensure_event_loop

    ensure_event_loop()


def pytest_configure(config: pytest.Config) -> None:
    # pulumi_aws warns about its own deprecated V2 aliases when its s3 module is imported; we use the new names.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_aws.*")
