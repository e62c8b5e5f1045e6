"""Reading how a failover or drill ended, from a client: the report, whichever way the run closed.

A failover that aborted, rolled back or timed out on approval, and a drill that stopped, fail their
Temporal run on purpose (so the UI and `temporal workflow list` show them as FAILED, not COMPLETED)
with a typed ApplicationError whose details are the report. `ended_report` returns that report as
if it were the result; any other failure is raised as is. Used by the CLI and the tests.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

from workflows.drill import DRILL_STOPPED
from workflows.failover import OUTCOME_ERROR_TYPES

ENDED_ON_PURPOSE = frozenset({*OUTCOME_ERROR_TYPES.values(), DRILL_STOPPED})
"""Error types of runs that ended as designed but not COMPLETED (their details are the report)."""

_Report = TypeVar("_Report", bound=BaseModel)


def report_from_failure(error: WorkflowFailureError, result_type: type[_Report]) -> _Report | None:
    """The report a run that ended on purpose carries, or None for a real failure."""
    cause = error.cause
    if isinstance(cause, ApplicationError) and cause.type in ENDED_ON_PURPOSE and cause.details:
        return result_type.model_validate(cause.details[0])
    return None


async def ended_report(handle: WorkflowHandle[Any, Any], result_type: type[_Report]) -> _Report:
    try:
        return result_type.model_validate(await handle.result())
    except WorkflowFailureError as error:
        report = report_from_failure(error, result_type)
        if report is None:
            raise
        return report
