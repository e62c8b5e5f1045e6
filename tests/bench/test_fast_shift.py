"""bench/fast_shift.py's arithmetic: the Route 53 baseline and the verdict over cases (no stack)."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.fast_shift import CaseResult, route53_timeline, summary


def test_route53_timeline_from_its_documented_parameters():
    # 10-s checks: first failure 5 s after onset on average, the third 20 s later; 90% of resolver
    # caches (60 s TTL) expired 54 s after that.
    assert route53_timeline(10.0) == {"detected": 25.0, "steered_90": 79.0}
    assert route53_timeline(30.0) == {"detected": 75.0, "steered_90": 129.0}


def _case(steered: float | None, *, blip: bool = False, shifted: bool = False) -> CaseResult:
    return CaseResult("c", "extra_loss", blip, ["DE"], 0.8, steered_90=steered, steered_by_health=shifted)


def test_goal_needs_p50_p95_and_quiet_blips():
    fast = [_case(12.0 + i * 0.1) for i in range(10)] + [_case(None, blip=True)]
    totals = summary(fast)
    assert totals["goal_met"] and totals["steered_p50"] == 12.45 and totals["steered_p95"] == 12.9
    assert summary([*fast, _case(None, blip=True, shifted=True)])["goal_met"] is False


def test_a_case_never_steered_counts_as_slowest():
    totals = summary([_case(10.0)] * 9 + [_case(None)])
    assert totals["not_steered"] == 1 and math.isinf(totals["steered_p95"]) and not totals["goal_met"]


def test_sigterm_unwinds_the_run_so_its_finally_blocks_stop_the_children(tmp_path: Path) -> None:
    """A SIGTERM (a timeout, `kill`) must run the benchmark's `finally` (which stops Prometheus and the
    Temporal dev server): Python's default SIGTERM exits without it, and the children outlived the run."""
    marker = tmp_path / "cleaned-up"
    program = (
        "import asyncio, sys\n"
        "from bench.fast_shift import run_stopping_on_sigterm\n"
        "async def main():\n"
        "    try:\n"
        "        print('started', flush=True)\n"
        "        await asyncio.Event().wait()\n"
        "    finally:\n"
        f"        open({str(marker)!r}, 'w').write('yes')\n"
        "run_stopping_on_sigterm(main())\n"
    )
    child = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "started"
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=60)
    finally:
        child.kill()
    assert marker.read_text() == "yes"


def test_cases_filter_keeps_the_waves_order_and_defaults_to_every_case():
    from bench.fast_shift import WAVES, select_waves

    assert select_waves(len(WAVES)) == WAVES
    chosen = select_waves(len(WAVES), "kul loss, PAR rtt")
    assert [[c.label for c in wave] for wave in chosen] == [["kul loss +10%"], ["par RTT +400 ms"]]
    # par's case is in the second wave: among the first wave only, the filter matches nothing.
    with pytest.raises(SystemExit, match="--cases: 'par rtt' matches no case"):
        select_waves(1, "par rtt")
