"""`edgectl controller pause|resume|recommend-only|act`: on-call switches the control loop's mode.

Each sends the `set_mode` update of the environment's ControlLoopWorkflow (`workflows/control_loop.py`)
with who (`--by`) and why (`--reason`); both stay in the workflow's history with the update, which
is the audit trail of mode changes. Pause and recommend-only are in force when acknowledged: the
answer comes only after the steering authority has fenced every plan made before it (an apply in
flight has finished, the rest of it is refused), and says up to which steering revision. Resume and
act take effect at the next tick, which the update wakes.

Exit codes: 0 acknowledged, 1 bad input, 3 refused by the loop or no loop running, 4 Temporal unreachable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from edgectl.cli.controller_commands import execute_loop_update, print_acknowledgement
from edgectl.cli.temporal_options import (
    DEFAULT_TEMPORAL_ADDRESS,
    AddressOption,
    ByOption,
    EnvOption,
    JsonOption,
    NamespaceOption,
    TlsCaOption,
    TlsCertOption,
    TlsKeyOption,
    actor,
    connect_or_exit,
    load_spec_or_exit,
    run_with_temporal,
    temporal_settings,
)
from workflows.control_loop import ControlLoopWorkflow
from workflows.models import LoopModeRequest


@dataclass(frozen=True)
class LoopMode:
    """One on-call command: the flags it sets (None leaves a flag as it is) and its help."""

    command: str
    paused: bool | None
    recommend_only: bool | None
    help: str


LOOP_MODES = (
    LoopMode("pause", True, None, "Stop the loop: no observing, planning or acting until `resume`."),
    LoopMode("resume", False, None, "Let a paused loop tick again (in its current act/recommend-only mode)."),
    LoopMode(
        "recommend-only", None, True, "Keep observing and planning, act on nothing (`edgectl status` shows the plan)."
    ),
    LoopMode("act", None, False, "Leave recommend-only: apply plans again from the next tick."),
)


def _mode_command(app: typer.Typer, mode: LoopMode) -> None:
    @app.command(mode.command, help=mode.help)
    def command(
        env: EnvOption,
        reason: Annotated[str, typer.Option("--reason", help="Why (kept with the update in the loop's history).")],
        by: ByOption = None,
        json_output: JsonOption = False,
        temporal_address: AddressOption = DEFAULT_TEMPORAL_ADDRESS,
        namespace: NamespaceOption = "default",
        tls_cert: TlsCertOption = None,
        tls_key: TlsKeyOption = None,
        tls_ca: TlsCaOption = None,
    ) -> None:
        spec = load_spec_or_exit(env)
        request = LoopModeRequest(paused=mode.paused, recommend_only=mode.recommend_only, by=actor(by), reason=reason)

        async def go() -> None:
            client = await connect_or_exit(temporal_settings(temporal_address, namespace, tls_cert, tls_key, tls_ca))
            ack = await execute_loop_update(client, spec.name, ControlLoopWorkflow.set_mode, request)
            print_acknowledgement(spec.name, ack, json_output, by=request.by, reason=request.reason)

        run_with_temporal(go())


def register_loop_mode_commands(app: typer.Typer) -> None:
    """Add the mode commands to `edgectl controller` (called once by `edgectl/cli/main.py`)."""
    for mode in LOOP_MODES:
        _mode_command(app, mode)
