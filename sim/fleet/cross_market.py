"""Cross-market sessions in the simulated fleet: cohorts per (flow, host region, guest region, scenario).

The fleet (`sim.fleet.dynamics`) calls this once per step when the spec has cross-market flows
(`spec.sessions.cross_market`); without flows it is never built and the fleet runs as before.
Like the rest of the fleet it is fluid: a cohort is a count of sessions of one flow (host market h,
guest market g) with h's side in region a and g's in region b, for one scenario; arrays are
F x R x R x S (prod: 16 flows x 13 x 13 x 3, a few thousand numbers per step).

- Arrivals: a flow's offered concurrency is share x mix[s] x offered[h] (what the cross-border LP
  plans, `controller/core/cross_border.py`); its arrivals keep it there, as the market's own do.
  The host market's own (domestic) sessions are the rest: mix x (1 - its flows' shares).
- Slots: a cascaded session (a != b) takes a session slot in BOTH regions (its SFU in each, relayed
  over the backbone); a session with both sides in one region takes one. A cascade is admitted only
  if both ends have room: the share admitted is the smaller of the two regions' admitted shares, and
  the slot the other end took for a refused one is given back (`ghost`).
- End-to-end QoS: host access path (h -> a: `sim.qos` with the region's load and impairments) + the
  backbone path a - b (the fleet's `backbone_qos`, with its impairments; nothing when a = b) + the
  guest's access path (g -> b); RTTs add, losses compound. A cohort breaches when the e2e RTT or
  loss misses its scenario's participant shape SLO (`spec.sessions.shapes`).
- Residency per participant: a host side outside h's allowed regions, or a guest side outside g's,
  is a violation of that participant (counted per market, region and role).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.fleet.guest_placement import BoolArray, CrossMarketFlows, FloatArray, IntArray

ROLES = ("host", "guest")


def e2e_path_qos(
    host_rtt: FloatArray,
    host_loss: FloatArray,
    backbone_rtt: FloatArray,
    backbone_loss: FloatArray,
    guest_rtt: FloatArray,
    guest_loss: FloatArray,
    cascaded: BoolArray,
) -> tuple[FloatArray, FloatArray]:
    """(e2e p95 RTT, e2e loss) of sessions whose host side takes the access path (host_rtt, host_loss), the
    guest side (guest_rtt, guest_loss), and, where `cascaded`, the backbone path between their two regions:
    RTTs add, losses compound, 1 - (1 - host)(1 - backbone)(1 - guest). Arrays broadcast. The fleet's own
    judge of a cross-market session (`CrossMarketCohorts.book_minutes`, `e2e_qos`), and the benchmarks'
    (`bench/cross_border_benchmark.py`), so both judge a session by one rule."""
    rtt = host_rtt + np.where(cascaded, backbone_rtt, 0.0) + guest_rtt
    loss = 1.0 - (1.0 - host_loss) * np.where(cascaded, 1.0 - backbone_loss, 1.0) * (1.0 - guest_loss)
    return np.asarray(rtt, dtype=np.float64), np.asarray(loss, dtype=np.float64)


@dataclass(frozen=True)
class Admission:
    """What one step admitted of the cohorts that had arrivals (K of them, indexed by flow, host and guest region)."""

    flow: IntArray
    host_region: IntArray
    guest_region: IntArray
    routed: FloatArray
    """K x S sessions sent."""
    admitted: FloatArray
    """K x S sessions admitted (both ends had room)."""
    ghost: FloatArray
    """R x S slots a region took for cascades the other end refused: to give back."""
    violations: FloatArray | None
    """Market x region: sessions admitted with a participant outside its market's rules (None: none)."""


