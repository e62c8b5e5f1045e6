"""`edgectl controller run --steering-file`: a missing file is an error unless the first start asks for it.

A worker started with a mistyped path would see no leases and could send traffic back into a region
a failover evacuated; bootstrap refuses it before anything connects.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.adapters.steering_store import FileSteeringStore
from controller.spec_file import load_environment
from edgectl.bootstrap import BootstrapError, build_steering_authority

LOCAL_ENV = Path(__file__).resolve().parents[2] / "environments" / "local.yaml"


class NoActuation:
    """Bootstrap never acts; any call would be a bug."""


def test_a_missing_steering_file_is_refused_and_not_created(tmp_path):
    spec = load_environment(LOCAL_ENV)
    typo = tmp_path / "stearing.json"
    with pytest.raises(BootstrapError, match="not found; the first worker of an environment passes --create"):
        build_steering_authority(spec, NoActuation(), typo)  # type: ignore[arg-type]
    assert not typo.exists()


def test_the_first_start_creates_it_and_later_starts_find_it(tmp_path):
    spec = load_environment(LOCAL_ENV)
    path = tmp_path / "steering.json"
    build_steering_authority(spec, NoActuation(), path, create=True)  # type: ignore[arg-type]
    assert FileSteeringStore(path, spec.name).read().environment == "local"
    authority = build_steering_authority(spec, NoActuation(), path)  # type: ignore[arg-type]
    assert authority.state().revision == 0


def test_a_steering_file_of_another_environment_is_refused(tmp_path):
    spec = load_environment(LOCAL_ENV)
    path = tmp_path / "steering.json"
    path.write_text('{"environment": "prod"}')
    with pytest.raises(BootstrapError, match="holds 'prod', this controller serves 'local'"):
        build_steering_authority(spec, NoActuation(), path)  # type: ignore[arg-type]


def test_the_steering_configmap_option_names_its_form_and_reaches_the_cluster(tmp_path):
    from edgectl.bootstrap import build_kubernetes_steering_authority
    from tests.fakes.kube_api import KubeApiStandIn, write_kubeconfig

    spec = load_environment(LOCAL_ENV)
    with pytest.raises(BootstrapError, match="expected CONTEXT/NAMESPACE/NAME"):
        build_kubernetes_steering_authority(spec, NoActuation(), "edge-system/steering")  # type: ignore[arg-type]
    server = KubeApiStandIn("control").start()
    try:
        server.add_namespace("edge-system")
        config = write_kubeconfig(str(tmp_path / "kubeconfig"), {"control": server})
        authority = build_kubernetes_steering_authority(
            spec, NoActuation(), "edge-control/edge-system/edgeplane-steering-local", kubeconfig=config.path  # type: ignore[arg-type]
        )
        lease = authority.acquire_lease("fra", "failover-1", 1.0, "test")
        assert lease.epoch == 1 and server.configmap("edge-system", "edgeplane-steering-local") is not None
        with pytest.raises(BootstrapError, match="kubeconfig context 'nowhere'"):
            build_kubernetes_steering_authority(spec, NoActuation(), "nowhere/a/b", kubeconfig=config.path)  # type: ignore[arg-type]
    finally:
        server.stop()
