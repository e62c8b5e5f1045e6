"""edgectl/bootstrap.py picks the adapters from the command-line settings, or says which option is wrong."""

from __future__ import annotations

import pytest

from controller.adapters.prometheus_observer import PrometheusObserver
from controller.adapters.simulator_actuator import SimulatorActuator
from edgectl.bootstrap import BootstrapError, FleetSettings, TemporalSettings, build_fleet_adapters


def test_simulator_is_observer_and_actuator(local_spec):
    observer, actuator = build_fleet_adapters(local_spec, FleetSettings(simulator_url="http://127.0.0.1:9"))
    assert isinstance(observer, SimulatorActuator) and observer is actuator


def test_prometheus_observes_while_the_simulator_acts(local_spec):
    observer, actuator = build_fleet_adapters(
        local_spec, FleetSettings(simulator_url="http://127.0.0.1:9", prometheus_url="http://127.0.0.1:8")
    )
    assert isinstance(observer, PrometheusObserver) and isinstance(actuator, SimulatorActuator)


@pytest.mark.parametrize(
    ("settings", "names"),
    [
        (FleetSettings(), "--simulator-url or --prometheus-url"),
        (FleetSettings(prometheus_url="http://127.0.0.1:8"), "--simulator-url or --kube-contexts"),
        (FleetSettings(prometheus_url="http://127.0.0.1:8", kube_contexts=("fra",)), "--kube-contexts"),
        (FleetSettings(prometheus_url="http://127.0.0.1:8", kube_contexts=("mars=ctx",)), "--kube-contexts"),
    ],
)
def test_missing_or_bad_settings_name_the_option(local_spec, settings, names):
    with pytest.raises(BootstrapError, match=names):
        build_fleet_adapters(local_spec, settings)


def test_tls_cert_without_key_is_refused(tmp_path):
    cert = tmp_path / "client.pem"
    cert.write_text("x")
    with pytest.raises(BootstrapError, match="--tls-cert and --tls-key"):
        TemporalSettings(tls_cert=cert).tls()
