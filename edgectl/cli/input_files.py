"""Reading the CLI's JSON inputs (snapshots, plans) into their models, or saying exactly what is wrong.

Used by `edgectl plan` and `edgectl verify`. Every problem is one line `FILE: field.path: reason`,
raised as `InputFileError`; the root command (`edgectl/cli/main.py`) prints those lines and exits 1
for any command, so no bad file ever ends in a traceback.

JSON is parsed by pydantic's own parser (`model_validate_json`), not the standard library's: it
bounds nesting depth and number size itself and reports both as ordinary validation errors, where
`json.loads` raises RecursionError on deep nesting and ValueError past Python's 4,300-digit limit
on integer strings.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from controller.spec_file import format_field_path

Model = TypeVar("Model", bound=BaseModel)

MAX_INPUT_BYTES = 64 * 1024 * 1024
"""A snapshot of a 30-region, 250-market fleet is a few MB; anything this big is not one."""


class InputFileError(Exception):
    """A file is unreadable or does not validate; `lines` are `FILE: field.path: reason`."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


_JSON_POSITION = re.compile(r"^(?P<what>.*) at line (?P<line>\d+) column (?P<column>\d+)$")


def _json_reason(message: str) -> str:
    """pydantic's `what at line L column C` as `not valid JSON at line L, column C: what`."""
    match = _JSON_POSITION.match(message)
    if match is None:
        return f"not valid JSON: {message}"
    return f"not valid JSON at line {match['line']}, column {match['column']}: {match['what']}"


def validation_lines(file: str, error: ValidationError, model: type[BaseModel]) -> list[str]:
    """One `FILE: field.path: reason` line per error of `error`."""
    lines = []
    for detail in error.errors(include_url=False):
        reason = detail["msg"]
        if detail["type"] == "extra_forbidden":
            reason = f"unknown field (not part of {model.__name__})"
        elif detail["type"] == "missing":
            reason = "required field is missing"
        elif detail["type"] == "model_type" and not detail["loc"]:
            reason = f"expected a JSON object ({model.__name__})"
        elif detail["type"] == "json_invalid":
            reason = _json_reason(reason.removeprefix("Invalid JSON: "))
        lines.append(f"{file}: {format_field_path(detail['loc']) or '<document>'}: {reason}")
    return lines


def load_model_file(path: Path, model: type[Model], context: dict[str, Any] | None = None) -> Model:
    """Read one JSON file into `model` (validated with `context`), or raise InputFileError."""
    file = str(path)
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_INPUT_BYTES + 1)
    except FileNotFoundError:
        raise InputFileError([f"{file}: <document>: file not found"]) from None
    except OSError as error:
        raise InputFileError([f"{file}: <document>: cannot read: {error.strerror or error}"]) from None
    if len(data) > MAX_INPUT_BYTES:
        raise InputFileError([f"{file}: <document>: larger than {MAX_INPUT_BYTES // (1024 * 1024)} MB"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputFileError([f"{file}: <document>: not UTF-8 text (byte {error.start}: {error.reason})"]) from None
    try:
        return model.model_validate_json(text, context=context)
    except ValidationError as error:
        raise InputFileError(validation_lines(file, error, model)) from None
