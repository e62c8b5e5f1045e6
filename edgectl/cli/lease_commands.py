"""`edgectl lease list|release`: on-call reads and releases region leases in the durable steering state.

A failover or drill leases its region (`controller/steering.py`); the control loop never gives a
leased region more traffic than the lease allows. If the holder's workflow is gone (Temporal lost
its state, or the run was terminated by hand) the lease stays: it is an orphan, and the region
stays evacuated until on-call releases it here. Both commands work on the steering file directly
(`--steering-file`, the one the controller runs with), through the steering authority
(`edgectl/bootstrap.py`), so a release is one atomic, fenced commit: it names the epoch on-call
saw, and is refused if the region was leased again meanwhile. Before releasing, the holder's
workflow is looked up in Temporal: a running holder is refused (release or abort the failover
instead); `--no-holder-check` skips that when Temporal itself is down.

Exit codes: 0 listed / released, 1 bad input (unknown region, missing or unreadable steering file),
3 refused (no such lease, wrong epoch, holder still running), 4 Temporal unreachable for the check.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from controller.audit import AuditRecord
from controller.ports import ActuationError, LeaseRefusedError, SteeringGate
from controller.spec import EnvironmentSpec
from controller.steering import RegionLease
from edgectl.bootstrap import (
    DEFAULT_TEMPORAL_ADDRESS,
    BootstrapError,
    build_steering_authority,
    connect_temporal,
    default_steering_file,
)
from edgectl.cli.controller_commands import (
    AddressOption,
    EnvOption,
    NamespaceOption,
    TlsCaOption,
    TlsCertOption,
    TlsKeyOption,
    exit_with,
    load_spec_or_exit,
    run_with_temporal,
    temporal_settings,
)
from edgectl.cli.exit_codes import ExitCode
from edgectl.cli.output import print_json, say

lease_app = typer.Typer(help="Region leases in the durable steering state: list, release orphans.",
                        no_args_is_help=True)  # fmt: skip

SteeringFileOption = Annotated[
    Path | None,
    typer.Option(
        "--steering-file",
        help="The steering file the controller runs with (default .edgeplane/steering-<env>.json; "
        "`edgectl dev up` prints its own).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


class _NoActuation:
    """The lease commands change the steering state only; nothing here may touch the fleet."""

    def _refuse(self) -> NoReturn:
        raise ActuationError("edgectl lease never acts on the fleet", retryable=False)

    def set_desired_nodes(
        self, region: str, desired_nodes: int, *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        self._refuse()

    def drain_node(
        self, region: str, node: str, deadline: datetime, *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        self._refuse()

    def undrain_node(self, region: str, node: str, *, plan_id: str, actor: str, reason: str) -> AuditRecord:
        self._refuse()

    def set_traffic_weights(
        self, weights: Mapping[str, Mapping[str, float]], *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        self._refuse()


def _authority_or_exit(spec: EnvironmentSpec, steering_file: Path | None) -> tuple[SteeringGate, Path]:
    path = steering_file or default_steering_file(spec.name)
    if not path.is_file():
        # An absent file would read as "no leases": on-call looking at the wrong file must be told.
        exit_with(ExitCode.INVALID_INPUT, f"{path}: --steering-file: not found (give the file the controller uses)")
    try:
        return build_steering_authority(spec, _NoActuation(), path), path
    except BootstrapError as error:
        exit_with(ExitCode.INVALID_INPUT, str(error))


def _describe(lease: RegionLease) -> str:
    since = lease.acquired_at.isoformat(timespec="seconds")
    why = f": {lease.reason}" if lease.reason else ""
    return (
        f"{lease.region}: epoch {lease.epoch}, at most {lease.max_traffic_share:.0%} of each market's traffic, "
        f"held by {lease.holder} since {since}{why}"
    )


@lease_app.command("list")
def list_leases(env: EnvOption, steering_file: SteeringFileOption = None, json_output: JsonOption = False) -> None:
    """The region leases held in the steering state (who holds each, since when, at which epoch)."""
    spec = load_spec_or_exit(env)
    authority, path = _authority_or_exit(spec, steering_file)
    state = authority.state()
    leases = sorted(state.leases.values(), key=lambda lease: lease.region)
    if json_output:
        print_json({"steering_file": str(path), "revision": state.revision, "leases": leases})
        return
    if not leases:
        say(f"{path}: no region is leased (steering revision {state.revision})")
        return
    say(f"{path}: steering revision {state.revision}")
    for lease in leases:
        say(f"  {_describe(lease)}")


@lease_app.command("release")
def release_lease(
    env: EnvOption,
    region: Annotated[str, typer.Option("--region", help="The leased region.")],
    epoch: Annotated[int, typer.Option("--epoch", min=1, help="The lease's epoch, as `edgectl lease list` shows.")],
    by: Annotated[str, typer.Option("--by", help="Who releases it (recorded in the steering state).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded with the release).")] = "",
    steering_file: SteeringFileOption = None,
    holder_check: Annotated[
        bool,
        typer.Option(
            "--holder-check/--no-holder-check",
            help="Refuse when the holder's workflow still runs in Temporal (skip only when Temporal is down).",
        ),
    ] = True,
    json_output: JsonOption = False,
    temporal_address: AddressOption = DEFAULT_TEMPORAL_ADDRESS,
    namespace: NamespaceOption = "default",
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
    tls_ca: TlsCaOption = None,
) -> None:
    """Release an orphan lease (its failover or drill is gone): the control loop may use the region again."""
    spec = load_spec_or_exit(env)
    if region not in {r.name for r in spec.regions}:
        known = ", ".join(r.name for r in spec.regions)
        exit_with(ExitCode.INVALID_INPUT, f"{env}: --region: unknown region {region!r} (known: {known})")
    if not by.strip():
        exit_with(ExitCode.INVALID_INPUT, "--by: must name who releases the lease")
    authority, path = _authority_or_exit(spec, steering_file)
    lease = authority.state().leases.get(region)
    if lease is None:
        exit_with(ExitCode.REFUSED, f"refused: {path}: region {region} has no lease to release")
    if lease.epoch != epoch:
        exit_with(ExitCode.REFUSED, f"refused: {path}: region {region} is leased at epoch {lease.epoch}, not {epoch}")

    def release() -> None:
        who = f"{by} ({reason})" if reason else by
        try:
            state = authority.release_lease(region, holder=None, epoch=epoch, by=who)
        except LeaseRefusedError as error:  # leased again between the look and the commit
            exit_with(ExitCode.REFUSED, f"refused: {path}: {error}")
        if json_output:
            print_json({"steering_file": str(path), "released": lease, "revision": state.revision, "by": who})
        else:
            say(f"released {_describe(lease)}")
            say(f"the control loop may plan traffic into {region} again (steering revision {state.revision})")

    if not holder_check:
        release()
        return

    async def check_then_release() -> None:
        settings = temporal_settings(temporal_address, namespace, tls_cert, tls_key, tls_ca)
        try:
            client = await connect_temporal(settings)
        except BootstrapError as error:
            exit_with(ExitCode.INVALID_INPUT, str(error))
        except RuntimeError as error:
            exit_with(
                ExitCode.UNAVAILABLE,
                f"Temporal at {settings.address} unreachable, cannot tell whether {lease.holder} still runs: "
                f"{error}\n  if Temporal is down for good, add --no-holder-check",
            )
        try:
            description = await client.get_workflow_handle(lease.holder).describe()
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                exit_with(ExitCode.UNAVAILABLE, f"Temporal: cannot describe {lease.holder}: {error.message}")
        else:
            if description.status == WorkflowExecutionStatus.RUNNING:
                exit_with(
                    ExitCode.REFUSED,
                    f"refused: {lease.holder} still runs and holds {region}: "
                    "fail it back with `edgectl failover release` (or `abort`), not by releasing its lease",
                )
        release()

    run_with_temporal(check_then_release())
