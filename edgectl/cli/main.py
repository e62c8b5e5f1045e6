"""The `edgectl` console script: one root, subcommands grouped by who uses them.

Each group lives in its own module and registers itself here; this file only wires them.
Exit codes: see `edgectl/cli/exit_codes.py` (and the README).

One error path for bad input, whatever the command: `EdgectlGroup` turns the input errors any
command lets escape (a bad JSON file, a bad environment file, input nested too deeply for Python)
into `FILE: field.path: reason` lines on stderr and exit 1. Other failure classes keep their own
codes (`typer.Exit` passes through untouched), and anything else is a bug and stays loud.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from controller.spec_file import EnvironmentFileError
from edgectl.cli.controller_commands import controller_app
from edgectl.cli.dev_commands import demo_command, dev_app
from edgectl.cli.drill_commands import drill_app
from edgectl.cli.drill_schedule_commands import schedules_app
from edgectl.cli.env_commands import env_app, schema_app
from edgectl.cli.exit_codes import ExitCode
from edgectl.cli.failover_commands import failover_app
from edgectl.cli.infra_commands import infra_app
from edgectl.cli.input_files import InputFileError
from edgectl.cli.lease_commands import lease_app
from edgectl.cli.loop_mode_commands import register_loop_mode_commands
from edgectl.cli.output import fail
from edgectl.cli.plan_command import plan_command
from edgectl.cli.selector_commands import selector_app
from edgectl.cli.sim_commands import sim_app
from edgectl.cli.status_command import status as status_command
from edgectl.cli.verify_command import verify_command


class EdgectlGroup(TyperGroup):
    """The root command: runs the subcommand and reports bad input the same way for every command."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except InputFileError as error:
            lines = error.lines
        except EnvironmentFileError as error:
            lines = [str(problem) for problem in error.problems]
        except RecursionError:
            # Parsers that recurse (YAML, JSON) on input nested thousands deep; the file is at fault.
            lines = ["<input>: <document>: nested too deeply to read"]
        for line in lines:
            fail(line)
        raise typer.Exit(ExitCode.INVALID_INPUT)


app = typer.Typer(
    cls=EdgectlGroup,
    name="edgectl",
    help="edgeplane: keep a multi-region real-time media edge healthy, within data-residency rules.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(env_app, name="env")
app.add_typer(schema_app, name="schema")
app.add_typer(sim_app, name="sim")
app.command("plan")(plan_command)
app.command("verify")(verify_command)
app.add_typer(dev_app, name="dev")
app.command("demo")(demo_command)
register_loop_mode_commands(controller_app)
app.add_typer(controller_app, name="controller")
app.add_typer(failover_app, name="failover")
drill_app.add_typer(schedules_app, name="schedules")
app.add_typer(drill_app, name="drill")
app.add_typer(lease_app, name="lease")
app.add_typer(infra_app, name="infra")
app.add_typer(selector_app, name="selector")
app.command("status")(status_command)


def run() -> None:
    app()


if __name__ == "__main__":
    run()
