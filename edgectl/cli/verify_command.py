"""`edgectl verify`: check a plan's residency certificate against an environment spec, from the spec alone.

Re-derives the certificate (`controller.core.residency_certificate.verify_residency`): the spec's
content hash, the plan id from the plan's content, one proof per market from the spec's
jurisdictions and the plan's weights, compliance from those checks, and the digest binding them.
Exit 0 only if everything matches and the plan is compliant; otherwise exit 1 with one
`PLAN: field.path: reason` line per mismatch. Changes nothing.
"""

from __future__ import annotations

from pathlib import Path

import typer

from controller.core.residency_certificate import verify_residency
from controller.plan import Plan
from controller.spec_file import load_environment
from edgectl.cli.input_files import InputFileError, load_model_file
from edgectl.cli.output import say


def verify_command(
    env: Path = typer.Option(..., "--env", help="Environment file the plan must have been made for."),
    plan_path: Path = typer.Option(..., "--plan", help="Plan JSON (edgectl plan --json, or the controller's)."),
) -> None:
    """Verify a plan's residency certificate against the spec: exit 0 if it matches, 1 with the reason if not."""
    spec = load_environment(env)  # a bad environment file is reported by the root command (exit 1)
    plan = load_model_file(plan_path, Plan)
    problems = verify_residency(spec, plan)
    if problems:
        raise InputFileError([f"{plan_path}: {problem}" for problem in problems])
    seal = plan.residency_seal
    assert seal is not None  # verify_residency reports a missing seal
    say(
        f"{plan_path}: residency certificate verified: plan {plan.plan_id}, {len(plan.residency_certificate)} "
        f"markets within their jurisdictions, spec {env} sha256 {seal.spec_hash[:16]}"
    )
