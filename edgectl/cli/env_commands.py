"""`edgectl env validate|show` and `edgectl schema env|snapshot|plan`: the spec from the user's side."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from controller.plan import Plan
from controller.snapshot import FleetSnapshot
from controller.spec import EnvironmentSpec
from controller.spec_file import EnvironmentFileError, load_environment
from edgectl.cli.exit_codes import ExitCode
from edgectl.cli.output import console, fail, print_json, say

env_app = typer.Typer(help="Validate and inspect environment files (environments/*.yaml).", no_args_is_help=True)
schema_app = typer.Typer(help="Print JSON Schemas of the product's models.", no_args_is_help=True)

SCHEMAS: dict[str, type[EnvironmentSpec] | type[FleetSnapshot] | type[Plan]] = {
    "env": EnvironmentSpec,
    "snapshot": FleetSnapshot,
    "plan": Plan,
}


@env_app.command("validate")
def validate(
    paths: list[Path] = typer.Argument(..., help="Environment files to check."),
    as_json: bool = typer.Option(False, "--json", help="Print problems as JSON."),
) -> None:
    """Exit 0 when every file is a valid EnvironmentSpec; else exit 1 with `FILE: field.path: reason` lines."""
    problems = []
    valid: list[str] = []
    for path in paths:
        try:
            spec = load_environment(path)
        except EnvironmentFileError as error:
            problems.extend(error.problems)
        else:
            valid.append(f"{path}: ok ({len(spec.regions)} regions, {len(spec.markets)} markets)")
    if as_json:
        print_json(
            {
                "valid": not problems,
                "problems": [{"file": p.file, "field": p.field_path, "reason": p.reason} for p in problems],
            }
        )
    else:
        for line in valid:
            say(line)
        for problem in problems:
            fail(str(problem))
    raise typer.Exit(ExitCode.INVALID_INPUT if problems else ExitCode.OK)


@env_app.command("show")
def show(
    path: Path = typer.Argument(..., help="Environment file."),
    as_json: bool = typer.Option(False, "--json", help="Print the normalised spec as JSON."),
) -> None:
    """Print the normalised spec (defaults filled in)."""
    try:
        spec = load_environment(path)
    except EnvironmentFileError as error:
        for problem in error.problems:
            fail(str(problem))
        raise typer.Exit(ExitCode.INVALID_INPUT) from None
    if as_json:
        print_json(spec)
        return
    console.print(f"[bold]{spec.name}[/bold]: {spec.description}")
    for region in spec.regions:
        console.print(
            f"  region {region.name:<6} {region.cloud_region:<16} jurisdiction={region.jurisdiction:<7} "
            f"nodes {region.min_nodes}..{region.max_nodes} x {region.sessions_per_node} sessions",
            markup=False,
        )
    for market in spec.markets:
        console.print(
            f"  market {market.code} {market.timezone:<20} peak {market.demand.peak_sessions:>6} "
            f"allowed regions: {', '.join(spec.allowed_regions(market.code))}",
            markup=False,
        )


@schema_app.command("env")
def schema_env() -> None:
    """JSON Schema of EnvironmentSpec."""
    _print_schema("env")


@schema_app.command("snapshot")
def schema_snapshot() -> None:
    """JSON Schema of FleetSnapshot."""
    _print_schema("snapshot")


@schema_app.command("plan")
def schema_plan() -> None:
    """JSON Schema of Plan."""
    _print_schema("plan")


def _print_schema(name: str) -> None:
    typer.echo(json.dumps(SCHEMAS[name].model_json_schema(), indent=2))
