"""The region selector: the per-session steering endpoint the apps' signalling calls before a client connects.

Layout (its own ring, beside `workflows`, `infra` and `sim`; imports only the controller's models):
- `decision.py`: pure. Builds a `SelectionTable` from the EnvironmentSpec and a published steering
  state, and answers one session (`select`): ordered regional media endpoints, or a refusal with
  its reason. Residency is re-checked from the spec itself, whatever the published state says.
- `published_state.py`: reads the published steering state from a file (re-read on change) or an
  HTTP URL, and keeps the last good one when the source goes away or is corrupt (fail-static).
- `metrics.py`: the selector's Prometheus metrics (staleness, answers per region, refusals).
- `http_server.py`: the HTTP service (`edgectl selector serve`).
"""
