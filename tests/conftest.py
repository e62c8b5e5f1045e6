"""Shared pytest wiring: real servers on free loopback ports come from `tests/fixtures/`."""

pytest_plugins = [
    "tests.fixtures.prometheus_server",
    "tests.fixtures.temporal_server",
]
