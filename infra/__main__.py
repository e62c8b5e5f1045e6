"""Pulumi entry point (`main: infra/` in Pulumi.yaml): all wiring lives in `infra.program`."""

from infra.program import run

run()
