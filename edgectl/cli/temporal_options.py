"""What every command that talks to Temporal shares: the connection options, who is acting (`--by`),
the run-then-exit wrapper, and the exits for bad input and unreachable servers.

Used by `controller_commands.py`, `loop_mode_commands.py`, `failover_commands.py`,
`drill_commands.py`, `drill_schedule_commands.py` and `status_command.py`. Each connection option
falls back to an environment variable (`edgectl/bootstrap.py` names them), so on-call sets
`EDGEPLANE_TEMPORAL_ADDRESS` once instead of passing `--temporal-address` to every command.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from temporalio.client import Client

from controller.spec import EnvironmentSpec
from controller.spec_file import EnvironmentFileError, load_environment
from edgectl.bootstrap import (
    DEFAULT_TEMPORAL_ADDRESS,
    ENV_TEMPORAL_ADDRESS,
    ENV_TEMPORAL_NAMESPACE,
    ENV_TEMPORAL_TLS_CA,
    ENV_TEMPORAL_TLS_CERT,
    ENV_TEMPORAL_TLS_KEY,
    ENV_USER,
    BootstrapError,
    TemporalSettings,
    connect_temporal,
    default_actor,
    describe_connection_error,
)
from edgectl.cli.exit_codes import ExitCode
from edgectl.cli.output import fail

EnvOption = Annotated[Path, typer.Option("--env", help="Environment file, e.g. environments/local.yaml.")]
AddressOption = Annotated[
    str, typer.Option("--temporal-address", envvar=ENV_TEMPORAL_ADDRESS, help="Temporal frontend host:port.")
]
NamespaceOption = Annotated[str, typer.Option("--namespace", envvar=ENV_TEMPORAL_NAMESPACE, help="Temporal namespace.")]
TlsCertOption = Annotated[
    Path | None, typer.Option("--tls-cert", envvar=ENV_TEMPORAL_TLS_CERT, help="Client certificate (mTLS).")
]
TlsKeyOption = Annotated[
    Path | None, typer.Option("--tls-key", envvar=ENV_TEMPORAL_TLS_KEY, help="Client private key (mTLS).")
]
TlsCaOption = Annotated[
    Path | None, typer.Option("--tls-ca", envvar=ENV_TEMPORAL_TLS_CA, help="CA certificate of the Temporal server.")
]
TaskQueueOption = Annotated[
    str | None, typer.Option("--task-queue", help="Override the task queue (default edgeplane-<env>).", hidden=True)
]
ByOption = Annotated[
    str | None,
    typer.Option(
        "--by",
        envvar=ENV_USER,
        show_default=False,
        help="Who is acting (audit trail, four-eyes approval). Default: $EDGEPLANE_USER, else the OS user.",
    ),
]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why (audit trail).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]

__all__ = [
    "DEFAULT_TEMPORAL_ADDRESS",
    "AddressOption",
    "ByOption",
    "EnvOption",
    "JsonOption",
    "NamespaceOption",
    "ReasonOption",
    "TaskQueueOption",
    "TlsCaOption",
    "TlsCertOption",
    "TlsKeyOption",
    "actor",
    "connect_or_exit",
    "exit_with",
    "load_spec_or_exit",
    "run_with_temporal",
    "temporal_settings",
]


def actor(by: str | None) -> str:
    """The name `--by` gave, else $EDGEPLANE_USER, else the OS user; blank names are refused."""
    name = (by or "").strip() or default_actor()
    if not name:
        exit_with(ExitCode.INVALID_INPUT, "--by: empty name (set --by or $EDGEPLANE_USER)")
    return name


def run_with_temporal(main: Coroutine[Any, Any, None]) -> None:
    """Run a command that talks to Temporal, then leave without interpreter teardown.

    The SDK's Rust runtime threads can abort CPython's finalisation with "PyGILState_Release ...
    must be current" (temporalio/sdk-python#300), turning a finished command into exit -6. So a
    real process flushes its output and ends with os._exit(code); under an in-process test runner
    (stdout without a file descriptor) the usual typer.Exit is raised instead.
    """
    code = 0
    try:
        asyncio.run(main)
    except typer.Exit as done:
        code = done.exit_code
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        raise typer.Exit(code) from None
    os._exit(code)


def exit_with(code: ExitCode, message: str = "") -> NoReturn:
    if message:
        fail(message)
    raise typer.Exit(int(code))


def load_spec_or_exit(path: Path) -> EnvironmentSpec:
    try:
        return load_environment(path)
    except EnvironmentFileError as error:
        exit_with(ExitCode.INVALID_INPUT, str(error))


def temporal_settings(
    address: str, namespace: str, cert: Path | None, key: Path | None, ca: Path | None
) -> TemporalSettings:
    return TemporalSettings(address=address, namespace=namespace, tls_cert=cert, tls_key=key, tls_ca=ca)


async def connect_or_exit(settings: TemporalSettings) -> Client:
    """Connect, or exit 1 (a TLS file is wrong) or 4 (unreachable) with one readable line."""
    try:
        return await connect_temporal(settings)
    except BootstrapError as error:
        exit_with(ExitCode.INVALID_INPUT, str(error))
    except RuntimeError as error:
        exit_with(
            ExitCode.UNAVAILABLE,
            f"Temporal at {settings.address} (namespace {settings.namespace}) unreachable: "
            f"{describe_connection_error(error)} (set --temporal-address or ${ENV_TEMPORAL_ADDRESS})",
        )
