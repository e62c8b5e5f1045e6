"""`edgectl drill run|schedule|status`: game-day failovers of one region, on demand or on a cron.
(`edgectl drill schedules list|pause|unpause|delete|trigger` manage the cron: `drill_schedule_commands.py`.)

Runs `FailoverDrillWorkflow` (`workflows/drill.py`) with id `edgeplane-drill-<env>-<region>`; the
schedule is a Temporal Schedule `edgeplane-drill-schedule-<env>-<region>`. Exit codes: 0 drill
passed, 3 refused (the region is busy, or a schedule exists), 4 Temporal unreachable, 5 the drill
stopped on a stop condition (weights restored).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from temporalio.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from edgectl.cli.exit_codes import ExitCode
from edgectl.cli.failover_commands import RegionOption, print_failover_progress, wait_with_progress
from edgectl.cli.output import console, print_json, say
from edgectl.cli.temporal_options import (
    DEFAULT_TEMPORAL_ADDRESS,
    AddressOption,
    ByOption,
    EnvOption,
    JsonOption,
    NamespaceOption,
    TaskQueueOption,
    TlsCaOption,
    TlsCertOption,
    TlsKeyOption,
    actor,
    connect_or_exit,
    exit_with,
    load_spec_or_exit,
    run_with_temporal,
    temporal_settings,
)
from workflows.drill import FailoverDrillWorkflow
from workflows.models import DRILL_SCHEDULE_ID_PREFIX, DrillInput, DrillScorecard, drill_id, failover_id, task_queue_for

drill_app = typer.Typer(help="Failover drills with stop conditions and fail-back.", no_args_is_help=True)


@drill_app.command("run")
def run_drill(
    env: EnvOption,
    region: RegionOption,
    reason: Annotated[str, typer.Option(help="Why (audit trail).")] = "on-demand drill",
    hold_seconds: Annotated[float | None, typer.Option(help="Override spec.drill.hold_seconds.")] = None,
    by: ByOption = None,
    json_output: JsonOption = False,
    temporal_address: AddressOption = DEFAULT_TEMPORAL_ADDRESS,
    namespace: NamespaceOption = "default",
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
    tls_ca: TlsCaOption = None,
    task_queue: TaskQueueOption = None,
) -> None:
    """Run a drill of REGION now and print its scorecard."""
    spec = load_spec_or_exit(env)
    if region not in spec.region_by_name:
        exit_with(ExitCode.INVALID_INPUT, f"{env}: --region: unknown region {region!r}")
    request = DrillInput(
        environment=spec.name, region=region, reason=reason, hold_seconds=hold_seconds, requested_by=actor(by)
    )

    async def go() -> None:
        client = await connect_or_exit(temporal_settings(temporal_address, namespace, tls_cert, tls_key, tls_ca))
        try:
            handle = await client.start_workflow(
                FailoverDrillWorkflow.run, request, id=drill_id(spec.name, region),
                task_queue=task_queue or task_queue_for(spec.name), id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            )
        except WorkflowAlreadyStartedError:
            exit_with(ExitCode.REFUSED, f"refused: a drill of {region} is already running")
        # Progress lives on the child failover (same path as a real failover).
        # Progress lives on the child failover: the drill runs the same path as a real failover.
        child = client.get_workflow_handle(failover_id(spec.name, region))
        scorecard = await wait_with_progress(handle, json_output, progress_handle=child, result_type=DrillScorecard)
        assert isinstance(scorecard, DrillScorecard)
        if json_output:
            print_json(scorecard)
        else:
            console.print(
                f"drill of {region}: {'PASSED' if scorecard.passed else 'STOPPED'} ({scorecard.outcome.value}: "
                f"{scorecard.detail})\n  time to shift {scorecard.time_to_shift_seconds:.1f}s, "
                f"RTO {_seconds(scorecard.rto_seconds, 'not back within the recovery watch')}, "
                f"SLO recovered {_seconds(scorecard.slo_recovered_seconds, 'not within the recovery watch')}, "
                f"drained {_seconds(scorecard.time_to_drain_seconds, 'not within the hold')}\n"
                f"  sessions moved {scorecard.sessions_moved}, sessions cut "
                f"{scorecard.sessions_cut if scorecard.sessions_cut is not None else 'not reported by the fleet'}, "
                f"SLO session-minutes {scorecard.slo_minutes:.1f}",
                highlight=False,
            )
        raise typer.Exit(int(ExitCode.OK if scorecard.passed else ExitCode.FAILED))

    run_with_temporal(go())


def _seconds(value: float | None, missing: str) -> str:
    """`12.3 s`, or why there is no figure (never "n/as")."""
    return f"{value:.1f} s" if value is not None else missing


@drill_app.command("schedule")
def schedule_drill(
    env: EnvOption,
    region: RegionOption,
    cron: Annotated[str, typer.Option(help="Cron expression (UTC), e.g. '0 3 * * TUE'.")],
    by: ByOption = None,
    reason: Annotated[str, typer.Option(help="Why (goes to every drill it starts).")] = "",
    temporal_address: AddressOption = DEFAULT_TEMPORAL_ADDRESS,
    namespace: NamespaceOption = "default",
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
    tls_ca: TlsCaOption = None,
    task_queue: TaskQueueOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create a Temporal Schedule that runs a drill of REGION on CRON."""
    spec = load_spec_or_exit(env)
    if region not in spec.region_by_name:
        exit_with(ExitCode.INVALID_INPUT, f"{env}: --region: unknown region {region!r}")
    schedule_id = f"{DRILL_SCHEDULE_ID_PREFIX}{spec.name}-{region}"
    who = actor(by)
    catchup = timedelta(seconds=spec.drill.schedule_catchup_seconds)
    drill_reason = f"scheduled drill ({cron}){': ' + reason if reason else ''}"

    async def go() -> None:
        client = await connect_or_exit(temporal_settings(temporal_address, namespace, tls_cert, tls_key, tls_ca))
        try:
            await client.create_schedule(
                schedule_id,
                Schedule(
                    action=ScheduleActionStartWorkflow(
                        FailoverDrillWorkflow.run,
                        DrillInput(environment=spec.name, region=region, reason=drill_reason, requested_by=who),
                        id=drill_id(spec.name, region),
                        task_queue=task_queue or task_queue_for(spec.name),
                    ),
                    spec=ScheduleSpec(cron_expressions=[cron]),
                    # The server's default catch-up window is a year: a drill missed during an outage
                    # would start whenever Temporal came back. Bounded by spec.drill, it is skipped.
                    policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=catchup),
                    state=ScheduleState(note=f"created by {who}{': ' + reason if reason else ''}"),
                ),
                # The server keeps a cron only as calendars; the memo keeps it as on-call wrote it.
                memo={"cron": cron, "created_by": who},
            )
        except ScheduleAlreadyRunningError:
            exit_with(ExitCode.REFUSED, f"refused: schedule {schedule_id} exists")
        except RPCError as error:
            exit_with(ExitCode.INVALID_INPUT, f"--cron {cron!r}: {error.message}")
        if json_output:
            print_json({"schedule_id": schedule_id, "cron": cron, "catchup_window_seconds": catchup.total_seconds(),
                        "by": who})
        else:
            say(f"scheduled {schedule_id}: {cron} (a missed run starts at most {catchup.total_seconds():g}s late)")

    run_with_temporal(go())


@drill_app.command("status")
def drill_status(
    env: EnvOption,
    region: RegionOption,
    json_output: JsonOption = False,
    temporal_address: AddressOption = DEFAULT_TEMPORAL_ADDRESS,
    namespace: NamespaceOption = "default",
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
    tls_ca: TlsCaOption = None,
) -> None:
    """Phase of the running drill of REGION (from its failover child)."""
    spec = load_spec_or_exit(env)

    async def go() -> None:
        client = await connect_or_exit(temporal_settings(temporal_address, namespace, tls_cert, tls_key, tls_ca))
        await print_failover_progress(client, spec.name, region, json_output, missing=f"no drill of {region}: ")

    run_with_temporal(go())
