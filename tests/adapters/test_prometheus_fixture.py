"""The shared Prometheus fixture itself: scrapes a live exporter, and serves backfilled series exactly."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from tests.fixtures.prometheus_server import openmetrics_text

pytestmark = pytest.mark.integration


def test_scrapes_a_live_exporter(prometheus_factory):
    registry = CollectorRegistry()
    Gauge("fixture_probe", "probe", registry=registry).set(42)
    server, _thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        port = server.server_address[1]
        prom = prometheus_factory(targets=[f"127.0.0.1:{port}"])
        result = prom.wait_for_data("fixture_probe", timeout=20)
        assert float(result[0]["value"][1]) == 42.0
        assert result[0]["metric"]["job"] == "edge"
    finally:
        server.shutdown()


def test_backfilled_series_are_queryable_exactly(prometheus_factory):
    now = int(time.time())
    samples = [(now - 120 + 15 * i, float(i)) for i in range(9)]
    text = openmetrics_text([("fixture_backfilled", {"region": "fra"}, samples)])
    prom = prometheus_factory(backfill=text)
    result = prom.query('fixture_backfilled{region="fra"}', at=now)
    assert [float(r["value"][1]) for r in result] == [8.0]
    result = prom.query('fixture_backfilled{region="fra"}', at=now - 60)
    assert [float(r["value"][1]) for r in result] == [4.0]
