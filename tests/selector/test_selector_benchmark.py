"""bench/selector_benchmark.py's own arithmetic: wrk's latency units, the target verdict, and the
splice that rewrites only the selector's section of docs/benchmarks.md."""

from __future__ import annotations

from datetime import UTC, datetime

from bench.selector_benchmark import HEADING, WrkRow, _ms, markdown, splice


def test_wrk_latency_units():
    assert _ms("293.00us") == 0.293 and _ms("5.16ms") == 5.16 and _ms("1.02s") == 1020.0


def row(connections, requests, p99, non_2xx=0):
    return WrkRow(connections, requests, non_2xx, 10.0, 0.5, p99, 9.0)


def test_target_is_met_only_by_a_row_with_both_throughput_and_tail():
    started = datetime(2026, 1, 1, tzinfo=UTC)
    assert "**NOT met**" in markdown([row(4, 60_000, 6.0), row(1, 40_000, 1.0)], 5.0, 20.0, "cmd", started)
    assert "**met** (at 4 connections)" in markdown([row(4, 60_000, 4.0)], 5.0, 20.0, "cmd", started)
    # refusals are not answers
    assert "**NOT met**" in markdown([row(4, 60_000, 4.0, non_2xx=20_000)], 5.0, 20.0, "cmd", started)


def test_splice_replaces_only_its_own_section(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Decision latency\n\nkept 1\n\n## Capacity\n\nkept 2\n")
    splice(doc, f"{HEADING}\n\nfirst\n")
    splice(doc, f"{HEADING}\n\nsecond\n")
    text = doc.read_text()
    assert text.count(HEADING) == 1 and "second" in text and "first" not in text
    assert "kept 1" in text and "kept 2" in text
    doc.write_text(f"# Benchmarks\n\n{HEADING}\n\nold\n\n## Capacity\n\nkept 3\n")
    splice(doc, f"{HEADING}\n\nnew\n\n")
    assert doc.read_text() == f"# Benchmarks\n\n{HEADING}\n\nnew\n\n## Capacity\n\nkept 3\n"
