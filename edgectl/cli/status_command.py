"""`edgectl status`: the control loop's view (region states, weights, pins) and the running workflows."""

from __future__ import annotations

from temporalio.service import RPCError

from edgectl.cli.output import console, print_json
from edgectl.cli.temporal_options import (
    DEFAULT_TEMPORAL_ADDRESS,
    AddressOption,
    EnvOption,
    JsonOption,
    NamespaceOption,
    TlsCaOption,
    TlsCertOption,
    TlsKeyOption,
    connect_or_exit,
    load_spec_or_exit,
    run_with_temporal,
    temporal_settings,
)
from workflows.control_loop import ControlLoopWorkflow
from workflows.models import (
    DRILL_ID_PREFIX,
    FAILOVER_ID_PREFIX,
    EnvironmentStatus,
    LoopStatus,
    control_loop_id,
    describe_demand_event,
)


def status(
    env: EnvOption,
    json_output: JsonOption = False,
    temporal_address: AddressOption = DEFAULT_TEMPORAL_ADDRESS,
    namespace: NamespaceOption = "default",
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
    tls_ca: TlsCaOption = None,
) -> None:
    """Region states, weights, pins and the failovers/drills running in an environment."""
    spec = load_spec_or_exit(env)

    async def go() -> None:
        client = await connect_or_exit(temporal_settings(temporal_address, namespace, tls_cert, tls_key, tls_ca))
        loop: LoopStatus | None = None
        try:
            loop = await client.get_workflow_handle(control_loop_id(spec.name)).query(ControlLoopWorkflow.status)
        except RPCError:
            loop = None
        prefixes = (f"{FAILOVER_ID_PREFIX}{spec.name}-", f"{DRILL_ID_PREFIX}{spec.name}-")
        running = [
            {"workflow_id": w.id, "type": w.workflow_type, "started": str(w.start_time)}
            async for w in client.list_workflows("ExecutionStatus='Running'")
            if w.id == control_loop_id(spec.name) or w.id.startswith(prefixes)
        ]
        result = EnvironmentStatus(environment=spec.name, loop=loop, running_workflows=running)
        if json_output:
            print_json(result)
            return
        if loop is None:
            console.print(f"{control_loop_id(spec.name)}: not running", highlight=False)
        else:
            mode = "paused" if loop.paused else "recommend-only" if loop.recommend_only else "acting"
            if not loop.paused and loop.blind_since is not None:
                # Acting on nothing: the last plan's health and weights below are as old as it is.
                mode = f"FAIL-STATIC, blind since {loop.blind_since.isoformat()} (observing the fleet fails)"
            elif not loop.paused and loop.fail_static:
                mode = "FAIL-STATIC (stale fleet metrics: no shifts or scale-in)"
            console.print(f"control loop: {mode}, {loop.ticks_total} ticks, last plan {loop.last_plan_id}",
                          highlight=False)
            if loop.blind_since is not None and loop.region_health:
                console.print("  region health as of the last plan, before the loop went blind:", highlight=False)
            for health in loop.region_health:
                console.print(f"  {health.region}: {health.state.value} {health.reason}", highlight=False)
            for market, weights in sorted(loop.weights.items()):
                shares = ", ".join(f"{r} {w:.0%}" for r, w in sorted(weights.items()))
                console.print(f"  {market}: {shares}", highlight=False)
            for pin in loop.pins:
                console.print(f"  pin {pin.region} <= {pin.max_traffic_share:.0%} by {pin.owner}", highlight=False)
            for lease in loop.leases:
                console.print(
                    f"  lease {lease.region} epoch {lease.epoch} <= {lease.max_traffic_share:.0%} by {lease.holder}: "
                    f"{lease.reason}",
                    highlight=False,
                )
            for event in loop.scheduled_demand:
                console.print(f"  event {describe_demand_event(event)}", highlight=False)
            if loop.last_error:
                console.print(f"  last error: {loop.last_error}", highlight=False)
        for workflow in running:
            console.print(f"running: {workflow['workflow_id']} ({workflow['type']})", highlight=False)

    run_with_temporal(go())
