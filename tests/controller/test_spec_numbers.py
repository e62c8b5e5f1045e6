"""Every number of the EnvironmentSpec is strict, finite and bounded, including fields added later.

Walks the model tree from EnvironmentSpec, so a new int/float/bool field that forgets `strict=True`
(a YAML `true` read as 1) or an upper bound (a typo of 10**18 planned on) fails here.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from controller.spec import EnvironmentSpec

NUMBER_TYPES = (int, float, bool)


def _leaf_types(annotation: Any) -> Iterator[tuple[Any, list[Any]]]:
    """(type, metadata) of every scalar an annotation can hold: list items, dict values, Annotated parts."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *metadata = typing.get_args(annotation)
        for leaf, inner in _leaf_types(base):
            yield leaf, [*metadata, *inner]
    elif origin in (list, tuple, set, frozenset):
        for arg in typing.get_args(annotation):
            yield from _leaf_types(arg)
    elif origin is dict:
        yield from _leaf_types(typing.get_args(annotation)[1])
    elif origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        for arg in typing.get_args(annotation):
            yield from _leaf_types(arg)
    else:
        yield annotation, []


def _numeric_fields(
    model: type[BaseModel], seen: set[type] | None = None
) -> Iterator[tuple[str, Any, type[BaseModel]]]:
    seen = seen if seen is not None else set()
    if model in seen:
        return
    seen.add(model)
    for name, field in model.model_fields.items():
        for leaf, metadata in _leaf_types(field.annotation):
            if isinstance(leaf, type) and issubclass(leaf, BaseModel):
                yield from _numeric_fields(leaf, seen)
            elif leaf in NUMBER_TYPES:
                constraints = [*metadata, *field.metadata]
                annotation = typing.Annotated[leaf, *constraints] if constraints else leaf
                yield f"{model.__name__}.{name}", annotation, model


NUMERIC_FIELDS = list(_numeric_fields(EnvironmentSpec))


def _leaf(annotation: Any) -> Any:
    return typing.get_args(annotation)[0] if typing.get_origin(annotation) is typing.Annotated else annotation


def test_the_walk_finds_the_numbers() -> None:
    names = [name for name, _, _ in NUMERIC_FIELDS]
    assert "RegionSpec.az_count" in names and "FailoverPolicy.stages" in names and "DemandProfile.scenario_mix" in names
    assert len(names) >= 45


@pytest.mark.parametrize(
    ("name", "annotation"), [(n, a) for n, a, _ in NUMERIC_FIELDS], ids=[n for n, _, _ in NUMERIC_FIELDS]
)
def test_every_number_is_strict(name: str, annotation: Any) -> None:
    adapter = TypeAdapter(annotation)
    leaf = _leaf(annotation)
    wrong = ["1", 1.5] if leaf is int else ["1", 1] if leaf is bool else ["1.0", True]
    if leaf is int:
        wrong.append(True)
    for value in wrong:
        with pytest.raises(ValidationError):
            adapter.validate_python(value)


@pytest.mark.parametrize(
    ("name", "annotation", "model"),
    [f for f in NUMERIC_FIELDS if _leaf(f[1]) is not bool],
    ids=[n for n, a, _ in NUMERIC_FIELDS if _leaf(a) is not bool],
)
def test_every_number_is_finite_and_bounded(name: str, annotation: Any, model: type[BaseModel]) -> None:
    # The owning model's config applies (allow_inf_nan=False lives there).
    adapter = TypeAdapter(annotation, config=model.model_config)
    leaf = _leaf(annotation)
    for value in ([math.inf, -math.inf, math.nan] if leaf is float else []) + [10**30, -(10**30)]:
        with pytest.raises(ValidationError):
            adapter.validate_python(float(value) if leaf is float and isinstance(value, int) else value)
