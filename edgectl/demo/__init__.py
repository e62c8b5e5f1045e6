"""`make demo` / `edgectl demo`: the scripted run on the local stack and its report, one module per seam.

- `scenario`      the phases (warm-up, flash sale, impairment, drill) driven against the running stack;
- `fleet_api`     the simulated fleet's HTTP API as the scenario drives and reads it;
- `recording`     what is sampled while it runs (fleet samples, events, weight changes);
- `measurements`  the figures computed from a recording (fleet seconds, the goals they are judged on);
- `report` / `summary`  the Markdown report and its summary rows;
- `cross_border`  the cross-border 1v1 between ID and DE through a backbone impairment.
"""
