"""Many sessions in one request: `GET /v1/select/batch`, for callers that place sessions in bulk.

The simulated fleet of the local stack (`sim/selector_placement.py`) places every new session by
asking the selector; at the demo's acceleration that is thousands of sessions per wall second, more
than one HTTP round trip each is worth. A batch names groups of sessions; each session still gets
its own decision, by the very function a single `/v1/select` answer uses (`selector.decision.select`:
the same residency re-check, admission and stickiness), against one table for the whole batch, and
each one is counted in the selector's per-region metrics like a single answer.

Query: `groups=MARKET:SCENARIO:FIRST:COUNT[,MARKET:SCENARIO:FIRST:COUNT...]` and `session_prefix=P`.
Group g's sessions have the keys `P` + `MARKET:SCENARIO:i` for i in FIRST..FIRST+COUNT-1, so a
caller that numbers its sessions gets the same answer for the same session as `/v1/select?
session=<that key>` would give (stickiness holds across both routes). At most `MAX_BATCH_GROUPS`
groups and `MAX_BATCH_SESSIONS` sessions per request: a request's decisions run on the event loop.

Answer (200): `{"revision", "state_age_seconds", "groups": [{"market", "scenario", "answers":
{region: n}, "refusals": {code: n}}]}`, the groups in request order. Bad input is 400 with
`{"error"}` naming the field; nothing is counted then.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from selector.decision import Answer, Refusal, RefusalCode, SelectionTable, select

MAX_BATCH_GROUPS = 64
"""A group is at most ~120 characters of query: 64 of them stay within the 8 KiB request head."""
MAX_BATCH_SESSIONS = 20_000
MAX_PREFIX_CHARS = 64
_GROUP = re.compile(r"([A-Za-z0-9_-]{1,32}):([A-Za-z0-9_-]{1,64}):([0-9]{1,15}):([0-9]{1,6})")


class BatchError(ValueError):
    """The batch query is malformed; the message names the field and why."""


@dataclass(frozen=True, slots=True)
class BatchGroup:
    market: str
    scenario: str
    first: int
    count: int


@dataclass(frozen=True, slots=True)
class GroupOutcome:
    market: str
    scenario: str
    answers: dict[str, int]
    refusals: dict[str, int]


def parse_batch(params: dict[str, str]) -> tuple[str, list[BatchGroup]]:
    """(session prefix, groups) from the query parameters; BatchError when they are not a batch."""
    prefix = params.get("session_prefix", "")
    if len(prefix) > MAX_PREFIX_CHARS:
        raise BatchError(f"session_prefix: longer than {MAX_PREFIX_CHARS} characters")
    raw = params.get("groups", "")
    if not raw:
        raise BatchError("groups: give MARKET:SCENARIO:FIRST:COUNT[,...]")
    items = raw.split(",")
    if len(items) > MAX_BATCH_GROUPS:
        raise BatchError(f"groups: more than {MAX_BATCH_GROUPS} groups")
    groups = []
    for position, item in enumerate(items):
        match = _GROUP.fullmatch(item)
        if match is None:
            raise BatchError(f"groups[{position}]: {item[:80]!r} is not MARKET:SCENARIO:FIRST:COUNT")
        market, scenario, first, count = match.groups()
        groups.append(BatchGroup(market.upper(), scenario, int(first), int(count)))
    total = sum(group.count for group in groups)
    if total > MAX_BATCH_SESSIONS:
        raise BatchError(f"groups: {total} sessions, at most {MAX_BATCH_SESSIONS} per request")
    return prefix, groups


def decide_batch(
    table: SelectionTable | None,
    prefix: str,
    groups: list[BatchGroup],
    count: Callable[[Answer | Refusal, float], None],
    timer: Callable[[], float],
) -> list[GroupOutcome]:
    """Every session of every group decided one by one, and each outcome passed to `count` with
    its own decision time (as the single route does)."""
    outcomes = []
    for group in groups:
        answers: Counter[str] = Counter()
        refusals: Counter[str] = Counter()
        stem = f"{prefix}{group.market}:{group.scenario}:"
        for index in range(group.first, group.first + group.count):
            started = timer()
            outcome: Answer | Refusal
            if table is None:
                outcome = Refusal(group.market, RefusalCode.NO_STEERING_STATE, "no steering state loaded yet")
            else:
                outcome = select(table, group.market, group.scenario, f"{stem}{index}".encode())
            count(outcome, timer() - started)
            if isinstance(outcome, Answer):
                answers[outcome.region] += 1
            else:
                refusals[outcome.code.value] += 1
        outcomes.append(GroupOutcome(group.market, group.scenario, dict(answers), dict(refusals)))
    return outcomes
