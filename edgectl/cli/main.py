"""The `edgectl` console script: one root, subcommands grouped by who uses them.

Each group lives in its own module and registers itself here; this file only wires them.
Exit codes: see `edgectl/cli/exit_codes.py` (and the README).
"""

from __future__ import annotations

import typer

from edgectl.cli.controller_commands import controller_app
from edgectl.cli.dev_commands import demo_command, dev_app
from edgectl.cli.drill_commands import drill_app
from edgectl.cli.env_commands import env_app, schema_app
from edgectl.cli.failover_commands import failover_app
from edgectl.cli.lease_commands import lease_app
from edgectl.cli.plan_command import plan_command
from edgectl.cli.sim_commands import sim_app
from edgectl.cli.status_command import status as status_command

app = typer.Typer(
    name="edgectl",
    help="edgeplane: keep a multi-region real-time media edge healthy, within data-residency rules.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(env_app, name="env")
app.add_typer(schema_app, name="schema")
app.add_typer(sim_app, name="sim")
app.command("plan")(plan_command)
app.add_typer(dev_app, name="dev")
app.command("demo")(demo_command)
app.add_typer(controller_app, name="controller")
app.add_typer(failover_app, name="failover")
app.add_typer(drill_app, name="drill")
app.add_typer(lease_app, name="lease")
app.command("status")(status_command)


def run() -> None:
    app()


if __name__ == "__main__":
    run()
