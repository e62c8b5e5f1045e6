"""Composition root: builds the real adapters and the Temporal client from command-line settings.

The only place that chooses implementations (cosmicpython's bootstrap): the observer (Prometheus,
or the simulator's own snapshot), the actuator (`FleetSettings.actuate`: the simulator's HTTP API;
Kubernetes; Kubernetes and AWS together through `CompositeActuator`), and the Temporal connection
(address, namespace, TLS). `edgectl controller run` and the failover / drill / status commands call
it; workflows and activities only see the ports.

Connection settings also come from the environment, so on-call does not repeat them on every
command (an option on the command line wins over the variable): `EDGEPLANE_TEMPORAL_ADDRESS`,
`EDGEPLANE_TEMPORAL_NAMESPACE`, `EDGEPLANE_TEMPORAL_TLS_CERT|_KEY|_CA` (file paths),
`EDGEPLANE_PROMETHEUS_URL`, `EDGEPLANE_METRICS_ADDRESS` (where `controller run` serves /metrics),
and `EDGEPLANE_USER` (who `--by` names when not given; else the OS user).
"""

from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import TLSConfig

from controller.ports import Actuator, Observer, SteeringGate
from controller.spec import EnvironmentSpec

if TYPE_CHECKING:
    from controller.adapters.eks_node_group_actuator import DrainedInstances

DEFAULT_TEMPORAL_ADDRESS = "127.0.0.1:7233"

# Environment variables the command-line options fall back to (typer's `envvar`).
ENV_TEMPORAL_ADDRESS = "EDGEPLANE_TEMPORAL_ADDRESS"
ENV_TEMPORAL_NAMESPACE = "EDGEPLANE_TEMPORAL_NAMESPACE"
ENV_TEMPORAL_TLS_CERT = "EDGEPLANE_TEMPORAL_TLS_CERT"
ENV_TEMPORAL_TLS_KEY = "EDGEPLANE_TEMPORAL_TLS_KEY"
ENV_TEMPORAL_TLS_CA = "EDGEPLANE_TEMPORAL_TLS_CA"
ENV_PROMETHEUS_URL = "EDGEPLANE_PROMETHEUS_URL"
ENV_METRICS_ADDRESS = "EDGEPLANE_METRICS_ADDRESS"
ENV_USER = "EDGEPLANE_USER"