class CrossMarketCohorts:
    """The cross-market sessions of the fleet and their books (module doc)."""

    def __init__(self, flows: CrossMarketFlows, allowed: BoolArray) -> None:
        """`allowed`: market x region, the regions each market's jurisdictions allow."""
        self.flows = flows
        self._allowed = allowed
        n_markets, n_regions = allowed.shape
        n_f, n_s = flows.count, flows.mix.shape[1]
        self.active = np.zeros((n_f, n_regions, n_regions, n_s))
        self.offered_track = np.zeros((n_f, n_s))
        self._host_of = np.zeros((n_markets, n_f))
        self._host_of[flows.host, np.arange(n_f)] = 1.0
        self._off_diagonal = ~np.eye(n_regions, dtype=bool)
        self._ones_s = np.ones(n_s)
        # Books (cumulative, per flow unless said).
        self.session_minutes = np.zeros(n_f)
        self.cascaded_minutes = np.zeros(n_f)
        self.e2e_slo_minutes = np.zeros(n_f)
        self.participant_violations = np.zeros((2, n_markets, n_regions))
        """Role (0 host, 1 guest) x market x region: sessions admitted with that participant outside its rules."""

    # ----- demand ------------------------------------------------------------------------------

    def target(self, offered: FloatArray) -> FloatArray:
        """F x S: the flows' offered concurrency for the markets' offered sessions (M)."""
        return self.flows.share[:, None] * self.flows.mix * offered[self.flows.host][:, None]

    def arrivals(self, offered: FloatArray, decay: FloatArray) -> FloatArray:
        """F x S new sessions this step (what keeps each flow at its offered concurrency)."""
        target = self.target(offered)
        carried = self.offered_track * decay[None, :]
        arriving = np.maximum(target - carried, 0.0)
        self.offered_track = carried + arriving
        return arriving

    def by_host(self, per_flow: FloatArray) -> FloatArray:
        """Sum per-flow rows (F x ...) onto their host markets (M x ...)."""
        flat = per_flow.reshape(per_flow.shape[0], -1)
        return np.asarray(self._host_of @ flat, dtype=np.float64).reshape((self._host_of.shape[0], *per_flow.shape[1:]))

    # ----- slots -------------------------------------------------------------------------------

    def slots(self, cohorts: FloatArray) -> FloatArray:
        """R x S session slots `cohorts` (F x R x R x S) take: the host side's region, plus the guest
        side's region when it is another one (a cascade takes a slot on both ends)."""
        pairs = cohorts.sum(axis=0)  # R x R x S
        diagonal = np.diagonal(pairs).T  # R x S: both sides in one region
        return np.asarray(pairs.sum(axis=1) + pairs.sum(axis=0) - diagonal, dtype=np.float64)

    def slots_by_market(self) -> FloatArray:
        """M x R: the slots the active sessions hold, under the market of the participants they carry: the
        host side under the host market; a cascade's other end under the guest market (one SFU per side)."""
        pairs = self.active.sum(axis=3)  # F x R x R
        host_side = self.by_host(pairs.sum(axis=2))
        guest_side = np.zeros_like(host_side)
        np.add.at(guest_side, self.flows.guest, (pairs * self._off_diagonal[None, :, :]).sum(axis=1))
        return np.asarray(host_side + guest_side, dtype=np.float64)

    def admit(self, routed: FloatArray, share: FloatArray) -> Admission:
        """Admit `routed` cohorts (F x R x R x S) given each region's admitted share of this step's slots (0 in
        an outage): a cascade gets the smaller of its two ends' shares. Works on the cohorts with arrivals
        only (a few of the F x R x R). Books the participants' residency violations."""
        n_f, n_r, _, n_s = routed.shape
        flat = routed.reshape(n_f * n_r * n_r, n_s)
        live = np.flatnonzero(flat @ self._ones_s)
        f, a, b = np.unravel_index(live, (n_f, n_r, n_r))
        sessions = flat[live]  # K x S
        both = np.minimum(share[a], share[b])  # a == b: the region's own share
        admitted = sessions * both[:, None]
        self.active.reshape(flat.shape)[live] += admitted
        ghost = np.zeros((n_r, n_s))
        if not (both == 1.0).all():
            np.add.at(ghost, a, sessions * (share[a] - both)[:, None])
            np.add.at(ghost, b, sessions * ((share[b] - both) * (a != b))[:, None])
        per_cohort = admitted @ self._ones_s
        host_out = ~self._allowed[self.flows.host[f], a]
        guest_out = ~self._allowed[self.flows.guest[f], b]
        violations = None
        if (per_cohort * (host_out | guest_out)).any():
            violations = np.zeros_like(self.participant_violations[0])
            np.add.at(self.participant_violations[0], (self.flows.host[f], a), per_cohort * host_out)
            np.add.at(self.participant_violations[1], (self.flows.guest[f], b), per_cohort * guest_out)
            np.add.at(violations, (self.flows.host[f], a), per_cohort * host_out)
            np.add.at(violations, (self.flows.guest[f], b), per_cohort * guest_out)
        return Admission(f, a, b, sessions, admitted, ghost, violations)

    def take(self, keep: FloatArray) -> FloatArray:
        """Sessions leave with the nodes that carried them: `keep` (R x S) is the share of each region's
        sessions left. A cascade dies when either end does; returns the slots (R x S) its surviving end
        still holds, to give back."""
        cascaded = self.active * self._off_diagonal[None, :, :, None]
        keep_host = keep[None, :, None, :]
        keep_guest = keep[None, None, :, :]
        ghost_host = (cascaded * keep_host * (1.0 - keep_guest)).sum(axis=(0, 2))
        ghost_guest = (cascaded * keep_guest * (1.0 - keep_host)).sum(axis=(0, 1))
        factor = np.where(self._off_diagonal[None, :, :, None], keep_host * keep_guest, keep_host)
        self.active *= factor
        return np.asarray(ghost_host + ghost_guest, dtype=np.float64)

    # ----- quality -----------------------------------------------------------------------------

    def e2e_qos(
        self, rtt: FloatArray, loss: FloatArray, backbone_rtt: FloatArray, backbone_loss: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """(F x R x R e2e p95 RTT, F x R x R e2e loss) from the access paths (M x R) and the backbone (R x R)."""
        host, guest = self.flows.host, self.flows.guest
        return e2e_path_qos(
            rtt[host][:, :, None],
            loss[host][:, :, None],
            backbone_rtt[None, :, :],
            backbone_loss[None, :, :],
            rtt[guest][:, None, :],
            loss[guest][:, None, :],
            self._off_diagonal[None, :, :],
        )

    def book_minutes(
        self, minutes: float, rtt: FloatArray, loss: FloatArray, backbone_rtt: FloatArray, backbone_loss: FloatArray
    ) -> float:
        """Accumulate this step's session-minutes, judging each cohort's e2e QoS (as `e2e_qos`, computed only
        for the (flow, host region, guest region) cohorts that hold sessions: a handful of the F x R x R);
        returns the e2e SLO-breaching session-minutes."""
        n_f, n_r = self.active.shape[0], self.active.shape[1]
        flat = self.active.reshape(n_f * n_r * n_r, -1)
        live = np.flatnonzero(flat @ self._ones_s)
        if live.shape[0] == 0:
            return 0.0
        f, a, b = np.unravel_index(live, (n_f, n_r, n_r))
        host, guest = self.flows.host[f], self.flows.guest[f]
        cascaded = a != b
        e2e_rtt, e2e_loss = e2e_path_qos(
            rtt[host, a],
            loss[host, a],
            backbone_rtt[a, b],
            backbone_loss[a, b],
            rtt[guest, b],
            loss[guest, b],
            cascaded,
        )
        sessions = flat[live]  # K x S
        breach = (e2e_rtt[:, None] > self.flows.e2e_rtt_ms) | (e2e_loss[:, None] > self.flows.e2e_loss)
        per_cohort = sessions @ self._ones_s * minutes
        breaching = np.bincount(f, weights=(sessions * breach) @ self._ones_s * minutes, minlength=n_f)
        self.session_minutes += np.bincount(f, weights=per_cohort, minlength=n_f)
        self.cascaded_minutes += np.bincount(f, weights=per_cohort * cascaded, minlength=n_f)
        self.e2e_slo_minutes += breaching
        return float(breaching.sum())
