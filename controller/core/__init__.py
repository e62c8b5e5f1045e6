"""The pure decision core: health, allocation, scaling and guardrails over typed snapshots.

No I/O, no clocks, no randomness: every function takes a FleetSnapshot, the EnvironmentSpec, the
previous Plan and an explicit `now`, and returns values. import-linter forbids this package from
importing temporalio, kubernetes, prometheus clients, pulumi or any adapter.
"""
