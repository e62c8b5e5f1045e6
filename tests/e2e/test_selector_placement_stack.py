"""The local stack places the simulated fleet's new sessions through the region selector.

Starts the real stack (`edgectl/dev_stack.py`: Temporal, Prometheus, `edgectl selector serve` and
`edgectl sim serve --selector-url`) on free loopback ports, without the controller: the test
publishes the steering state itself, writing the stack's steering file the way the controller's
authority does (atomic replace). Then, waiting on conditions only:
- before any state is published the fleet places by its fallback and counts it;
- new sessions land where the published state says, and a change of it moves where they land
  (no DE session on fra after a revision that took fra's weight away);
- a forged out-of-jurisdiction weight never lands a session outside its market's regions (the
  selector refuses or answers compliant regions only; the fleet's referee counts 0 violations);
- with the selector gone the fleet keeps the last answers' shares, counted, still compliant.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller.steering import SteeringState
from edgectl.dev_stack import DevStack, StackOptions, StackPorts, prometheus_binary

REPO = Path(__file__).resolve().parents[2]
LOCAL_ENV = REPO / "environments" / "local.yaml"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(240),
    pytest.mark.skipif(prometheus_binary() is None, reason="Prometheus is not installed (make prometheus)"),
]

BASE = {"DE": {"fra": 1.0}, "FR": {"fra": 1.0}, "ID": {"cgk": 1.0}, "SG": {"sin": 1.0}, "TH": {"sin": 1.0}}


def publish(path: Path, revision: int, weights: dict[str, dict[str, float]]) -> None:
    state = SteeringState(environment="local", revision=revision, weights=weights)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(state.model_dump_json())
    tmp.replace(path)


def wait_until(probe: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll `probe` until it returns something truthy; fail naming `what` (and its last value)."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)  # polling interval of the condition, not a synchronisation
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last: {value!r}")


def test_new_sessions_follow_the_published_state_through_the_selector(tmp_path: Path) -> None:
    stack = DevStack(
        StackOptions(env_path=LOCAL_ENV, ports=StackPorts.free(), work_dir=tmp_path, start_controller=False)
    )
    with stack, httpx.Client(base_url=stack.simulator_url, timeout=10) as sim:

        def books() -> dict[str, Any]:
            reply = sim.get("/v1/placement").json()
            assert reply["mode"] == "selector"
            return reply["books"]

        def sent(market: str, region: str) -> int:
            return books()["selector_sessions"].get(market, {}).get(region, 0)

        stack.start()
        assert [p.name for p in stack.processes] == ["temporal", "prometheus", "selector", "simulator"]
        # Nothing published yet (no steering file): the fleet places by its fallback, and says so.
        waiting = wait_until(lambda: books()["fallback_sessions"].get("no_steering_state"), "fallback sessions")
        assert set(waiting["DE"]) == {"fra"} and set(waiting["ID"]) == {"cgk"}

        publish(stack.steering_file, 1, BASE)
        wait_until(lambda: books()["revision"] == 1, "revision 1 answered")
        before = sent("DE", "fra")
        wait_until(lambda: sent("DE", "fra") > before + 30, "DE sessions sent to fra")

        publish(stack.steering_file, 2, {**BASE, "DE": {"dub": 1.0}})
        wait_until(lambda: books()["revision"] == 2, "revision 2 answered")
        at_change = books()["selector_sessions"]["DE"]
        wait_until(lambda: sent("DE", "dub") > at_change.get("dub", 0) + 30, "DE sessions sent to dub")
        assert sent("DE", "fra") == at_change["fra"]  # not one new DE session on fra since revision 2

        # Forged: ID (Indonesia only) given 90% on sin, FR (EU only) all on sin.
        publish(
            stack.steering_file, 3, {**BASE, "DE": {"dub": 1.0}, "ID": {"sin": 0.9, "cgk": 0.1}, "FR": {"sin": 1.0}}
        )
        wait_until(lambda: books()["revision"] == 3, "revision 3 answered")
        id_before = sent("ID", "cgk")
        wait_until(lambda: sent("ID", "cgk") > id_before + 30, "ID sessions sent to cgk")
        wait_until(lambda: books()["refused_sessions"].get("FR", {}).get("no_compliant_region", 0) > 30, "FR refused")
        final = books()
        assert "sin" not in final["selector_sessions"]["ID"] and "sin" not in final["selector_sessions"]["FR"]
        assert sim.get("/v1/accounting").json()["residency_violations"] == 0

        # The selector goes away: the fleet keeps the last answers' shares, counted, within jurisdictions.
        next(p for p in stack.processes if p.name == "selector").stop(10)
        down = wait_until(
            lambda: (b := books())["fallback_sessions"].get("selector_unreachable") and not b["selector_up"] and b,
            "fallback after the selector stopped",
        )
        unreachable = down["fallback_sessions"]["selector_unreachable"]
        assert set(unreachable["DE"]) == {"dub"} and set(unreachable["ID"]) == {"cgk"}
        assert set(unreachable.get("FR", {})) <= {"fra"}  # FR's last answers were fra (refused since)
        assert sim.get("/v1/accounting").json()["residency_violations"] == 0
