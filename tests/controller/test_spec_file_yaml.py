"""The YAML layer of `load_environment`: what the text itself can get wrong before the spec model sees it.

Repeated keys (the YAML loader would silently keep the last), nesting and integer literals no
environment has, documents that expand on aliases, and a large file that must load about as fast
as libyaml reads it.
Each case is a real file on disk, and each error reads `FILE: field.path: reason`.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from controller import spec_file
from controller.spec_file import EnvironmentFileError, load_environment

LOCAL = Path(__file__).resolve().parents[2] / "environments" / "local.yaml"
LOCAL_TEXT = LOCAL.read_text(encoding="utf-8")


def problems_of(tmp_path: Path, text: str) -> tuple[Path, list[str]]:
    path = tmp_path / "env.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(EnvironmentFileError) as caught:
        load_environment(path)
    return path, [str(p) for p in caught.value.problems]


def line_of(text: str, fragment: str, last: bool = False) -> int:
    return text[: (text.rindex if last else text.index)(fragment)].count("\n") + 1


def test_a_repeated_key_names_the_key_and_both_lines(tmp_path: Path) -> None:
    # The first region written as a block mapping, max_nodes given twice (40 then 4000).
    first_region = LOCAL_TEXT.index("  - {name: fra")
    end = LOCAL_TEXT.index("\n  - {name: dub")
    block = (
        "  - name: fra\n    cloud_region: eu-central-1\n    jurisdiction: eu\n    location: {lat: 50.11, lon: 8.68}\n"
        "    node_instance_type: c6gn.xlarge\n    sessions_per_node: 100\n    min_nodes: 2\n    max_nodes: 40\n"
        "    az_count: 2\n    node_boot_seconds: 120\n    max_nodes: 4000"
    )
    text = LOCAL_TEXT[:first_region] + block + LOCAL_TEXT[end:]
    path, problems = problems_of(tmp_path, text)
    first, second = line_of(text, "max_nodes: 40\n"), line_of(text, "max_nodes: 4000")
    assert problems == [
        f"{path}: regions[0].max_nodes: duplicate key 'max_nodes' at line {second} (first at line {first})"
    ]


def test_a_repeated_key_in_a_flow_mapping_names_the_columns_too(tmp_path: Path) -> None:
    text = LOCAL_TEXT.replace("max_nodes: 40, az_count: 2", "max_nodes: 40, max_nodes: 4000, az_count: 2", 1)
    path, problems = problems_of(tmp_path, text)
    line = line_of(text, "max_nodes: 4000")
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}: regions[0].max_nodes: duplicate key 'max_nodes' at line {line}, column ")
    assert f"(first at line {line}, column " in problems[0]


def test_a_second_regions_block_is_a_duplicate_key_not_an_unrelated_error(tmp_path: Path) -> None:
    text = LOCAL_TEXT + "regions:\n  - {name: lon}\n"
    path, problems = problems_of(tmp_path, text)
    assert problems == [
        f"{path}: regions: duplicate key 'regions' at line {line_of(text, 'regions:', last=True)} "
        f"(first at line {line_of(text, 'regions:')})"
    ]


def test_every_repeated_key_is_reported_in_file_order(tmp_path: Path) -> None:
    text = LOCAL_TEXT + "name: again\nscaling: {target_utilisation: 0.5}\n"
    _, problems = problems_of(tmp_path, text)
    assert [p.split(": ")[1] for p in problems] == ["name", "scaling"]


@pytest.mark.parametrize("depth", [40, 999, 100_000])
def test_deep_nesting_is_a_clear_error(tmp_path: Path, depth: int) -> None:
    text = LOCAL_TEXT.replace("description: ", "description: " + "[" * depth + "]" * depth + " #", 1)
    path, problems = problems_of(tmp_path, text)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}: ")
    assert "nest" in problems[0]


@pytest.mark.parametrize("digits", [40, 5000, 100_000])
def test_a_huge_integer_literal_is_a_clear_error(tmp_path: Path, digits: int) -> None:
    text = LOCAL_TEXT.replace("max_nodes: 40,", f"max_nodes: {'9' * digits},", 1)
    path, problems = problems_of(tmp_path, text)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}: regions[0].max_nodes: ")


def test_aliases_are_expanded_once_not_exponentially(tmp_path: Path) -> None:
    # A "billion laughs" document: nine levels of nine aliases each.
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 10):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    started = time.perf_counter()
    path, problems = problems_of(tmp_path, "\n".join(lines) + "\n")
    assert time.perf_counter() - started < 10
    assert any(p.startswith(f"{path}: a0: unknown field") for p in problems)


def test_the_c_loader_is_used_when_available() -> None:
    assert spec_file.YAML_LOADER is getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    assert hasattr(yaml, "CSafeLoader"), "libyaml bindings are expected in the product's environment"


def test_loading_costs_about_what_the_c_loader_alone_costs(tmp_path: Path) -> None:
    # 20k measured latencies (valid entries) make a 1 MB file. The pure-Python loader is 3-4x slower
    # than libyaml's; the key check on the composed tree must add little on top of libyaml's own load.
    # Relative to the same machine's C load, so a busy machine slows both sides alike (best of two).
    entry = "    - {market: DE, region: fra, rtt_ms: 12.5}\n"
    measured = "latency:\n  measured:\n" + entry * (1_000_000 // len(entry))
    path = tmp_path / "big.yaml"
    path.write_text(LOCAL_TEXT + measured, encoding="utf-8")
    text = path.read_text(encoding="utf-8")
    c_load, ours = [], []
    for _ in range(2):
        started = time.perf_counter()
        yaml.load(text, Loader=yaml.CSafeLoader)
        c_load.append(time.perf_counter() - started)
        started = time.perf_counter()
        spec = load_environment(path)
        ours.append(time.perf_counter() - started)
    assert len(spec.latency.measured) == 1_000_000 // len(entry)
    assert min(ours) < 1.6 * min(c_load) + 0.5, (ours, c_load)


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"name: local\n\xff\xfe\n", "cannot read"), (b"name: \x00\n", "not valid YAML"),
     (b"---\nname: a\n---\nname: b\n", "not valid YAML")],
    ids=["non-utf8", "nul-byte", "two-documents"],
)  # fmt: skip
def test_bytes_that_are_not_one_yaml_document(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "env.yaml"
    path.write_bytes(content)
    with pytest.raises(EnvironmentFileError) as caught:
        load_environment(path)
    assert str(caught.value).startswith(f"{path}: <document>: {reason}")


def test_every_problem_is_one_printable_line(tmp_path: Path) -> None:
    # Found by the env validate fuzz test: a NUL byte gave a two-line message ("in <unicode string>").
    _, problems = problems_of(tmp_path, "\x00" + LOCAL_TEXT)
    assert len(problems) == 1 and "\n" not in problems[0] and "#x0000" in problems[0]
    # A quoted key may hold a newline or a control character: the field path escapes it.
    _, problems = problems_of(tmp_path, LOCAL_TEXT + '"bad\\nkey\\u0007": 1\n')
    assert any(p.split(": ")[1] == "bad\\nkey\\x07" for p in problems), problems
    assert all("\n" not in p for p in problems)