def default_actor() -> str:
    """Who an on-call command acts as when `--by` is not given: $EDGEPLANE_USER, else the OS user.

    Never a constant such as "edgectl": four-eyes approval compares the requester with the approver.
    """
    name = os.environ.get(ENV_USER, "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers) and no LOGNAME/USER
        return f"uid-{os.getuid()}"


# The SDK's core reports a failed connect as Rust debug text ("tonic::transport::Error(Transport,
# ConnectError(... message: \"Connection refused\" ...))"); the innermost message is what helps.
_RUST_MESSAGE = re.compile(r'(?:message|error): "([^"]+)"')
_RUST_QUOTED = re.compile(r'"([^"]+)"')


def describe_connection_error(error: BaseException) -> str:
    """One readable line for an unreachable server: the innermost reason, no transport internals."""
    text = " ".join(str(error).split())
    found = _RUST_MESSAGE.findall(text) or _RUST_QUOTED.findall(text)
    if found:
        return found[-1]
    if "tonic::" in text or "Error(" in text:
        return "connection failed"
    return text or type(error).__name__


class BootstrapError(Exception):
    """A setting cannot be turned into a working adapter (message names the option)."""


@dataclass(frozen=True)
class TemporalSettings:
    address: str = DEFAULT_TEMPORAL_ADDRESS
    namespace: str = "default"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None

    def tls(self) -> TLSConfig | bool:
        if not (self.tls_cert or self.tls_key or self.tls_ca):
            return False
        if bool(self.tls_cert) != bool(self.tls_key):
            raise BootstrapError("--tls-cert and --tls-key go together")
        try:
            return TLSConfig(
                client_cert=self.tls_cert.read_bytes() if self.tls_cert else None,
                client_private_key=self.tls_key.read_bytes() if self.tls_key else None,
                server_root_ca_cert=self.tls_ca.read_bytes() if self.tls_ca else None,
            )
        except OSError as error:
            raise BootstrapError(f"cannot read TLS file: {error}") from error


async def connect_temporal(settings: TemporalSettings) -> Client:
    """Connect with the pydantic data converter every edgeplane client and worker uses."""
    return await Client.connect(
        settings.address,
        namespace=settings.namespace,
        data_converter=pydantic_data_converter,
        tls=settings.tls(),
    )


class ActuationBackend(StrEnum):
    """What `edgectl controller run --actuate` acts on (repeat to combine kubernetes and aws)."""

    SIMULATOR = "simulator"  # the simulated fleet's HTTP API: every verb
    KUBERNETES = "kubernetes"  # media pod replicas, drains, the weights ConfigMap the selector reads
    AWS = "aws"  # EKS node group desired size, Route 53 weighted records (with kubernetes: drains)


@dataclass(frozen=True)
class AwsSettings:
    """Where the AWS backend acts (`--actuate aws`); at least one of Route 53 and node groups."""

    route53_zone_id: str | None = None
    """Hosted zone of the media domain (the stack's `edgeplane:dnsZoneId`): Route 53 weights on."""
    media_domain: str | None = None
    """The media domain (`edgeplane:mediaDomain`), whose `<market>.markets.` weighted sets are written."""
    node_groups: tuple[str, ...] = ()
    """`REGION=CLUSTER/NODEGROUP` for each region whose EKS managed node group the controller sizes
    (names from `pulumi stack output`); leave a region out where a cluster autoscaler or Karpenter
    owns its nodes."""
    endpoint_url: str | None = None
    """One endpoint for every AWS API (a local test server); None: AWS's own endpoints."""


@dataclass(frozen=True)
class FleetSettings:
    """How the controller observes and acts on the fleet: one typed model for `controller run`."""

    simulator_url: str | None = None
    """The simulated fleet's HTTP API (observer, and actuator by default)."""
    prometheus_url: str | None = None
    """Prometheus to observe from (wins over the simulator as observer)."""
    demand_history_days: float = 8.0
    """Days of observed offered demand the Prometheus observer hands the core to learn each market's
    daily and weekly profile from (`controller/adapters/demand_history.py`); 0: none (the core then
    forecasts from the spec's configured profiles). Only where Prometheus' time is the fleet's clock:
    not on an accelerated simulator."""
    kube_contexts: tuple[str, ...] = ()
    """`REGION=CONTEXT` per regional cluster (the Kubernetes backend)."""
    actuate: tuple[ActuationBackend, ...] = ()
    """Backends to act on; empty: the simulator if given, else Kubernetes (the behaviour before `--actuate`)."""
    aws: AwsSettings = field(default_factory=AwsSettings)
    """The AWS backend's targets."""
    media_workload_kind: Literal["Deployment", "StatefulSet"] = "Deployment"
    """Kind of the media workload the Kubernetes backend scales and drains: Deployment (drained pods
    leave through pod-deletion-cost), StatefulSet only when chosen (docs/operations.md)."""


def build_fleet_adapters(spec: EnvironmentSpec, settings: FleetSettings) -> tuple[Observer, Actuator]:
    """Observer: Prometheus when given, else the simulator. Actuator: from `settings.actuate`."""
    observer: Observer
    simulator = None
    if settings.simulator_url:
        try:
            from controller.adapters.simulator_actuator import SimulatorActuator
        except ImportError as error:
            raise BootstrapError(f"--simulator-url: simulator adapter not available: {error}") from error
        simulator = SimulatorActuator(settings.simulator_url)
    if settings.prometheus_url:
        from controller.adapters.demand_history import PrometheusDemandHistory
        from controller.adapters.prometheus_observer import PrometheusObserver

        history = (
            PrometheusDemandHistory(settings.prometheus_url, days=settings.demand_history_days)
            if settings.demand_history_days > 0
            else None
        )
        observer = PrometheusObserver(settings.prometheus_url, spec, history=history)
    elif simulator is not None:
        observer = simulator
    else:
        raise BootstrapError("give --simulator-url or --prometheus-url: the controller needs something to observe")
    return observer, build_actuator(spec, settings, simulator)


def build_actuator(spec: EnvironmentSpec, settings: FleetSettings, simulator: Actuator | None = None) -> Actuator:
    """The actuator `settings.actuate` names: one backend as it is, kubernetes + aws as a composite."""
    backends = set(settings.actuate)
    if not backends:
        if simulator is not None:
            return simulator
        if not settings.kube_contexts:
            raise BootstrapError("give --simulator-url or --kube-contexts: the controller needs something to act on")
        backends = {ActuationBackend.KUBERNETES}
    if ActuationBackend.SIMULATOR in backends:
        if len(backends) > 1:
            raise BootstrapError("--actuate simulator acts on the simulated fleet alone; combine kubernetes and aws")
        if simulator is None:
            raise BootstrapError("--actuate simulator needs --simulator-url")
        return simulator
    if ActuationBackend.AWS in backends and ActuationBackend.KUBERNETES not in backends:
        raise BootstrapError(
            "--actuate aws needs --actuate kubernetes too: nodes leave only through drains, which act on "
            "Kubernetes (cordon, evict when their sessions end)"
        )
    if not settings.kube_contexts:
        raise BootstrapError("--actuate kubernetes needs --kube-contexts REGION=CONTEXT for each region")
    try:
        from controller.adapters.kubernetes_actuator import KubernetesActuator
    except ImportError as error:
        raise BootstrapError(f"--kube-contexts: Kubernetes actuator not available: {error}") from error
    try:
        from controller.adapters.kubernetes_api import KubernetesSettings, RegionApiCalls, parse_contexts
        from controller.adapters.kubernetes_drained_nodes import KubernetesDrainedNodes

        kubernetes_settings = KubernetesSettings(media_workload_kind=settings.media_workload_kind)
        kubernetes: Actuator = KubernetesActuator(spec, list(settings.kube_contexts), settings=kubernetes_settings)
        contexts = parse_contexts(list(settings.kube_contexts))
    except ValueError as error:
        raise BootstrapError(f"--kube-contexts: {error}") from error
    if ActuationBackend.AWS not in backends:
        return kubernetes
    # The EKS node groups shrink by exactly the instances whose drain is over, which Kubernetes knows.
    drained = KubernetesDrainedNodes(RegionApiCalls(kubernetes_settings, contexts), kubernetes_settings)
    return compose_with_aws(spec, settings.aws, kubernetes, drained)


def compose_with_aws(
    spec: EnvironmentSpec, aws: AwsSettings, kubernetes: Actuator, drained: DrainedInstances | None = None
) -> Actuator:
    """Kubernetes for every verb, plus EKS node groups (their regions; scale-in by terminating the
    instances `drained` reports) and Route 53 (weights)."""
    from controller.adapters.composite_actuator import VERBS, Backend, CompositeActuator
    from controller.adapters.eks_node_group_actuator import EksNodeGroupActuator, EksSettings, NodeGroupRef
    from controller.adapters.route53_actuator import Route53Settings, Route53WeightsActuator

    backends = [Backend("kubernetes", kubernetes, frozenset(VERBS))]
    if aws.node_groups:
        groups = {}
        for item in aws.node_groups:
            region, sep, ref = item.partition("=")
            if not sep:
                raise BootstrapError(f"--eks-node-group {item!r}: expected REGION=CLUSTER/NODEGROUP")
            try:
                groups[region] = NodeGroupRef.parse(ref)
            except ValueError as error:
                raise BootstrapError(f"--eks-node-group {item!r}: {error}") from error
        try:
            eks = EksNodeGroupActuator(
                spec, EksSettings(node_groups=groups, endpoint_url=aws.endpoint_url), drained=drained
            )
        except ValueError as error:
            raise BootstrapError(f"--eks-node-group: {error}") from error
        backends.append(Backend("eks", eks, frozenset({"set_desired_nodes"}), frozenset(groups)))
    if bool(aws.route53_zone_id) != bool(aws.media_domain):
        raise BootstrapError("--route53-zone-id and --media-domain go together")
    if aws.route53_zone_id and aws.media_domain:
        settings = Route53Settings(aws.route53_zone_id, aws.media_domain, endpoint_url=aws.endpoint_url)
        backends.append(Backend("route53", Route53WeightsActuator(spec, settings), frozenset({"set_traffic_weights"})))
    if len(backends) == 1:
        raise BootstrapError("--actuate aws needs --eks-node-group or --route53-zone-id with --media-domain")
    return CompositeActuator(backends)


def default_steering_file(environment: str) -> Path:
    """Where the steering state lives when no --steering-file is given: `.edgeplane/` under the
    working directory (a mounted volume in a container; the dev stack uses its state directory)."""
    return Path(".edgeplane") / f"steering-{environment}.json"


def build_kubernetes_steering_authority(
    spec: EnvironmentSpec, actuator: Actuator, configmap: str, kubeconfig: str | None = None
) -> SteeringGate:
    """The steering authority over a ConfigMap (`CONTEXT/NAMESPACE/NAME`, CONTEXT `in-cluster` inside a
    pod): the state lives in etcd, shared by every controller replica and readable by the selector."""
    from controller.adapters.kubernetes_steering_store import ConfigMapRef, KubernetesSteeringStore, core_api
    from controller.adapters.steering_authority import SteeringAuthority
    from controller.adapters.steering_store import SteeringStoreError

    parts = configmap.split("/")
    if len(parts) != 3 or not all(parts):
        raise BootstrapError(f"--steering-configmap {configmap!r}: expected CONTEXT/NAMESPACE/NAME")
    context, namespace, name = parts
    try:
        store = KubernetesSteeringStore(core_api(kubeconfig, context), ConfigMapRef(namespace, name), spec.name)
        store.read()
    except SteeringStoreError as error:
        raise BootstrapError(f"--steering-configmap: {error}") from error
    return SteeringAuthority(store, actuator, spec)


def build_steering_authority(
    spec: EnvironmentSpec, actuator: Actuator, steering_file: Path, *, create: bool = False
) -> SteeringGate:
    """The steering authority every actuation goes through: leases, fences and the change journal,
    kept durably in `steering_file` (and its `.journal.jsonl` and `.lock` siblings).

    A missing file is an error unless `create`: a worker started with a mistyped path would see no
    leases and could send traffic back into a region a failover evacuated.
    """
    from controller.adapters.steering_authority import SteeringAuthority
    from controller.adapters.steering_store import FileSteeringStore, SteeringStoreError

    if not steering_file.exists() and not create:
        raise BootstrapError(
            f"--steering-file {steering_file}: not found; the first worker of an environment passes "
            "--create-steering-file (a mistyped path would start with no leases, and could undo a failover)"
        )
    store = FileSteeringStore(steering_file, spec.name)
    try:
        store.ensure_exists()
    except SteeringStoreError as error:
        raise BootstrapError(f"--steering-file: {error}") from error
    return SteeringAuthority(store, actuator, spec)
