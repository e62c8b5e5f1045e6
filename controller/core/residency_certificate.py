"""The residency certificate made checkable: sealed by the planner, re-derived by `edgectl verify`.

`guardrails.residency_certificate` proves, per market, that the regions given weight lie within the
regions its jurisdictions allow. On its own that restates the weights: anyone can edit a plan file
and its proofs together. The seal (`controller.plan.ResidencySeal`) binds the proofs to
- the spec they were derived from (`spec_content_hash`: sha256 of the spec's canonical JSON),
- the plan they belong to (`plan_content_id`: the plan id is a hash of the plan's content),
- the weights, through a digest over all of them,
- and, when the plan has cross-market sessions, the per-participant cross-border certificate
  (`Plan.cross_border.certificate`: each side of each market pair against its own market's rules),
  which is part of the plan's residency certificate,
and its `compliant` is derived from the checks, never asserted. `verify_residency` re-derives all
of it from the spec alone and lists every mismatch; `edgectl verify` and `edgectl plan --previous`
call it. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json

from controller.core.cross_border import certify_participants
from controller.core.guardrails import allowed_regions_from_rules, residency_certificate
from controller.cross_border_plan import CrossBorderPlan
from controller.plan import Plan, ResidencyProof, ResidencySeal
from controller.spec import EnvironmentSpec


def spec_content_hash(spec: EnvironmentSpec) -> str:
    """sha256 of the spec's canonical JSON (cached per spec object: the planner calls it each tick)."""
    cached = _HASH_CACHE.get(id(spec))
    if cached is not None and cached[0] is spec:
        return cached[1]
    digest = hashlib.sha256(spec.model_dump_json().encode()).hexdigest()
    if len(_HASH_CACHE) >= 8:
        _HASH_CACHE.pop(next(iter(_HASH_CACHE)))
    _HASH_CACHE[id(spec)] = (spec, digest)
    return digest


_HASH_CACHE: dict[int, tuple[EnvironmentSpec, str]] = {}


def plan_content_id(plan: Plan) -> str:
    """The plan id: environment, snapshot time and a hash of everything but the id and the seal.

    The cross-border section (placements, reasons, proofs; its solve time is 0 in a plan) is content: a
    sick backbone link that moves a pair gives another id. Left out when absent, so the ids of plans
    without cross-market flows (and of plans made before the section existed) are as they were."""
    excluded = {"plan_id", "residency_seal"} | ({"cross_border"} if plan.cross_border is None else set())
    content = plan.model_dump_json(exclude=excluded)
    digest = hashlib.sha256(content.encode()).hexdigest()[:16]
    return f"{plan.environment}-{plan.snapshot_taken_at.strftime('%Y%m%dT%H%M%S')}-{digest}"


def cross_border_compliant(spec: EnvironmentSpec, cross_border: CrossBorderPlan | None) -> bool:
    """Derived: the stated per-participant proofs are the ones the spec gives for the placements (one per
    side of every pair, in order), and each is compliant. True without flows. The same derivation as
    `certify_participants` on plain tuples: the seal is made every tick, over up to thousands of proofs."""
    if cross_border is None:
        return True
    allowed = allowed_regions_from_rules(spec)
    expected = []
    for pair in cross_border.pairs:
        used = [p for p in pair.placements if p.sessions > 0.0]
        for market, role, counterpart, regions in (
            (pair.host, "host", pair.guest, sorted({p.host_region for p in used})),
            (pair.guest, "guest", pair.host, sorted({p.guest_region for p in used})),
        ):
            rules = allowed.get(market, frozenset())
            expected.append((market, role, counterpart, regions, sorted(rules), set(regions) <= rules))
    stated = [
        (p.market, p.role, p.counterpart, p.regions, p.allowed_regions, p.compliant) for p in cross_border.certificate
    ]
    return stated == expected and all(proof[-1] for proof in expected)


def certificate_compliant(
    spec: EnvironmentSpec,
    weights: dict[str, dict[str, float]],
    proofs: list[ResidencyProof],
    cross_border: CrossBorderPlan | None = None,
) -> bool:
    """Derived, never asserted: one proof per market of the spec, each compliant, no weight of any
    market (known to the spec or not) on a region its jurisdictions do not allow, and every cross-border
    participant within its own market's jurisdictions."""
    if not cross_border_compliant(spec, cross_border):
        return False
    allowed = allowed_regions_from_rules(spec)
    if sorted(p.market for p in proofs) != sorted(allowed):
        return False
    if not all(set(p.weighted_regions) <= set(p.allowed_regions) for p in proofs):
        return False
    return all(
        market in allowed and {r for r, share in shares.items() if share > 0.0} <= allowed[market]
        for market, shares in weights.items()
    )


