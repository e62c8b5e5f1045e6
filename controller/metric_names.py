"""The metric contract: names and labels that exporters, recording rules and the observer share.

Edge nodes (or the simulated fleet, `sim/`) export the `edge_*` series; `rules/` aggregates them
into region/path recording rules; `controller/adapters/prometheus_observer.py` reads those. The
controller's own metrics are `edgeplane_controller_*`. Change a name here and every side follows.
Labels: `region`, `node`, `market` where they apply; `scenario` for per-scenario series; `peer_region` for
the backbone path between two regions.
"""

from __future__ import annotations

# --- per node (labels: region, node) ---------------------------------------------------------
NODE_READY = "edge_node_ready"  # gauge 1/0: node serves new sessions
NODE_DRAINING = "edge_node_draining"  # gauge 1/0: node takes no new sessions, waits for active ones
NODE_BOOTING = "edge_node_booting"  # gauge 1/0: node requested, not serving yet
NODE_ACTIVE_SESSIONS = "edge_node_active_sessions"  # gauge
NODE_SESSION_CAPACITY = "edge_node_session_capacity"  # gauge: sessions at 100%
NODE_CPU_UTILISATION = "edge_node_cpu_utilisation"  # gauge 0..1

# --- per region (labels: region) -------------------------------------------------------------
REGION_DESIRED_NODES = "edge_region_desired_nodes"  # gauge: node count the region is asked to run
SESSIONS_DROPPED_TOTAL = "edge_sessions_dropped_total"  # counter: sessions cut by node removal

# --- per path (labels: market, region) -------------------------------------------------------
PATH_RTT_MS = "edge_path_rtt_ms"  # gauge: p95 RTT of the market's sessions in the region
PATH_LOSS_RATIO = "edge_path_loss_ratio"  # gauge 0..1
PATH_JITTER_MS = "edge_path_jitter_ms"  # gauge
PATH_ACTIVE_SESSIONS = "edge_path_active_sessions"  # gauge
TRAFFIC_WEIGHT = "edge_traffic_weight"  # gauge: share of the market's new sessions sent to the region
SESSIONS_REJECTED_TOTAL = "edge_sessions_rejected_total"  # counter: refused for lack of capacity
SESSIONS_DEGRADED_TOTAL = "edge_sessions_degraded_total"  # counter: admitted beyond capacity
RESIDENCY_VIOLATIONS_TOTAL = "edge_residency_violations_total"  # counter: placed outside allowed regions

# --- per backbone path between two regions' SFUs (labels: region, peer_region) -------------------
# The cascade of a cross-border session (controller/core/cross_border.py) crosses it; one series per
# unordered pair is enough (the observer and the health model read the worse of both directions).
BACKBONE_RTT_MS = "edge_backbone_rtt_ms"  # gauge: p95 RTT between the two regions' SFUs
BACKBONE_LOSS_RATIO = "edge_backbone_loss_ratio"  # gauge 0..1

# --- the fleet as a whole (no labels) ------------------------------------------------------------
# The fleet's own clock in Unix seconds. A real fleet's exporters report the wall clock; the
# simulated fleet reports its simulated time (which runs `speed` times faster in the live stack).
# The observer dates the snapshot with it, so the decision core plans cooldowns, drain deadlines
# and the diurnal forecast on the clock the fleet actually lives on.
FLEET_CLOCK_SECONDS = "edge_fleet_clock_seconds"

# --- per market (labels: market) -------------------------------------------------------------
MARKET_OFFERED_SESSIONS = "edge_market_offered_sessions"  # gauge: sessions users want (served + refused)

