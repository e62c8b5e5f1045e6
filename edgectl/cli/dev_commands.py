"""`edgectl dev up` (the whole local stack, until Ctrl-C) and `edgectl demo` (the scripted run).

`dev up` starts Temporal (dev server + UI), Prometheus with the repo's rules, the simulated fleet
and the controller worker on 127.0.0.1 through `edgectl/dev_stack.py`, prints the URLs and
where its state lives, and supervises them until Ctrl-C or SIGTERM, then stops every child. State is
durable under `--state-dir` (Temporal's database, the steering file with its leases, Prometheus'
data), so a second `dev up` resumes where the first stopped; a child that dies is started again
with backoff (and the stack stopped, exit 5, only if it keeps crashing). `demo` runs
`edgectl/demo/scenario.py` end to end and prints the summary of `edgectl/demo/report.py`.
A missing binary or a taken port exits with code 4 (UNAVAILABLE) and says how to fix it.

Default ports (each has its own option): Temporal gRPC 7233, Temporal UI 8233, Temporal HTTP
7243, Temporal server metrics 7244, Prometheus 9090, simulated fleet 8700, controller metrics 9464.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from controller.spec_file import EnvironmentFileError, load_environment
from edgectl.cli.exit_codes import ExitCode
from edgectl.cli.output import console, fail, say
from edgectl.dev_stack import CrashLoop, DevStack, StackOptions, StackPorts, StackUnavailable
from edgectl.stack_process import TerminationRequested, raise_on_sigterm

dev_app = typer.Typer(help="The local stack: Temporal, Prometheus, the simulated fleet, the controller.",
                      no_args_is_help=True)  # fmt: skip

_DEFAULTS = StackPorts()
DEFAULT_STATE_DIR = Path(".edgeplane")
"""Beside the controller's own default steering file (`.edgeplane/steering-<env>.json`), so
`edgectl lease list --env ...` run from the same directory reads the dev stack's leases."""


def _check_env(env: Path) -> None:
    try:
        load_environment(env)
    except EnvironmentFileError as error:
        for problem in error.problems:
            fail(str(problem))
        raise typer.Exit(ExitCode.INVALID_INPUT) from error


def _unavailable(error: StackUnavailable) -> typer.Exit:
    fail(f"edgectl: {error}")
    if error.hint:
        fail(f"  {error.hint}")
    return typer.Exit(ExitCode.UNAVAILABLE)