def _digest(
    spec_hash: str,
    plan_id: str,
    weights: dict[str, dict[str, float]],
    proofs: list[ResidencyProof],
    compliant: bool,
    cross_border: CrossBorderPlan | None = None,
) -> str:
    body: dict[str, object] = {
        "spec_hash": spec_hash,
        "plan_id": plan_id,
        "weights": weights,
        "proofs": [p.model_dump(mode="json") for p in proofs],
        "compliant": compliant,
    }
    if cross_border is not None:
        # Only then: the seals of plans without cross-market flows (and of older plans) stay as they were.
        certificate = cross_border.model_dump_json(include={"certificate"})
        body["cross_border_proofs"] = hashlib.sha256(certificate.encode()).hexdigest()
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def seal_plan(spec: EnvironmentSpec, plan: Plan) -> Plan:
    """`plan` with its id computed from its content and its residency certificate sealed."""
    plan_id = plan_content_id(plan)
    spec_hash = spec_content_hash(spec)
    compliant = certificate_compliant(spec, plan.weights, plan.residency_certificate, plan.cross_border)
    seal = ResidencySeal(
        spec_hash=spec_hash,
        plan_id=plan_id,
        compliant=compliant,
        digest=_digest(spec_hash, plan_id, plan.weights, plan.residency_certificate, compliant, plan.cross_border),
    )
    return plan.model_copy(update={"plan_id": plan_id, "residency_seal": seal})


def verify_residency(spec: EnvironmentSpec, plan: Plan) -> list[str]:
    """Every way `plan`'s certificate differs from the one `spec` gives for its weights; empty if it
    matches and is compliant. Each entry is `field.path: reason`."""
    problems: list[str] = []
    if plan.environment != spec.name:
        problems.append(f"environment: plan for {plan.environment!r}, spec is {spec.name!r}")
    seal = plan.residency_seal
    if seal is None:
        return [*problems, "residency_seal: missing: the certificate is not bound to a spec or a plan"]
    spec_hash = spec_content_hash(spec)
    if seal.spec_hash != spec_hash:
        problems.append(f"residency_seal.spec_hash: {seal.spec_hash[:12]}... is not this spec's {spec_hash[:12]}...")
    content_id = plan_content_id(plan)
    if plan.plan_id != content_id:
        problems.append(f"plan_id: {plan.plan_id!r} does not match the plan's content ({content_id!r}): edited?")
    if seal.plan_id != plan.plan_id:
        problems.append(f"residency_seal.plan_id: {seal.plan_id!r} is not the plan's id {plan.plan_id!r}")
    derived = residency_certificate(spec, plan.weights)
    by_market = {p.market: p for p in plan.residency_certificate}
    for proof in derived:
        stated = by_market.pop(proof.market, None)
        if stated is None:
            problems.append(f"residency_certificate: no proof for market {proof.market}")
        elif stated.model_dump() != proof.model_dump():
            problems.append(
                f"residency_certificate[{proof.market}]: states {stated.model_dump()}, "
                f"the spec gives {proof.model_dump()}"
            )
    problems.extend(f"residency_certificate[{market}]: market not in the spec" for market in sorted(by_market))
    if plan.cross_border is not None:
        problems.extend(_cross_border_problems(spec, plan.cross_border))
    compliant = certificate_compliant(spec, plan.weights, derived, plan.cross_border)
    if seal.compliant != compliant:
        problems.append(f"residency_seal.compliant: states {seal.compliant}, the checks give {compliant}")
    if not compliant:
        outside = {
            market: sorted(
                {r for r, share in shares.items() if share > 0.0}
                - allowed_regions_from_rules(spec).get(market, frozenset())
            )
            for market, shares in plan.weights.items()
        }
        problems.append(
            "weights: outside the allowed jurisdictions: "
            + "; ".join(f"{m} -> {', '.join(r)}" for m, r in sorted(outside.items()) if r)
        )
    if seal.digest != _digest(
        seal.spec_hash, seal.plan_id, plan.weights, plan.residency_certificate, seal.compliant, plan.cross_border
    ):
        problems.append("residency_seal.digest: does not match the spec hash, plan id, weights and proofs it seals")
    return problems


def _cross_border_problems(spec: EnvironmentSpec, cross_border: CrossBorderPlan) -> list[str]:
    """Every way the stated per-participant proofs differ from the spec's for the stated placements."""
    problems: list[str] = []
    stated = cross_border.certificate
    derived = certify_participants(spec, cross_border.pairs)
    for index, proof in enumerate(derived):
        claim = stated[index] if index < len(stated) else None
        if claim != proof:
            said = claim.model_dump() if claim is not None else "nothing"
            problems.append(f"cross_border.certificate[{index}]: states {said}, the spec gives {proof.model_dump()}")
        elif not proof.compliant:
            outside = ", ".join(sorted(set(proof.regions) - set(proof.allowed_regions)))
            problems.append(
                f"cross_border.certificate[{index}]: {proof.market} ({proof.role} with {proof.counterpart}) in "
                f"{outside}, outside its jurisdictions"
            )
    problems.extend(
        f"cross_border.certificate[{index}]: a proof for no side of any pair"
        for index in range(len(derived), len(stated))
    )
    return problems
