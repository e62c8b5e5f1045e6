"""`edgectl drill schedules list|pause|unpause|delete|trigger`: on-call manages the drill crons.

A drill schedule is the Temporal Schedule `edgeplane-drill-schedule-<env>-<region>` that
`edgectl drill schedule` creates. Pausing one (before a launch, during an incident) keeps it for
later; its note records who paused it and why, and `list` shows that note. Missed runs are not
caught up beyond `spec.drill.schedule_catchup_seconds`. `trigger` starts a drill now through the
schedule (skipped by Temporal while one still runs).

Exit codes: 0 done, 1 bad input, 3 no such schedule, 4 Temporal unreachable.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import typer
from temporalio.client import Client, ScheduleHandle
from temporalio.service import RPCError, RPCStatusCode

from edgectl.cli.exit_codes import ExitCode
from edgectl.cli.failover_commands import RegionOption
from edgectl.cli.output import print_json, say
from edgectl.cli.temporal_options import (
    DEFAULT_TEMPORAL_ADDRESS,
    AddressOption,
    ByOption,
    EnvOption,
    JsonOption,
    NamespaceOption,
    ReasonOption,
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
from workflows.models import DRILL_SCHEDULE_ID_PREFIX

schedules_app = typer.Typer(help="Drill schedules: list, pause, unpause, delete, trigger.", no_args_is_help=True)


def drill_schedule_id(environment: str, region: str) -> str:
    return f"{DRILL_SCHEDULE_ID_PREFIX}{environment}-{region}"


@schedules_app.command("list")
def list_schedules(
    env: EnvOption,
    json_output: JsonOption = False,
    temporal_address: AddressOption = DEFAULT_TEMPORAL_ADDRESS,
    namespace: NamespaceOption = "default",
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
    tls_ca: TlsCaOption = None,
) -> None:
    """The environment's drill schedules: cron, paused or not (and the note saying why), next run."""
    spec = load_spec_or_exit(env)
    prefix = f"{DRILL_SCHEDULE_ID_PREFIX}{spec.name}-"

    async def go() -> None:
        client = await connect_or_exit(temporal_settings(temporal_address, namespace, tls_cert, tls_key, tls_ca))
        rows: list[dict[str, Any]] = []
        async for entry in await client.list_schedules():
            if not entry.id.startswith(prefix):
                continue
            # The list view is eventually consistent and thin; describe each for its spec and policy.
            description = await client.get_schedule_handle(entry.id).describe()
            schedule = description.schedule
            window = schedule.policy.catchup_window
            rows.append({
                "schedule_id": entry.id,
                "region": entry.id.removeprefix(prefix),
                "cron": [str(await description.memo_value("cron", ""))] if not schedule.spec.cron_expressions
                else list(schedule.spec.cron_expressions),
                "paused": schedule.state.paused,
                "note": schedule.state.note or "",
                "catchup_window_seconds": window.total_seconds() if window is not None else None,
                "next_runs": [t.isoformat() for t in description.info.next_action_times[:1]],
                "recent_runs": [a.started_at.isoformat() for a in description.info.recent_actions[-1:]],
            })  # fmt: skip
        rows.sort(key=lambda row: row["schedule_id"])
        if json_output:
            print_json(rows)
            return
        if not rows:
            say(f"no drill schedules in {spec.name}")
        for row in rows:
            state = f"PAUSED ({row['note']})" if row["paused"] else "active"
            window = row["catchup_window_seconds"]
            next_run = row["next_runs"][0] if row["next_runs"] else "-"
            say(
                f"{row['schedule_id']}: {' | '.join(row['cron'])} {state}; next {next_run}; "
                f"catch-up {f'{window:g}s' if window is not None else 'server default (1 year)'}"
            )

    run_with_temporal(go())


async def _on_schedule(client: Client, schedule_id: str, act: Callable[[ScheduleHandle], Awaitable[None]]) -> None:
    handle = client.get_schedule_handle(schedule_id)
    try:
        await act(handle)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            exit_with(ExitCode.REFUSED, f"{schedule_id}: no such schedule (see `edgectl drill schedules list`)")
        exit_with(ExitCode.REFUSED, f"{schedule_id}: {error.message}")


def _schedule_command(name: str, help_text: str, done: str) -> None:
    @schedules_app.command(name, help=help_text)
    def command(
        env: EnvOption,
        region: RegionOption,
        reason: ReasonOption = "",
        by: ByOption = None,
        json_output: JsonOption = False,
        temporal_address: AddressOption = DEFAULT_TEMPORAL_ADDRESS,
        namespace: NamespaceOption = "default",
        tls_cert: TlsCertOption = None,
        tls_key: TlsKeyOption = None,
        tls_ca: TlsCaOption = None,
    ) -> None:
        spec = load_spec_or_exit(env)
        if region not in spec.region_by_name:
            exit_with(ExitCode.INVALID_INPUT, f"{env}: --region: unknown region {region!r}")
        who = actor(by)
        note = f"{name}d by {who}" if name.endswith("e") else f"{name}ed by {who}"
        note += f": {reason}" if reason else ""
        schedule_id = drill_schedule_id(spec.name, region)

        async def act(handle: ScheduleHandle) -> None:
            if name == "pause":
                await handle.pause(note=note)
            elif name == "unpause":
                await handle.unpause(note=note)
            elif name == "trigger":
                await handle.trigger()
            else:
                await handle.delete()

        async def go() -> None:
            client = await connect_or_exit(temporal_settings(temporal_address, namespace, tls_cert, tls_key, tls_ca))
            await _on_schedule(client, schedule_id, act)
            if json_output:
                print_json({"schedule_id": schedule_id, "action": name, "by": who, "reason": reason})
            else:
                say(f"{schedule_id}: {done} by {who}{': ' + reason if reason else ''}")

        run_with_temporal(go())


_schedule_command("pause", "Pause a drill schedule (kept, with a note saying who and why).", "paused")
_schedule_command("unpause", "Let a paused drill schedule run again.", "unpaused")
_schedule_command("delete", "Delete a drill schedule.", "deleted")
_schedule_command("trigger", "Start the scheduled drill now (skipped while one runs).", "triggered")
