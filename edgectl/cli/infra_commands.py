"""`edgectl infra preflight|eks-token`: the cloud deployment from the operator's side.

`preflight` says, before any `pulumi up`, what each region of an environment needs from the AWS
account (`infra.preflight_report`); `eks-token` is the kubeconfig exec plugin the controller's
image uses to authenticate to each regional cluster (`infra.eks_token`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from controller.spec_file import EnvironmentFileError, load_environment
from edgectl.cli.exit_codes import ExitCode
from edgectl.cli.output import fail, print_json, say

infra_app = typer.Typer(help="Check and operate the AWS deployment (infra/).", no_args_is_help=True)


@infra_app.command("preflight")
def preflight_command(
    env: Path = typer.Option(..., "--env", help="Environment file (environments/<env>.yaml)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Per region: vCPUs at max_nodes, addresses needed vs available, opt-in status to check, resources to create.

    Exit 0 when every region's plan fits, 1 on an invalid or undeployable file, 3 when addresses do not fit."""
    from infra.preflight_report import preflight  # Pulumi is imported only for this command

    try:
        spec = load_environment(env)
    except EnvironmentFileError as error:
        for problem in error.problems:
            fail(str(problem))
        raise typer.Exit(ExitCode.INVALID_INPUT) from None
    if spec.infra is None:
        fail(f"{env}: infra: missing: this environment cannot be deployed (see environments/prod.yaml)")
        raise typer.Exit(ExitCode.INVALID_INPUT)
    report = preflight(spec, env.resolve())
    if as_json:
        print_json(
            {
                **dataclasses.asdict(report),
                "ok": report.ok,
                "regions": [
                    {**dataclasses.asdict(r), "addresses_fit": r.addresses_fit, "checks": r.checks()}
                    for r in report.regions
                ],
            }
        )
    else:
        say(
            f"{report.environment}: EKS {report.kubernetes_version}, {len(report.regions)} regions, controller in "
            f"{report.controller_region}"
        )
        for r in report.regions:
            say(f"{r.region} {r.cloud_region} ({r.description}){' opt-in region' if r.opt_in else ''}")
            say(f"  vCPUs at max size: {r.vcpus_at_max} = {r.vcpu_breakdown}")
            verdict = "fits" if r.addresses_fit else "DOES NOT FIT"
            say(
                f"  addresses per zone subnet: {r.addresses_needed} needed of {r.addresses_available} "
                f"({verdict}); VPC {r.vpc_cidr}, subnets {', '.join(r.subnets)}"
            )
            say(f"  recordings kept {r.recordings_retention_days} days")
            say(
                f"  creates {sum(r.resources.values())} resources: "
                + ", ".join(f"{n} {k}" for k, n in r.resources.items())
            )
            for check in r.checks():
                say(f"  check: {check}")
        say("outside the regions: " + ", ".join(f"{n} {k}" for k, n in report.global_resources.items()))
        say("not counted: Route 53 health checks and records, external-dns roles (they need edgeplane:dnsZoneId)")
    raise typer.Exit(ExitCode.OK if report.ok else ExitCode.REFUSED)


@infra_app.command("eks-token")
def eks_token_command(
    cluster: str = typer.Option(..., "--cluster", help="EKS cluster name, e.g. edgeplane-prod-fra."),
    region: str = typer.Option(..., "--region", help="Its AWS region code, e.g. eu-central-1."),
) -> None:
    """Print an ExecCredential with an EKS token (kubeconfig `exec` plugin; needs the `aws` extra)."""
    from infra.eks_token import eks_token, exec_credential

    typer.echo(exec_credential(eks_token(cluster, region)))