# --- the controller's own (labels: environment, and as noted) --------------------------------
CONTROLLER_TICKS_TOTAL = "edgeplane_controller_ticks_total"
CONTROLLER_DECISIONS_TOTAL = "edgeplane_controller_decisions_total"  # labels: kind
CONTROLLER_ACTIONS_TOTAL = "edgeplane_controller_actions_total"  # labels: action, changed
CONTROLLER_FAILURES_TOTAL = "edgeplane_controller_failures_total"  # labels: stage
CONTROLLER_SNAPSHOT_AGE_SECONDS = "edgeplane_controller_snapshot_age_seconds"
CONTROLLER_FAIL_STATIC = "edgeplane_controller_fail_static"  # gauge 1/0
# gauge, one series per market while unserved (removed once served); labels: market, cause
# (controller.plan.UnservedCause: no_compliant_region, partly_placed, capacity_exhausted)
CONTROLLER_UNSERVED_SESSIONS = "edgeplane_controller_unserved_sessions"
# gauge, one series per (market, region) while the fleet is observed breaking residency there (removed
# once gone); value: the market's sessions seen on the region (0 when only a weight is in force)
CONTROLLER_RESIDENCY_VIOLATION_SESSIONS = "edgeplane_controller_residency_violation_sessions"
# gauge: per market, the largest share by which the weights the fleet reports differ from the commanded
# ones (series present only while they differ by more than the planner's drift tolerance)
CONTROLLER_WEIGHTS_DRIFT = "edgeplane_controller_weights_drift"
# gauge, one series per cross-market pair while some of its sessions are unserved (no region pair both sides'
# rules allow has room or a usable backbone path; removed once served); labels: host, guest (markets)
CONTROLLER_CROSS_BORDER_UNSERVED_SESSIONS = "edgeplane_controller_cross_border_unserved_sessions"
# gauge: share of the planned cross-market sessions cascaded across two regions (0 when none is planned)
CONTROLLER_CROSS_BORDER_CASCADED_RATIO = "edgeplane_controller_cross_border_cascaded_ratio"
# counter: ticks on which such a violation was observed; labels: market, region
CONTROLLER_RESIDENCY_VIOLATIONS_TOTAL = "edgeplane_controller_residency_violations_total"
CONTROLLER_DRILL_ABORTED_TOTAL = "edgeplane_controller_drill_aborted_total"  # labels: region, outcome
# --- the controller's mode and blindness (on-call alerts: rules/edgeplane-alerts.yml) -----------
CONTROLLER_PAUSED = "edgeplane_controller_paused"  # gauge 1/0: paused on purpose (`edgectl controller pause`)
CONTROLLER_RECOMMEND_ONLY = "edgeplane_controller_recommend_only"  # gauge 1/0: plans, acts on nothing
CONTROLLER_BLIND = "edgeplane_controller_blind"  # gauge 1/0: the last observation failed (Prometheus down)
# gauge: Unix time since when the loop cannot act on fresh data (blind or fail-static); 0 while it can
CONTROLLER_FAIL_STATIC_SINCE = "edgeplane_controller_fail_static_since_timestamp_seconds"
CONTROLLER_TICK_SECONDS = "edgeplane_controller_tick_seconds"  # gauge: the loop's period (spec.traffic)
# gauge 1, one series per (market, region) path the market's jurisdictions allow (from the spec):
# SLO alerts judge only these, so a forbidden path's probe numbers never page
CONTROLLER_PATH_ALLOWED = "edgeplane_controller_path_allowed"
# counter: samples the observer dropped as implausible (infinite, beyond physical or spec bounds)
CONTROLLER_IMPLAUSIBLE_SAMPLES_TOTAL = "edgeplane_controller_implausible_samples_total"  # labels: metric

# --- the region selector's own (selector/metrics.py; labels: environment, and as noted) ----------------
SELECTOR_STATE_AGE_SECONDS = "edgeplane_selector_state_age_seconds"  # gauge: since the source last answered well
SELECTOR_SOURCE_UP = "edgeplane_selector_source_up"  # gauge 1/0: the last poll of the source succeeded
SELECTOR_SOURCE_ERRORS_TOTAL = "edgeplane_selector_source_errors_total"  # counter: failed polls (fail-static)
SELECTOR_STATE_REVISION = "edgeplane_selector_state_revision"  # gauge: steering revision being served
SELECTOR_ANSWERS_TOTAL = "edgeplane_selector_answers_total"  # counter; labels: market, region (first endpoint)
SELECTOR_REFUSALS_TOTAL = "edgeplane_selector_refusals_total"  # counter; labels: market, code
# gauge, one series per published weight the selector will not answer (residency, unknown region, bad
# value); labels: market, region, why (outside_jurisdictions: an incident; unknown_region; bad_value)
SELECTOR_IGNORED_WEIGHT = "edgeplane_selector_ignored_weight"
SELECTOR_SERVICE_SECONDS_TOTAL = "edgeplane_selector_service_seconds_total"  # counter: time deciding answers
