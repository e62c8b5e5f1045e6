"""Exit codes of `edgectl`, one per class of failure, so scripts can branch on them.

Documented in the README; every command uses these names, never bare numbers.
"""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    INVALID_INPUT = 1  # a file or argument is wrong: the message names file, field and reason
    USAGE = 2  # unknown command or option (typer/click's own code)
    REFUSED = 3  # the request was understood and refused (residency, headroom, conflict)
    UNAVAILABLE = 4  # a server (Temporal, Prometheus, simulator) could not be reached
    FAILED = 5  # the work ran and failed or was aborted (failover rolled back, drill stopped)