@dev_app.command("up")
def dev_up(
    env: Path = typer.Option(Path("environments/local.yaml"), "--env", help="Environment file."),
    speed: float = typer.Option(60.0, "--speed", min=0.01, help="Simulated seconds per wall second."),
    sim_start: str = typer.Option(None, "--sim-start", help="Simulated clock at start, ISO 8601 (default: now)."),
    state_dir: Path = typer.Option(
        DEFAULT_STATE_DIR,
        "--state-dir",
        "--work-dir",
        help="Durable state (Temporal's database, the steering file, Prometheus' data) and logs; "
        "kept across runs, delete it to start afresh.",
    ),
    temporal_port: int = typer.Option(_DEFAULTS.temporal, "--temporal-port"),
    temporal_ui_port: int = typer.Option(_DEFAULTS.temporal_ui, "--temporal-ui-port"),
    temporal_http_port: int = typer.Option(_DEFAULTS.temporal_http, "--temporal-http-port"),
    temporal_metrics_port: int = typer.Option(_DEFAULTS.temporal_metrics, "--temporal-metrics-port"),
    prometheus_port: int = typer.Option(_DEFAULTS.prometheus, "--prometheus-port"),
    selector_port: int = typer.Option(_DEFAULTS.selector, "--selector-port"),
    simulator_port: int = typer.Option(_DEFAULTS.simulator, "--simulator-port"),
    controller_metrics_port: int = typer.Option(_DEFAULTS.controller_metrics, "--controller-metrics-port"),
    no_controller: bool = typer.Option(False, "--no-controller", help="Start everything but the controller."),
) -> None:
    """Start the local stack on 127.0.0.1 and keep it running until Ctrl-C (or SIGTERM)."""
    _check_env(env)
    ports = StackPorts(
        temporal=temporal_port,
        temporal_ui=temporal_ui_port,
        temporal_http=temporal_http_port,
        temporal_metrics=temporal_metrics_port,
        prometheus=prometheus_port,
        selector=selector_port,
        simulator=simulator_port,
        controller_metrics=controller_metrics_port,
    )
    stack = DevStack(
        StackOptions(
            env_path=env,
            speed=speed,
            sim_start=sim_start,
            ports=ports,
            work_dir=state_dir.resolve(),
            start_controller=not no_controller,
        )
    )
    raise_on_sigterm()
    try:
        with console.status("starting the local stack") as status:
            stack.start(progress=lambda message: status.update(message))
        console.print(f"[bold green]edgeplane local stack is up[/] (fleet at x{speed:g})")
        for name, url in stack.urls.items():
            console.print(f"  {name:<20} {url}")
        say(f"state (kept across restarts; delete the directory to start afresh): {stack.options.work_dir}")
        say(f"  Temporal database     {stack.temporal_db}")
        say(f"  steering state        {stack.steering_file}")
        say(f"  region leases:        edgectl lease list --env {env} --steering-file {stack.steering_file}")
        say(f"  logs                  {stack.options.work_dir / 'logs'}")
        console.print("A child that dies is started again. Press Ctrl-C to stop everything.")
        while True:
            stack.heal(report=fail)
            time.sleep(1.0)
    except StackUnavailable as error:
        raise _unavailable(error) from error
    except CrashLoop as error:
        fail(f"edgectl: {error}")
        fail(error.process.log_tail(8))
        raise typer.Exit(ExitCode.FAILED) from error
    except (KeyboardInterrupt, TerminationRequested):
        console.print("stopping the local stack...")
    finally:
        stack.stop()
    console.print("stopped: no process left behind.")


def demo_command(
    env: Path = typer.Option(Path("environments/local.yaml"), "--env", help="Environment file."),
    duration_scale: float = typer.Option(
        1.0, "--duration-scale", min=0.05, max=10, help="Multiply every phase's length (0.5 = half as long)."
    ),
    speed: float = typer.Option(60.0, "--speed", min=0.01, help="Simulated seconds per wall second."),
    report_dir: Path = typer.Option(Path("reports"), "--report-dir", help="Reports go to <dir>/demo-<timestamp>/."),
    drill_region: str = typer.Option("sin", "--drill-region", help="Region the on-call drill evacuates."),
) -> None:
    """Run the scripted demo on the local stack (about 5 minutes) and write reports/demo-<timestamp>/."""
    _check_env(env)
    raise_on_sigterm()
    # Imported here, not at module level: the report pulls in matplotlib (~1 s), which every other
    # `edgectl` command would otherwise pay at start-up.
    from edgectl.demo.scenario import DemoOptions, run_demo
    from edgectl.demo.summary import summary_table

    options = DemoOptions(
        env_path=env, report_root=report_dir, speed=speed, duration_scale=duration_scale, drill_region=drill_region
    )
    console.rule("[bold]edgeplane demo[/]")
    try:
        outcome = run_demo(options, progress=lambda message: console.print(message, highlight=False))
    except StackUnavailable as error:
        raise _unavailable(error) from error
    except (KeyboardInterrupt, TerminationRequested) as error:
        fail("edgectl: demo interrupted; the stack was stopped")
        raise typer.Exit(ExitCode.FAILED) from error
    console.print(summary_table(outcome.measurements, speed))
    console.print(f"report: [bold]{outcome.report_path}[/]  (wall time {outcome.wall_seconds:.0f} s)")
    if outcome.leftover_pids:
        fail(f"edgectl: processes still alive after teardown: {outcome.leftover_pids}")
        raise typer.Exit(ExitCode.FAILED)
    if outcome.recording.problems:
        for problem in outcome.recording.problems:
            fail(f"edgectl: {problem}")
        raise typer.Exit(ExitCode.FAILED)
