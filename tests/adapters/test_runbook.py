"""docs/runbook.md against the alerts and the CLI: every alert links an existing section of the
runbook, every section belongs to an alert, and every `edgectl ...` line in the runbook (and in the
alerts' annotations) parses against the real command line (click's parser, nothing is run)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer
import yaml

from edgectl.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "runbook.md"
ALERTS = [
    rule
    for path in sorted((ROOT / "rules").glob("*.yml"))
    for group in yaml.safe_load(path.read_text())["groups"]
    for rule in group["rules"]
    if "alert" in rule
]


def _anchor(heading: str) -> str:
    """The anchor a Markdown renderer gives a heading: lower case, punctuation dropped, spaces -> '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _sections() -> dict[str, str]:
    return {_anchor(h): h for h in re.findall(r"^## (.+)$", RUNBOOK.read_text(), flags=re.MULTILINE)}


def _runbook_commands() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", RUNBOOK.read_text(), flags=re.DOTALL)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip().startswith("edgectl ")]


def _annotation_commands() -> list[str]:
    """Commands in the alerts' annotations, with the label templates filled as Prometheus would."""
    return [
        re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", r"\1-value", command)
        for rule in ALERTS
        for text in rule.get("annotations", {}).values()
        for command in re.findall(r"`(edgectl [^`]*)`", text)
    ]


# Typer vendors its own click; its usage error is the public BadParameter's base class.
UsageError: type[Exception] = typer.BadParameter.__mro__[1]
assert UsageError.__name__ == "UsageError"


def parse(command_line: str) -> object:
    """Parse like the shell and click would, down to the leaf command, without running it; raise
    click's usage error (unknown command or option, missing or bad value) when the CLI would."""
    args = shlex.split(command_line)[1:]
    command = typer.main.get_command(app)
    name = "edgectl"
    while hasattr(command, "commands"):  # a group: the next word names a subcommand
        if not args or args[0] not in command.commands:
            raise UsageError(f"{command_line!r}: no such command {args[0] if args else ''!r} under {name}")
        name, args = args[0], args[1:]
        command = command.commands[name]
    return command.make_context(name, list(args), resilient_parsing=False)


def test_every_alert_links_its_runbook_section_and_every_section_has_an_alert():
    sections = _sections()
    linked = set()
    for rule in ALERTS:
        url = rule.get("annotations", {}).get("runbook_url", "")
        path, _, anchor = url.partition("#")
        assert path == "docs/runbook.md", f"{rule['alert']}: runbook_url {url!r}"
        assert (ROOT / path).is_file()
        assert anchor in sections, f"{rule['alert']}: no section #{anchor} in docs/runbook.md"
        assert sections[anchor] == rule["alert"], f"{rule['alert']} links the section of {sections[anchor]}"
        linked.add(anchor)
    assert set(sections) == linked, f"sections without an alert: {sorted(set(sections) - linked)}"


def test_the_runbook_has_commands_for_every_alert():
    text = RUNBOOK.read_text()
    for heading, body in zip(
        re.findall(r"^## (.+)$", text, re.M), re.split(r"^## .+$", text, flags=re.M)[1:], strict=True
    ):
        assert "edgectl " in body, f"section {heading} gives no edgectl command"


@pytest.mark.parametrize("command_line", sorted(set(_runbook_commands() + _annotation_commands())))
def test_runbook_and_annotation_commands_parse_against_the_cli(command_line: str):
    parse(command_line)


def test_the_parser_refuses_what_the_cli_would_refuse():
    with pytest.raises(UsageError):
        parse("edgectl failover start dub")  # the old annotation's syntax
    with pytest.raises(UsageError):
        parse("edgectl controller pause --env environments/prod.yaml")  # --reason is required
    with pytest.raises(UsageError):
        parse("edgectl drill schedules frobnicate --env environments/prod.yaml")
