"""The simulated edge fleet: the embedded default edgeplane runs against on a laptop and in benchmarks.

`sim.fleet.SimulatedFleet` is a deterministic, seeded, fluid (cohort) model of regions, nodes and
sessions driven by an EnvironmentSpec and a named trace (`sim.traces`). It implements the
`controller.ports.Actuator` Protocol directly and builds FleetSnapshots from its own state;
`sim.http_api` serves it in real time (Prometheus `/metrics` + the actuation API the simulator
actuator adapter calls); `sim.benchmark` runs it in fast-forward against the policies of
`sim.policies`. It may import `controller.*` models, never workflows/infra/edgectl.
"""
