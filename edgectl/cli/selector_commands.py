"""`edgectl selector serve`: the region selector the apps' signalling calls for every new session.

Wires `selector/` together: the environment file (residency, markets, scenarios), the published
steering state to follow (the steering file, a mounted ConfigMap key, or a URL), the media
endpoint of each region, and the HTTP service. Runs until SIGTERM or SIGINT. Exit codes: 1 bad
input (an unknown region in --endpoint, a bad template), 4 the port cannot be bound.
"""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer
from prometheus_client import CollectorRegistry

from edgectl.bootstrap import default_steering_file
from edgectl.cli.controller_commands import EnvOption, exit_with, load_spec_or_exit
from edgectl.cli.exit_codes import ExitCode
from edgectl.cli.output import say
from selector.decision import DEFAULT_MAX_ENDPOINTS, endpoint_urls
from selector.http_server import SelectorServer, SelectorService
from selector.metrics import SelectorMetrics
from selector.published_state import PublishedStateFollower, source_for

selector_app = typer.Typer(help="The region selector: per-session media endpoints.", no_args_is_help=True)

DEFAULT_SELECTOR_PORT = 8480
DEFAULT_ENDPOINT_TEMPLATE = "wss://media-{region}.edge.example"


def _endpoint_overrides(values: list[str]) -> dict[str, str]:
    overrides = {}
    for value in values:
        region, sep, url = value.partition("=")
        if not sep or not region or not url:
            exit_with(ExitCode.INVALID_INPUT, f"--endpoint: {value!r}: expected REGION=URL")
        overrides[region] = url
    return overrides


@selector_app.command("serve")
def serve(
    env: EnvOption,
    source: Annotated[
        str | None,
        typer.Option(
            help="Published steering state to follow: a file (the steering file, or a mounted ConfigMap's "
            "weights.json) or an http(s) URL. Default: .edgeplane/steering-<env>.json."
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free port).")] = (
        DEFAULT_SELECTOR_PORT
    ),
    endpoint_template: Annotated[
        str, typer.Option(help="Media endpoint of a region; {region} and {cloud_region} are replaced.")
    ] = DEFAULT_ENDPOINT_TEMPLATE,
    endpoint: Annotated[
        list[str] | None, typer.Option(help="REGION=URL: a region's media endpoint, instead of the template (repeat).")
    ] = None,
    max_endpoints: Annotated[
        int, typer.Option(min=1, max=16, help="Endpoints per answer: the session's region, then fallbacks.")
    ] = DEFAULT_MAX_ENDPOINTS,
    poll_seconds: Annotated[float, typer.Option(min=0.05, max=60, help="How often the source is polled.")] = 0.5,
) -> None:
    """Answer /v1/select?market=..&scenario=..&session=.. from the published steering state until SIGTERM."""
    spec = load_spec_or_exit(env)
    try:
        endpoints = endpoint_urls(spec, endpoint_template, _endpoint_overrides(endpoint or []))
    except ValueError as error:
        exit_with(ExitCode.INVALID_INPUT, f"{env}: --endpoint: {error}")
    location = source or str(default_steering_file(spec.name))
    registry = CollectorRegistry()
    metrics = SelectorMetrics(spec.name, registry)
    follower = PublishedStateFollower(
        spec,
        source_for(location),
        endpoints,
        max_endpoints=max_endpoints,
        on_table=metrics.table_changed,
        on_error=metrics.source_error,
    )
    metrics.follow(follower)
    server = SelectorServer(
        SelectorService(follower, metrics, registry), host=host, port=port, poll_seconds=poll_seconds
    )
    try:
        server.start()
    except OSError as error:
        exit_with(ExitCode.UNAVAILABLE, f"--port {port}: {error.strerror or error}")
    loaded = "loaded" if follower.table is not None else f"not loaded yet ({follower.last_error}); refusing until it is"
    say(f"selector for {spec.name} on {server.url}; steering state {location}: {loaded}")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    server.stop()
    say("selector stopped")
