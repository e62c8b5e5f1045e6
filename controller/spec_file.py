"""Loads `environments/<env>.yaml` into an EnvironmentSpec, or says precisely what is wrong.

The one typed config path of the product: the CLI, the Pulumi program, the simulator and the
Temporal worker all call `load_environment`. Errors are collected, never thrown one at a time, and
each names the file, the field path and the reason (`local.yaml: regions[1].max_nodes: ...`).
Loading changes nothing on disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from controller.spec import EnvironmentSpec


@dataclass(frozen=True)
class SpecProblem:
    """One thing wrong in an environment file."""

    file: str
    field_path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field_path or '<document>'}: {self.reason}"


class EnvironmentFileError(Exception):
    """An environment file could not be read or is not a valid EnvironmentSpec."""

    def __init__(self, problems: Sequence[SpecProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def format_field_path(loc: Sequence[str | int]) -> str:
    """`("regions", 2, "max_nodes")` -> `regions[2].max_nodes`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def problems_from_validation_error(file: str, error: ValidationError) -> list[SpecProblem]:
    problems: list[SpecProblem] = []
    for detail in error.errors(include_url=False):
        loc = [part for part in detail["loc"] if not _is_union_tag(part)]
        reason = detail["msg"]
        if detail["type"] == "extra_forbidden":
            reason = "unknown field (not part of the EnvironmentSpec; check the spelling)"
        elif detail["type"] == "missing":
            reason = "required field is missing"
        problems.append(SpecProblem(file=file, field_path=format_field_path(loc), reason=reason))
    return problems


def _is_union_tag(part: str | int) -> bool:
    # pydantic inserts validator names ("function-after[...]") and "[key]" (a bad mapping key) into
    # locs; they are not fields, and the key itself is already the previous part of the path.
    return isinstance(part, str) and (part.startswith("function-") or part == "[key]")


def parse_environment(data: Any, file: str = "<memory>") -> EnvironmentSpec:
    """Validate already-parsed YAML/JSON data; raise EnvironmentFileError with every problem."""
    if not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        raise EnvironmentFileError(
            [SpecProblem(file, "", f"expected a mapping of EnvironmentSpec fields, got {kind}")]
        )
    try:
        return EnvironmentSpec.model_validate(data)
    except ValidationError as error:
        raise EnvironmentFileError(problems_from_validation_error(file, error)) from None
    except (TypeError, ValueError, RecursionError) as error:  # defensive: never a traceback
        raise EnvironmentFileError([SpecProblem(file, "", f"invalid content: {error}")]) from None


def load_environment(path: str | Path) -> EnvironmentSpec:
    """Read and validate one environment file."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EnvironmentFileError([SpecProblem(file, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise EnvironmentFileError([SpecProblem(file, "", f"cannot read: {error}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        where = ""
        mark = getattr(error, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(error, "problem", None) or str(error)
        raise EnvironmentFileError([SpecProblem(file, "", f"not valid YAML{where}: {problem}")]) from None
    return parse_environment(data, file)
