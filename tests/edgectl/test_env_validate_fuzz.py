"""Fuzz `edgectl env validate` with broken copies of the real environment files.

Hypothesis mutates `environments/*.yaml` (dropped, repeated and retyped keys, booleans, huge,
negative, NaN and infinite numbers, deep nesting, random and non-UTF-8 bytes, truncation) and runs
each result through the real CLI entry point. Whatever the bytes, the command exits 0 with an `ok`
line or 1 with only `FILE: field.path: reason` lines, and never shows a traceback.
"""

from __future__ import annotations

import copy
import math
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from edgectl.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENT_FILES = sorted((ROOT / "environments").glob("*.yaml"))
TEXTS = {path.name: path.read_text(encoding="utf-8") for path in ENVIRONMENT_FILES}
DOCS = {name: yaml.safe_load(text) for name, text in TEXTS.items()}


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, (*prefix, index)))
    return found


PATHS = {name: _paths(doc) for name, doc in DOCS.items()}

bad_values = st.one_of(
    st.booleans(),
    st.none(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([-1, 0, 2**63, 2**64 - 1, 10**400, -(10**4000)]),  # yaml.safe_dump writes up to 4300 digits
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -0.0]),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers(), max_size=2),
)


@st.composite
def broken_environment_files(draw: st.DrawFn) -> bytes:
    name = draw(st.sampled_from(sorted(DOCS)))
    doc = copy.deepcopy(DOCS[name])
    text = TEXTS[name]
    changes = draw(st.integers(0, 3))
    for _ in range(changes):
        path = draw(st.sampled_from(PATHS[name]))
        operation = draw(st.sampled_from(["set", "drop", "repeat_item"]))
        try:
            parent: Any = doc
            for part in path[:-1]:
                parent = parent[part]
            last = path[-1]
            if operation == "set":
                parent[last] = draw(bad_values)
            elif operation == "drop":
                del parent[last]
            elif isinstance(parent, list):
                parent.append(copy.deepcopy(parent[last]))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed or retyped a parent
    if changes:
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    data = text.encode("utf-8")

    lines = data.splitlines(keepends=True)
    at = draw(st.integers(0, len(data)))
    match draw(st.sampled_from(["none", "repeat_line", "deep_nesting", "bytes", "non_utf8", "truncate"])):
        case "repeat_line":  # a repeated key (or list item) in the text itself
            index = draw(st.integers(0, len(lines) - 1))
            data = b"".join([*lines[: index + 1], lines[index], *lines[index + 1 :]])
        case "deep_nesting":
            depth = draw(st.sampled_from([33, 200, 999, 1001, 50_000]))
            data += b"deep: " + b"[" * depth + b"]" * depth + b"\n"
        case "bytes":
            data = data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
        case "non_utf8":
            data = data[:at] + b"\xff\xfe\xc0" + data[at:]
        case "truncate":
            data = data[:at]
    return data


WORKDIR = Path(tempfile.mkdtemp(prefix="env-validate-fuzz-"))


@settings(
    max_examples=80,
    deadline=None,  # a busy 2-core machine: bound the run by examples, not per-example time
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(broken_environment_files())
def test_env_validate_answers_every_file_with_ok_or_located_problems(data: bytes) -> None:
    path = WORKDIR / "env.yaml"
    path.write_bytes(data)
    result = CliRunner().invoke(app, ["env", "validate", str(path)])

    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    assert result.exit_code in (0, 1)
    if result.exit_code == 0:
        assert result.stdout.startswith(f"{path}: ok (") and not result.stderr
    else:
        lines = result.stderr.splitlines()
        assert lines, result.stdout
        for line in lines:
            assert line.startswith(f"{path}: "), line
            assert len(line.split(": ", 2)) == 3, line  # FILE: field.path: reason


def test_the_unmutated_files_pass_through_the_same_harness() -> None:
    # Guard: the fuzz harness itself accepts what is valid (exit 0), so its exit-1 cases mean something.
    for path in ENVIRONMENT_FILES:
        result = CliRunner().invoke(app, ["env", "validate", str(path)])
        assert result.exit_code == 0, result.stderr
