"""Residency preflight: refuses an environment whose resources would sit outside their jurisdiction.

Runs on the EnvironmentSpec before the Pulumi program declares a single resource (first of the two
walls; the second is the policy pack in `infra/policy/`). It re-runs `EnvironmentSpec`'s own
cross-field checks (each region sits in a jurisdiction that lists it, every market can be served
somewhere, no jurisdiction lists a region outside its countries), from the same implementation, so
that a spec built without validation cannot slip through, and adds what only a deployment needs:
fail closed on a cloud region or jurisdiction whose geography is unknown
(`controller.spec.residency_geography.unknown_geography`), and AWS's tag-length limit.

`residency_preflight(spec)` is pure: it returns one `RegionPlacement` per region, the only input
`EdgeMediaCluster` accepts, or raises `ResidencyError` listing every problem as
`FILE: field.path: reason`, like `controller.spec_file`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from controller.spec import EnvironmentSpec, residency_geography
from controller.spec.cross_checks import cross_field_problems
from controller.spec.residency_geography import unknown_geography
from controller.spec_file import EnvironmentFileError, SpecProblem, format_field_path
from infra.residency_tags import AWS_TAG_VALUE_MAX_CHARS, join_cloud_regions


class ResidencyError(EnvironmentFileError):
    """The environment is a valid spec but would place a cluster or recordings outside the law."""


@dataclass(frozen=True)
class RegionPlacement:
    """Where one region's cluster and recordings go, and the residency facts that allow it.

    Produced only by `residency_preflight`; `EdgeMediaCluster` re-checks it (`refusal_reason`).
    """

    region: str
    """edgeplane region name (`fra`)."""
    cloud_region: str
    """Cloud region id (`eu-central-1`)."""
    country: str
    """ISO country of the cloud region's data centres."""
    jurisdiction: str
    """Jurisdiction the region sits in."""
    jurisdiction_cloud_regions: tuple[str, ...]
    """Cloud regions (of this environment) where that jurisdiction allows media."""

    def refusal_reason(self) -> str | None:
        """Why this placement must not be declared, or None when it is lawful."""
        if self.cloud_region not in self.jurisdiction_cloud_regions:
            return (
                f"region {self.region!r} ({self.cloud_region}) is not among the cloud regions of its "
                f"jurisdiction {self.jurisdiction!r} ({', '.join(self.jurisdiction_cloud_regions) or 'none'})"
            )
        if residency_geography.country_of(self.cloud_region) != self.country:
            return f"region {self.region!r}: {self.cloud_region} is not in country {self.country}"
        allowed = residency_geography.jurisdiction_allows_country(self.jurisdiction, self.country)
        if allowed is None:
            return (
                f"jurisdiction {self.jurisdiction!r} has no known geography in controller/spec/residency_geography.py"
            )
        if not allowed:
            return (
                f"region {self.region!r} ({self.cloud_region}) is in {self.country}, outside jurisdiction "
                f"{self.jurisdiction!r}"
            )
        return None


def residency_preflight(spec: EnvironmentSpec, file: str = "<spec>") -> list[RegionPlacement]:
    """One placement per region (spec order), or ResidencyError listing every residency problem."""
    problems = [SpecProblem(file, path, reason) for path, reason in _residency_problems(spec)]
    if problems:
        raise ResidencyError(problems)
    by_jurisdiction = {j.name: j for j in spec.jurisdictions}
    cloud_region_of = {r.name: r.cloud_region for r in spec.regions}
    placements = []
    for region in spec.regions:
        allowed = by_jurisdiction[region.jurisdiction].allowed_regions
        country = residency_geography.country_of(region.cloud_region)
        assert country is not None  # guaranteed by _residency_problems
        placements.append(
            RegionPlacement(
                region=region.name,
                cloud_region=region.cloud_region,
                country=country,
                jurisdiction=region.jurisdiction,
                jurisdiction_cloud_regions=tuple(cloud_region_of[name] for name in allowed),
            )
        )
    return placements


def _residency_problems(spec: EnvironmentSpec) -> Iterator[tuple[str, str]]:
    # Everything the spec's own validation checks (regions inside their jurisdiction, every market
    # served somewhere, the geography of each listing), re-run from the same implementation because
    # a caller may have built the spec without validation; then what only a deployment needs.
    for loc, reason, _ in cross_field_problems(spec):
        yield format_field_path(loc), reason
    for loc, reason, _ in unknown_geography(spec):
        yield format_field_path(loc), reason
    cloud_region_of = {r.name: r.cloud_region for r in spec.regions}
    for jindex, jurisdiction in enumerate(spec.jurisdictions):
        cloud_regions = [cloud_region_of[name] for name in jurisdiction.allowed_regions if name in cloud_region_of]
        tag_value = join_cloud_regions(cloud_regions)
        if len(tag_value) > AWS_TAG_VALUE_MAX_CHARS:
            yield (
                f"jurisdictions[{jindex}].allowed_regions",
                f"{len(cloud_regions)} regions make a {len(tag_value)}-character residency tag, above AWS's "
                f"{AWS_TAG_VALUE_MAX_CHARS}",
            )
