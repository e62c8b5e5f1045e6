"""Errors the simulated fleet raises for calls that name unknown things or ask the impossible.

`sim.http_api` maps them to 404 and 422 answers; `field` names the request field at fault.
"""

from __future__ import annotations


class UnknownTargetError(LookupError):
    """A region, node, market or impairment named in a call does not exist (HTTP 404)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class InvalidActuationError(ValueError):
    """The call names real things but asks for something impossible (HTTP 422)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field
