"""Loads `environments/<env>.yaml` into an EnvironmentSpec, or says precisely what is wrong.

The one typed config path of the product: the CLI, the Pulumi program, the simulator and the
Temporal worker all call `load_environment`. Errors are collected, never thrown one at a time, and
each names the file, the field path and the reason (`local.yaml: regions[1].max_nodes: ...`).
Loading changes nothing on disk.

The YAML is read with libyaml's C loader when it is installed (a 5 MB file: ~25 s with the
pure-Python loader, a few seconds with the C one) in two steps: compose the node tree, check it
(`_node_problems`: repeated keys, which every YAML loader silently resolves to the last value;
nesting and integer literals far beyond any environment), and only then build Python objects.
libyaml itself refuses nesting deeper than 1000 levels; the pure-Python fallback would recurse, so
a RecursionError is reported like any other problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from controller.spec import EnvironmentSpec

YAML_LOADER: Final[type[yaml.SafeLoader]] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when the bindings are installed (they are, with the product's PyYAML wheels)."""

MAX_NESTING: Final = 32
"""Deepest nesting accepted; an environment file needs 5 (markets[0].demand.scenario_mix.live_show)."""

MAX_INTEGER_DIGITS: Final = 100
"""Longest integer literal read; every integer of the spec is below 10**10 and Python refuses to read
more than 4300 digits at all."""

_INT_TAG: Final = "tag:yaml.org,2002:int"
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class SpecProblem:
    """One thing wrong in an environment file."""

    file: str
    field_path: str
    reason: str

    def __str__(self) -> str:
        # One line per problem, always: scripts split the output on newlines (a quoted YAML key or a
        # library's message can carry a newline or a control character).
        field_path = _printable(self.field_path) or "<document>"
        return f"{self.file}: {field_path}: {_printable(' '.join(self.reason.split()))}"


def _printable(text: str) -> str:
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


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
        raise EnvironmentFileError([SpecProblem(file, "", f"expected a mapping of EnvironmentSpec fields, got {kind}")])
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
    return parse_environment(read_yaml(text, file), file)


def read_yaml(text: str, file: str = "<memory>") -> Any:
    """One YAML document as Python data, or EnvironmentFileError; repeated keys are errors."""
    loader = YAML_LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        problems = _node_problems(node, file)
        if problems:
            raise EnvironmentFileError(problems)
        return loader.construct_document(node)
    except yaml.YAMLError as error:
        raise EnvironmentFileError([SpecProblem(file, "", _describe_yaml_error(error))]) from None
    except RecursionError:  # only the pure-Python loader recurses; libyaml stops at 1000 levels
        raise EnvironmentFileError([SpecProblem(file, "", "not valid YAML: nested too deeply")]) from None
    except (ValueError, TypeError, OverflowError) as error:  # defensive: a scalar no constructor can build
        raise EnvironmentFileError([SpecProblem(file, "", f"not valid YAML: {error}")]) from None
    finally:
        loader.dispose()


def _describe_yaml_error(error: yaml.YAMLError) -> str:
    if isinstance(error, yaml.reader.ReaderError):  # its str() spans lines and names "<unicode string>"
        character = error.character if isinstance(error.character, int) else ord(error.character[:1] or b"\0")
        return f"not valid YAML: character #x{character:04x} at offset {error.position}: {error.reason}"
    where = ""
    mark = getattr(error, "problem_mark", None)
    if mark is not None:
        where = f" at line {mark.line + 1}, column {mark.column + 1}"
    problem = getattr(error, "problem", None) or str(error)
    return f"not valid YAML{where}: {problem}"


def _node_problems(root: Node, file: str) -> list[SpecProblem]:
    """Repeated keys, excessive nesting and giant integers in a composed YAML tree, in file order.

    Iterative, and each collection is visited once: an alias is the same node object as its anchor,
    so a document that expands exponentially through aliases is still checked in linear time. Hot on
    large files (every node passes here), so field paths are kept as cheap linked pairs
    `(parent, key)` and flattened only for a problem.
    """
    found: list[tuple[int, int, SpecProblem]] = []

    def report(node: Node, loc: _Loc, reason: str) -> None:
        mark = node.start_mark
        found.append((mark.line, mark.column, SpecProblem(file, format_field_path(_flatten(loc)), reason)))

    def check_scalar(node: ScalarNode, loc: _Loc) -> None:
        if node.tag == _INT_TAG and len(node.value) > MAX_INTEGER_DIGITS:
            reason = f"integer of {len(node.value)} characters at line {node.start_mark.line + 1} is beyond any range"
            report(node, loc, f"{reason} of the spec")

    visited: set[int] = set()
    stack: list[tuple[Node, _Loc, int]] = [(root, None, 0)]
    while stack:
        node, loc, depth = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if depth > MAX_NESTING:
            line = node.start_mark.line + 1
            report(node, loc, f"nested deeper than {MAX_NESTING} levels at line {line}: no environment field is")
            continue
        if isinstance(node, MappingNode):
            first_seen: dict[tuple[str, str], Node] = {}
            for key_node, value_node in node.value:
                child: _Loc = loc
                if key_node.tag != _MERGE_TAG and isinstance(key_node, ScalarNode):  # `<<: *defaults` merges
                    child = (loc, key_node.value)
                    key = (key_node.tag, key_node.value)
                    if key in first_seen:
                        report(key_node, child, _duplicate_key(key_node, first_seen[key]))
                    else:
                        first_seen[key] = key_node
                if value_node.__class__ is ScalarNode:
                    check_scalar(value_node, child)
                else:
                    stack.append((value_node, child, depth + 1))
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                if item.__class__ is ScalarNode:
                    check_scalar(item, (loc, index))
                else:
                    stack.append((item, (loc, index), depth + 1))
        elif isinstance(node, ScalarNode):
            check_scalar(node, loc)
    return [problem for _, _, problem in sorted(found, key=lambda item: item[:2])]


_Loc = tuple[Any, str | int] | None
"""A field path as nested pairs, `((None, "regions"), 0)`: built per node without copying."""


def _flatten(loc: _Loc) -> list[str | int]:
    parts: list[str | int] = []
    while loc is not None:
        loc, part = loc
        parts.append(part)
    return parts[::-1]


def _duplicate_key(again: Node, first: Node) -> str:
    line, first_line = again.start_mark.line + 1, first.start_mark.line + 1
    if line == first_line:  # a flow mapping: the columns tell them apart
        column, first_column = again.start_mark.column + 1, first.start_mark.column + 1
        where = f"at line {line}, column {column} (first at line {first_line}, column {first_column})"
    else:
        where = f"at line {line} (first at line {first_line})"
    return f"duplicate key {again.value!r} {where}"
