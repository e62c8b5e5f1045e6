"""Residency preflight: refuses an environment whose resources would sit outside their jurisdiction.

Runs on the EnvironmentSpec before the Pulumi program declares a single resource (first of the two
walls; the second is the policy pack in `infra/policy/`). It re-checks what `EnvironmentSpec`
validation already promises (each region sits in a jurisdiction that lists it, every market can be
served somewhere) so that a spec built without validation cannot slip through, and adds what the
spec cannot know about itself: where each cloud region physically is (`infra.aws_geography`).

`residency_preflight(spec)` is pure: it returns one `RegionPlacement` per region, the only input
`EdgeMediaCluster` accepts, or raises `ResidencyError` listing every problem as
`FILE: field.path: reason`, like `controller.spec_file`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from controller.spec import EnvironmentSpec, RegionSpec
from controller.spec_file import EnvironmentFileError, SpecProblem
from infra import aws_geography
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
        if aws_geography.country_of(self.cloud_region) != self.country:
            return f"region {self.region!r}: {self.cloud_region} is not in country {self.country}"
        allowed = aws_geography.jurisdiction_allows_country(self.jurisdiction, self.country)
        if allowed is None:
            return f"jurisdiction {self.jurisdiction!r} has no known geography in infra/aws_geography.py"
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
        country = aws_geography.country_of(region.cloud_region)
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
    regions: dict[str, tuple[int, RegionSpec]] = {r.name: (i, r) for i, r in enumerate(spec.regions)}
    jurisdictions = {j.name: j for j in spec.jurisdictions}

    for index, region in enumerate(spec.regions):
        if aws_geography.country_of(region.cloud_region) is None:
            yield (
                f"regions[{index}].cloud_region",
                f"cloud region {region.cloud_region!r} of region {region.name!r} is not in "
                "infra/aws_geography.py: its country is unknown, so its residency cannot be checked",
            )
        home = jurisdictions.get(region.jurisdiction)
        if home is None:
            yield f"regions[{index}].jurisdiction", f"unknown jurisdiction {region.jurisdiction!r}"
        elif region.name not in home.allowed_regions:
            yield (
                f"regions[{index}].jurisdiction",
                f"region {region.name!r} sits in jurisdiction {home.name!r}, which does not list it: "
                "its cluster and recordings bucket would be outside their own jurisdiction",
            )

    for jindex, jurisdiction in enumerate(spec.jurisdictions):
        known = jurisdiction.name in aws_geography.UNRESTRICTED_JURISDICTIONS or (
            jurisdiction.name in aws_geography.JURISDICTION_COUNTRIES
        )
        if not known:
            yield (
                f"jurisdictions[{jindex}].name",
                f"jurisdiction {jurisdiction.name!r} has no geography in infra/aws_geography.py "
                "(JURISDICTION_COUNTRIES): add the countries it covers before deploying",
            )
        cloud_regions: list[str] = []
        for rindex, region_name in enumerate(jurisdiction.allowed_regions):
            found = regions.get(region_name)
            if found is None:
                yield (
                    f"jurisdictions[{jindex}].allowed_regions[{rindex}]",
                    f"unknown region {region_name!r}",
                )
                continue
            region = found[1]
            cloud_regions.append(region.cloud_region)
            country = aws_geography.country_of(region.cloud_region)
            if (
                known
                and country is not None
                and not aws_geography.jurisdiction_allows_country(jurisdiction.name, country)
            ):
                yield (
                    f"jurisdictions[{jindex}].allowed_regions[{rindex}]",
                    f"region {region_name!r} ({region.cloud_region}) is in {country}, outside "
                    f"jurisdiction {jurisdiction.name!r}: a cluster or recordings bucket there would "
                    "break residency",
                )
        tag_value = join_cloud_regions(cloud_regions)
        if len(tag_value) > AWS_TAG_VALUE_MAX_CHARS:
            yield (
                f"jurisdictions[{jindex}].allowed_regions",
                f"{len(cloud_regions)} regions make a {len(tag_value)}-character residency tag, above AWS's "
                f"{AWS_TAG_VALUE_MAX_CHARS}",
            )

    for mindex, market in enumerate(spec.markets):
        serving: list[str] = []
        for jname in market.allowed_jurisdictions:
            allowing = jurisdictions.get(jname)
            if allowing is None:
                yield f"markets[{mindex}].allowed_jurisdictions", f"unknown jurisdiction {jname!r}"
                continue
            serving.extend(name for name in allowing.allowed_regions if name in regions)
        if not serving:
            yield (
                f"markets[{mindex}].allowed_jurisdictions",
                f"market {market.code} may only be served in {market.allowed_jurisdictions}, which have no "
                "region in this environment: its users would have nowhere lawful to go",
            )
