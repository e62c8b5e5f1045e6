"""KubernetesSteeringStore with the REAL `kubernetes` client against the API stand-in (tests/fakes/kube_api.py).

The stand-in answers a merge patch naming a stale `metadata.resourceVersion` with 409 Conflict, like
the real API server; that is what the store's lock and its writes rest on.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.adapters.kubernetes_steering_store import (
    HOLDER_ANNOTATION,
    ConfigMapRef,
    KubernetesSteeringStore,
    core_api,
)
from controller.adapters.steering_authority import SteeringAuthority
from controller.adapters.steering_store import SteeringStoreError
from controller.ports import StaleFenceError
from controller.spec_file import load_environment
from controller.steering import Fence
from tests.adapters.test_steering_authority import RecordingActuator
from tests.fakes.kube_api import KubeApiStandIn, write_kubeconfig

LOCAL = load_environment(Path(__file__).resolve().parents[2] / "environments" / "local.yaml")
REF = ConfigMapRef("edge-system", "edgeplane-steering-local")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def cluster(tmp_path):
    server = KubeApiStandIn("control").start()
    server.add_namespace("edge-system")
    config = write_kubeconfig(str(tmp_path / "kubeconfig"), {"control": server})
    yield server, config
    server.stop()


def store(config, clock=None, sleep=lambda s: None) -> KubernetesSteeringStore:
    extra = {"clock": clock} if clock is not None else {}
    return KubernetesSteeringStore(
        core_api(config.path, config.contexts["control"]), REF, "local", sleep=sleep, acquire_timeout_seconds=20,
        **extra,
    )  # fmt: skip


def test_state_and_journal_live_in_one_configmap_and_a_retry_acts_once(cluster):
    server, config = cluster
    fleet = RecordingActuator()
    first = SteeringAuthority(store(config), fleet, LOCAL)
    record = first.actuator_for(Fence.for_loop(0)).set_traffic_weights(
        {"DE": {"fra": 1.0}}, plan_id="p1", actor="loop", reason="r"
    )
    # Another controller replica retries the same step: the ConfigMap's journal answers.
    second = SteeringAuthority(store(config), fleet, LOCAL)
    again = second.actuator_for(Fence.for_loop(0)).set_traffic_weights(
        {"DE": {"fra": 1.0}}, plan_id="p1", actor="loop", reason="r"
    )
    assert again == record and len(fleet.calls) == 1
    assert second.state().weights == {"DE": {"fra": 1.0}} and second.state().revision == 1
    stored = server.configmap("edge-system", REF.name)
    assert stored is not None and "state.json" in stored["data"] and "journal.json" in stored["data"]
    assert HOLDER_ANNOTATION not in (stored["metadata"].get("annotations") or {})  # released


def test_a_lease_waits_for_the_other_replicas_action_in_flight(cluster):
    _, config = cluster
    fleet = RecordingActuator()
    fleet.gate = threading.Event()
    acting = SteeringAuthority(store(config), fleet, LOCAL)
    leasing = SteeringAuthority(store(config, sleep=time.sleep), fleet, LOCAL)  # polls the lock for real
    outcome: list[object] = []

    def apply():
        loop = acting.actuator_for(Fence.for_loop(0))
        for region in ("fra", "dub"):
            try:
                outcome.append(loop.set_desired_nodes(region, 9, plan_id="slow", actor="loop", reason="r"))
            except StaleFenceError as error:
                outcome.append(error)

    applying = threading.Thread(target=apply)
    applying.start()
    assert fleet.entered.wait(10)
    taking = threading.Thread(target=leasing.acquire_lease, args=("fra", "failover-1", 1.0, "evacuate"))
    taking.start()
    taking.join(0.5)
    assert taking.is_alive(), "the lease must wait for the action in flight on the other replica"
    fleet.gate.set()
    taking.join(20)
    reached = len(fleet.calls)
    applying.join(20)
    assert leasing.state().leases["fra"].holder == "failover-1"
    assert len(fleet.calls) == reached  # nothing planned before the lease reached the fleet after it
    assert isinstance(outcome[-1], StaleFenceError) or len(fleet.calls) == 2


def test_a_holder_that_lost_its_expired_lock_cannot_write(cluster):
    _, config = cluster
    clock = Clock()
    slow = store(config, clock)
    with slow.transaction() as tx:
        clock.now += timedelta(seconds=31)  # it hung past its lock's expiry; another replica takes over
        other = store(config, clock)
        with other.transaction() as taken:
            taken.save(taken.state.model_copy(update={"updated_by": "the other replica"}))
        with pytest.raises(SteeringStoreError, match="lost the steering lock"):
            tx.save(tx.state.model_copy(update={"updated_by": "the hung one"}))
    assert store(config).read().updated_by == "the other replica"


def test_a_configmap_of_another_environment_is_refused(cluster):
    _, config = cluster
    prod = KubernetesSteeringStore(core_api(config.path, config.contexts["control"]), REF, "prod", sleep=lambda s: None)
    with prod.transaction() as tx:
        tx.save(tx.state)
    with pytest.raises(SteeringStoreError, match="holds 'prod', this controller serves 'local'"):
        store(config).read()
