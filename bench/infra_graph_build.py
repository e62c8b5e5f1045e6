"""How long the Pulumi program takes to build its resource graph, per environment, under mocks.

Runs `infra.program.run()` through `infra.offline_graph.build_graph` (Pulumi's documented
`set_mocks` unit-testing path: no CLI, no provider plugin, no cloud) for local, staging and prod,
with global routing enabled, and prints a Markdown table: resources declared (custom resources,
components, providers) and wall time of the first build in the process (includes importing the
pulumi-aws modules) and the median of the following runs.

    .venv/bin/python -m bench.infra_graph_build [--runs 5]

This measures the program's own cost (Python objects, applies, one mock registration per
resource); a real `pulumi preview` adds the engine, the provider plugin and AWS API calls.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

from infra.offline_graph import RecordedGraph, build_graph, environment_config

REPO = Path(__file__).resolve().parents[1]
ENVIRONMENTS = ("local", "staging", "prod")


def build_once(environment: str) -> tuple[float, float, RecordedGraph]:
    """Wall seconds, CPU seconds (all threads of this process) and the graph of one build."""
    config = environment_config(
        REPO / "environments" / f"{environment}.yaml", dnsZoneId="Z0BENCHMARK", mediaDomain="media.example.com"
    )
    wall, cpu = time.perf_counter(), time.process_time()
    graph = build_graph(config, stack=environment)
    return time.perf_counter() - wall, time.process_time() - cpu, graph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per environment after the first")
    options = parser.parse_args()

    rows = []
    for environment in ENVIRONMENTS:
        first, _, graph = build_once(environment)
        runs = [build_once(environment) for _ in range(options.runs)]
        timings = [wall for wall, _, _ in runs]
        cpu = statistics.median(cpu for _, cpu, _ in runs)
        regions = len(graph.of_type("edgeplane:infra:EdgeMediaCluster"))
        providers = len(graph.of_type("pulumi:providers:aws"))
        components = sum(1 for r in graph.resources if r.type.startswith("edgeplane:"))
        aws = sum(1 for r in graph.resources if r.type.startswith("aws:"))
        rows.append(
            f"| {environment} | {regions} | {len(graph.resources)} | {aws} | {providers} | {components} "
            f"| {first:.2f} | {statistics.median(timings):.2f} | {min(timings):.2f}-{max(timings):.2f} | {cpu:.2f} |"
        )

    print(f"Command: `.venv/bin/python -m bench.infra_graph_build --runs {options.runs}`  ")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {load:.1f} at the end, "
        f"Python {platform.python_version()}, {options.runs} timed runs each\n"
    )
    print(
        "| environment | regions | resources | AWS resources | providers | components "
        "| first build (s) | median wall (s) | wall range (s) | median CPU (s) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
