"""Human and machine output for every command: rich text by default, JSON with `--json`."""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import BaseModel
from rich.console import Console

console = Console()
error_console = Console(stderr=True)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2, sort_keys=False, default=str) + "\n")


def fail(message: str) -> None:
    """One line to stderr, verbatim: never wrapped or marked up, so scripts can parse it."""
    sys.stderr.write(message + "\n")


def say(message: str) -> None:
    """One plain line to stdout, verbatim (no wrapping at the terminal width)."""
    sys.stdout.write(message + "\n")
