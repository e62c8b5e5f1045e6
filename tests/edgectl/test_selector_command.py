"""`edgectl selector serve` as a user runs it: a real process on a free loopback port, following the
steering file, stopped by SIGTERM; bad options exit 1 with one line naming the option."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
from typer.testing import CliRunner

from controller.steering import SteeringState
from edgectl.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / "environments" / "local.yaml"
EDGECTL = [sys.executable, "-c", "from edgectl.cli.main import run; run()"]


def test_serve_answers_from_the_steering_file_and_stops_on_sigterm(tmp_path):
    steering = tmp_path / "steering-local.json"
    steering.write_text(SteeringState(environment="local", revision=5, weights={"SG": {"sin": 1.0}}).model_dump_json())
    process = subprocess.Popen(
        [*EDGECTL, "selector", "serve", "--env", str(LOCAL), "--source", str(steering), "--port", "0",
         "--endpoint", "sin=wss://sin.media.example"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )  # fmt: skip
    try:
        first = process.stdout.readline()  # blocks until the server is bound (or the process died)
        assert first.startswith("selector for local on http://127.0.0.1:"), first + process.stderr.read()
        url = first.split(" on ")[1].split(";")[0]
        assert "loaded" in first
        reply = httpx.get(f"{url}/v1/select", params={"market": "SG", "scenario": "one_to_one", "session": "x"})
        assert reply.status_code == 200
        assert reply.json()["endpoints"][0] == {"region": "sin", "url": "wss://sin.media.example", "share": 1.0}
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "selector stopped" in out


def test_bad_endpoint_options_exit_1_naming_the_option():
    runner = CliRunner()
    unknown = runner.invoke(app, ["selector", "serve", "--env", str(LOCAL), "--endpoint", "atlantis=wss://a"])
    assert unknown.exit_code == 1
    assert "--endpoint: endpoint given for unknown regions atlantis" in unknown.stderr
    malformed = runner.invoke(app, ["selector", "serve", "--env", str(LOCAL), "--endpoint", "fra"])
    assert malformed.exit_code == 1 and "expected REGION=URL" in malformed.stderr
    template = runner.invoke(app, ["selector", "serve", "--env", str(LOCAL), "--endpoint-template", "wss://{az}"])
    assert template.exit_code == 1 and "{region}" in template.stderr
