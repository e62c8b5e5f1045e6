"""`edgectl failover start|approve|abort|release|status`: on-call evacuates a region through Temporal.

Starts `FailoverWorkflow` (`workflows/failover.py`) with id `edgeplane-failover-<env>-<region>`;
a second start for the same region is refused (exit 3). While waiting it shows the phase live;
`--json` prints the final report. Exit codes: 0 completed, 3 refused (conflict, headroom, rejected
update), 4 Temporal unreachable, 5 aborted / rolled back / cancelled.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.status import Status
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError

from edgectl.cli.exit_codes import ExitCode
from edgectl.cli.output import console, print_json
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
from workflows.failover import FailoverWorkflow
from workflows.models import (
    AbortRequest,
    ApproveRequest,
    FailoverInput,
    FailoverMode,
    FailoverOutcome,
    FailoverReport,
    ReleaseRequest,
    failover_id,
    task_queue_for,
)
from workflows.outcomes import report_from_failure

failover_app = typer.Typer(help="Evacuate a region (staged, QoS-verified, reversible).", no_args_is_help=True)

RegionOption = Annotated[str, typer.Option("--region", help="Region name from the environment file.")]
OUTCOME_EXIT = {
    FailoverOutcome.COMPLETED: ExitCode.OK,
    FailoverOutcome.REFUSED: ExitCode.REFUSED,
}


def outcome_exit(outcome: FailoverOutcome) -> ExitCode:
    return OUTCOME_EXIT.get(outcome, ExitCode.FAILED)


async def wait_with_progress(
    handle: WorkflowHandle[Any, Any],
    json_output: bool,
    progress_handle: WorkflowHandle[Any, Any] | None = None,
    result_type: type[BaseModel] = FailoverReport,
) -> Any:
    """Show the failover's phase live (the `progress` query) while waiting; refusals exit 3.

    A failover that aborted, rolled back or timed out on approval (and a drill that stopped) fails
    its run on purpose, with its report as the error's details: that report is returned like a result.
    """
    result_task = asyncio.ensure_future(handle.result())
    watched = progress_handle or handle
    live: AbstractContextManager[Status | None] = (
        nullcontext(None) if json_output else console.status("starting", spinner="dots")
    )
    with live as status:
        while not result_task.done():
            try:
                progress = await watched.query(FailoverWorkflow.progress, rpc_timeout=timedelta(seconds=2))
                if status is not None:
                    status.update(f"{progress.phase.value}: {progress.message}")
            except (RPCError, WorkflowQueryFailedError):
                pass  # not started its first task yet, or already closed
            await asyncio.wait({result_task}, timeout=1.0)
    try:
        return result_task.result()
    except WorkflowFailureError as error:
        cause = error.cause
        report = report_from_failure(error, result_type)
        if report is not None:
            return report
        if isinstance(cause, ApplicationError) and cause.message.startswith(("refused", "drill refused")):
            exit_with(ExitCode.REFUSED, cause.message)
        exit_with(ExitCode.FAILED, f"{handle.id} failed: {cause or error}")


def print_report(report: FailoverReport, json_output: bool) -> None:
    if json_output:
        print_json(report)
        return
    t = report.timings
    console.print(
        f"{report.workflow_id}: [bold]{report.outcome.value}[/bold] ({report.detail})"
        f"{f', requested by {report.requested_by}' if report.requested_by else ''}"
        f"{f', approved by {report.approved_by}' if report.approved_by else ''}\n"
        f"  detect {t.detect_seconds:.1f}s, decide {t.decide_seconds:.1f}s, shift {t.shift_seconds:.1f}s, "
        f"stabilise {t.stabilise_seconds:.1f}s, hold {t.hold_seconds:.1f}s, fail-back {t.fail_back_seconds:.1f}s\n"
        f"  sessions in {report.region}: {report.region_sessions_before} -> {report.region_sessions_after} "
        f"(moved {report.sessions_moved}); actions {len(report.actions)}",
        highlight=False,
    )
    for reason in report.unserved_reasons:
        console.print(f"  unserved: {reason}", highlight=False)


@failover_app.command("start")
def start(
    env: EnvOption,
    region: RegionOption,
    reason: Annotated[str, typer.Option(help="Why (goes to the audit trail).")],
    mode: Annotated[FailoverMode, typer.Option(help="evacuate: hold until release; round_trip: fail back.")] = (
        FailoverMode.EVACUATE
    ),
    force: Annotated[bool, typer.Option(help="Shift even without headroom (sheds the rest).")] = False,
    drain_timeout: Annotated[
        float | None, typer.Option(help="Longest wait for the region's sessions to end (default: spec drain deadline).")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the end, showing progress.")] = True,
    by: ByOption = None,
    json_output: JsonOption = False,
    temporal_address: AddressOption = DEFAULT_TEMPORAL_ADDRESS,
    namespace: NamespaceOption = "default",
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
    tls_ca: TlsCaOption = None,
    task_queue: TaskQueueOption = None,
) -> None:
    """Start a staged failover of REGION."""
    spec = load_spec_or_exit(env)
    if region not in spec.region_by_name:
        known = ", ".join(spec.region_by_name)
        exit_with(ExitCode.INVALID_INPUT, f"{env}: --region: unknown region {region!r} (known: {known})")
    request = FailoverInput(
        environment=spec.name, region=region, reason=reason, mode=mode, force=force,
        drain_timeout_seconds=drain_timeout, requested_by=actor(by),
    )

    async def go() -> None:
        client = await connect_or_exit(temporal_settings(temporal_address, namespace, tls_cert, tls_key, tls_ca))
        try:
            handle = await client.start_workflow(
                FailoverWorkflow.run, request, id=failover_id(spec.name, region),
                task_queue=task_queue or task_queue_for(spec.name), id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            )
        except WorkflowAlreadyStartedError:
            exit_with(ExitCode.REFUSED, f"refused: a failover or drill of {region} is already running "
                      f"({failover_id(spec.name, region)})")
        if not wait:
            print_json({"workflow_id": handle.id}) if json_output else console.print(f"started {handle.id}")
            return
        report = await wait_with_progress(handle, json_output)
        assert isinstance(report, FailoverReport)
        print_report(report, json_output)
        raise typer.Exit(int(outcome_exit(report.outcome)))

    run_with_temporal(go())


async def _update(client: Client, workflow_id: str, update: str, payload: object) -> None:
    handle = client.get_workflow_handle(workflow_id)
    try:
        ack = await handle.execute_update(update, payload)
    except WorkflowUpdateFailedError as error:
        exit_with(ExitCode.REFUSED, f"refused: {error.cause or error}")
    except RPCError as error:
        exit_with(ExitCode.REFUSED, f"{workflow_id}: {error.message}")
    console.print(f"{workflow_id}: {ack.get('message', ack) if isinstance(ack, dict) else ack}", highlight=False)


def _message_command(name: str, help_text: str, build: type) -> None:
    @failover_app.command(name, help=help_text)
    def command(
        env: EnvOption,
        region: RegionOption,
        by: ByOption = None,
        reason: Annotated[str, typer.Option(help="Why.")] = "",
        temporal_address: AddressOption = DEFAULT_TEMPORAL_ADDRESS,
        namespace: NamespaceOption = "default",
        tls_cert: TlsCertOption = None,
        tls_key: TlsKeyOption = None,
        tls_ca: TlsCaOption = None,
    ) -> None:
        spec = load_spec_or_exit(env)
        who = actor(by)
        if build is ApproveRequest:
            payload: object = ApproveRequest(approver=who, comment=reason)
        else:
            payload = build(by=who, reason=reason or f"{name} by {who}")

        async def go() -> None:
            client = await connect_or_exit(temporal_settings(temporal_address, namespace, tls_cert, tls_key, tls_ca))
            await _update(client, failover_id(spec.name, region), name, payload)

        run_with_temporal(go())


_message_command("approve", "Approve a failover waiting for approval.", ApproveRequest)
_message_command("abort", "Abort a failover: restore the previous weights.", AbortRequest)
_message_command("release", "Fail an evacuated region back.", ReleaseRequest)


@failover_app.command("status")
def status(
    env: EnvOption,
    region: RegionOption,
    json_output: JsonOption = False,
    temporal_address: AddressOption = DEFAULT_TEMPORAL_ADDRESS,
    namespace: NamespaceOption = "default",
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
    tls_ca: TlsCaOption = None,
) -> None:
    """Phase and stages of the region's failover (or drill)."""
    spec = load_spec_or_exit(env)

    async def go() -> None:
        client = await connect_or_exit(temporal_settings(temporal_address, namespace, tls_cert, tls_key, tls_ca))
        await print_failover_progress(client, spec.name, region, json_output, missing="")

    run_with_temporal(go())


async def print_failover_progress(
    client: Client, environment: str, region: str, json_output: bool, *, missing: str
) -> None:
    """Query the region's failover workflow (drills run theirs under the same id) and print its phase.

    `missing` prefixes the error when no such workflow exists (e.g. "no drill of fra: ").
    """
    handle = client.get_workflow_handle(failover_id(environment, region))
    try:
        progress = await handle.query(FailoverWorkflow.progress)
    except RPCError as error:
        exit_with(ExitCode.INVALID_INPUT, f"{missing or handle.id + ': '}{error.message}")
    if json_output:
        print_json(progress)
    else:
        console.print(f"{handle.id}: {progress.phase.value}: {progress.message}", highlight=False)
