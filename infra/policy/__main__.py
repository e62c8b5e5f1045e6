"""Serves the edgeplane policy pack to the Pulumi engine (`pulumi preview --policy-pack infra/policy`).

Runs as its own process with `infra/policy` as the working directory; the repository root is put
on the import path so the pack uses the same `infra` and `controller` code the program uses.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pulumi_policy import EnforcementLevel, PolicyPack

from infra.policy.pack import PACK_NAME, POLICIES

PolicyPack(name=PACK_NAME, policies=POLICIES, enforcement_level=EnforcementLevel.MANDATORY)
