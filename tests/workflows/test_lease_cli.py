"""`edgectl lease list|release` as on-call runs them (subprocesses) on a steering file holding a lease.

The refusals (wrong epoch, unknown region, missing file, Temporal unreachable for the holder check)
must leave the lease in place; a release names who did it. The holder check against a running
failover and the release of a real orphan after Temporal lost its state are exercised end to end in
`tests/e2e/test_durable_restart.py`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from controller.adapters.steering_store import FileSteeringStore
from controller.spec import EnvironmentSpec
from edgectl.cli.exit_codes import ExitCode
from tests.fakes.steering import gate
from tests.fixtures.prometheus_server import free_port
from tests.workflows.conftest import LOCAL_ENV

EDGECTL = str(Path(sys.executable).parent / "edgectl")
HOLDER = "edgeplane-failover-local-fra"


@pytest.fixture
def leased(tmp_path: Path, local_spec: EnvironmentSpec) -> Path:
    """A steering file in which fra is leased (epoch 2: a first lease was taken and released)."""
    path = tmp_path / "steering.json"
    authority = gate(local_spec, actuator=object(), steering_file=path)  # type: ignore[arg-type]  # leases never act
    authority.acquire_lease("fra", "an-earlier-drill", 0.5, "drill")
    authority.release_lease("fra", holder="an-earlier-drill", epoch=None, by="an-earlier-drill")
    authority.acquire_lease("fra", HOLDER, 0.0, "on-call: fra lost power")
    return path


def edgectl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EDGECTL, *args], capture_output=True, text=True, timeout=60)


def lease_of(path: Path, region: str):
    return FileSteeringStore(path, "local").read().leases.get(region)


def test_list_shows_region_epoch_holder_and_share(leased: Path) -> None:
    result = edgectl("lease", "list", "--env", str(LOCAL_ENV), "--steering-file", str(leased))
    assert result.returncode == 0, result.stderr
    assert f"fra: epoch 2, at most 0% of each market's traffic, held by {HOLDER}" in result.stdout
    listed = json.loads(
        edgectl("lease", "list", "--env", str(LOCAL_ENV), "--steering-file", str(leased), "--json").stdout
    )
    assert [(lease["region"], lease["epoch"], lease["holder"]) for lease in listed["leases"]] == [("fra", 2, HOLDER)]


def test_a_missing_steering_file_is_named_not_read_as_no_leases(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "steering.json"
    result = edgectl("lease", "list", "--env", str(LOCAL_ENV), "--steering-file", str(missing))
    assert result.returncode == ExitCode.INVALID_INPUT
    assert f"{missing}: --steering-file: not found" in result.stderr
    assert not missing.parent.exists()  # looking did not create anything
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--region", "fra", "--epoch", "1"], ExitCode.REFUSED, "region fra is leased at epoch 2, not 1"),
        (["--region", "dub", "--epoch", "1"], ExitCode.REFUSED, "region dub has no lease to release"),
        (["--region", "atlantis", "--epoch", "2"], ExitCode.INVALID_INPUT, "--region: unknown region 'atlantis'"),
    ],
)
def test_a_refused_release_leaves_the_lease(leased: Path, args: list[str], code: int, message: str) -> None:
    before = FileSteeringStore(leased, "local").read()
    result = edgectl(
        "lease", "release", "--env", str(LOCAL_ENV), "--steering-file", str(leased), "--by", "alice",
        "--no-holder-check", *args,
    )  # fmt: skip
    assert result.returncode == code, (result.stdout, result.stderr)
    assert message in result.stderr and "Traceback" not in result.stderr
    assert FileSteeringStore(leased, "local").read() == before


def test_without_temporal_the_holder_check_refuses_and_says_how_to_skip_it(leased: Path) -> None:
    result = edgectl(
        "lease", "release", "--env", str(LOCAL_ENV), "--steering-file", str(leased), "--by", "alice",
        "--region", "fra", "--epoch", "2", "--temporal-address", f"127.0.0.1:{free_port()}",
    )  # fmt: skip
    assert result.returncode == ExitCode.UNAVAILABLE, result.stderr
    assert f"cannot tell whether {HOLDER} still runs" in result.stderr and "--no-holder-check" in result.stderr
    assert lease_of(leased, "fra") is not None


def test_release_with_the_right_epoch_frees_the_region_and_records_who(leased: Path) -> None:
    result = edgectl(
        "lease", "release", "--env", str(LOCAL_ENV), "--steering-file", str(leased), "--by", "alice",
        "--reason", "failover lost with Temporal", "--region", "fra", "--epoch", "2", "--no-holder-check",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "released fra: epoch 2" in result.stdout
    state = FileSteeringStore(leased, "local").read()
    assert "fra" not in state.leases and state.last_epoch["fra"] == 2  # epochs are never reused
    assert state.updated_by == "lease fra epoch 2 released by alice (failover lost with Temporal)"
    again = edgectl("lease", "list", "--env", str(LOCAL_ENV), "--steering-file", str(leased))
    assert "no region is leased" in again.stdout
