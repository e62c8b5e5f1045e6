"""Where cloud regions physically are, which countries a residency jurisdiction covers, and the rule
that joins them: a jurisdiction may only list regions inside its countries.

A legal fact the EnvironmentSpec cannot state about itself: the spec says "jurisdiction eu allows
region fra (eu-central-1)", and only a table of region locations can tell that this is in Germany
and therefore in the EU. One implementation, three callers:
- `geography_contradictions`: run by the spec's own validation (`controller.spec.cross_checks`), so
  `edgectl env validate`, `edgectl plan` and every other loader refuse `eu` listing Jakarta;
- `unknown_geography`: run only by `infra.residency.residency_preflight` before deploying. A cloud
  region or jurisdiction missing from the tables contradicts nothing, so a simulator-only fleet
  (`bench/synthetic_spec.py` uses made-up cloud regions) is a valid spec, but a deployment fails
  closed: residency that cannot be checked is not deployed;
- `country_of` / `jurisdiction_allows_country`: the policy pack (`infra/policy/residency_policies.py`)
  checking where AWS will really create each resource.

Pure data and functions, no I/O (part of the spec's pure ring). Only the commercial `aws` partition
is listed: the program builds IAM ARNs in that partition, so a China or GovCloud region is refused
as unknown rather than half-working. Adding a region or a jurisdiction is a reviewed code change on
purpose (fail closed).
"""

from __future__ import annotations

from collections.abc import Iterator
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from controller.spec.environment import EnvironmentSpec

Problem = tuple[tuple[str | int, ...], str, Any]
"""(field location, reason, offending value): the shape `EnvironmentSpec` turns into a ValidationError."""

AWS_REGION_COUNTRY: Final = MappingProxyType(
    {
        "af-south-1": "ZA",  # Cape Town
        "ap-east-1": "HK",  # Hong Kong
        "ap-east-2": "TW",  # Taipei
        "ap-northeast-1": "JP",  # Tokyo
        "ap-northeast-2": "KR",  # Seoul
        "ap-northeast-3": "JP",  # Osaka
        "ap-south-1": "IN",  # Mumbai
        "ap-south-2": "IN",  # Hyderabad
        "ap-southeast-1": "SG",  # Singapore
        "ap-southeast-2": "AU",  # Sydney
        "ap-southeast-3": "ID",  # Jakarta
        "ap-southeast-4": "AU",  # Melbourne
        "ap-southeast-5": "MY",  # Malaysia
        "ap-southeast-6": "NZ",  # New Zealand
        "ap-southeast-7": "TH",  # Thailand
        "ca-central-1": "CA",  # Montreal
        "ca-west-1": "CA",  # Calgary
        "eu-central-1": "DE",  # Frankfurt
        "eu-central-2": "CH",  # Zurich
        "eu-north-1": "SE",  # Stockholm
        "eu-south-1": "IT",  # Milan
        "eu-south-2": "ES",  # Spain
        "eu-west-1": "IE",  # Ireland
        "eu-west-2": "GB",  # London
        "eu-west-3": "FR",  # Paris
        "il-central-1": "IL",  # Tel Aviv
        "me-central-1": "AE",  # UAE
        "me-central-2": "SA",  # Saudi Arabia (Dammam)
        "me-south-1": "BH",  # Bahrain
        "mx-central-1": "MX",  # Mexico
        "sa-east-1": "BR",  # Sao Paulo
        "us-east-1": "US",  # N. Virginia
        "us-east-2": "US",  # Ohio
        "us-west-1": "US",  # N. California
        "us-west-2": "US",  # Oregon
    }
)
"""Cloud region id -> ISO 3166-1 alpha-2 country of its data centres."""

EU_EEA_COUNTRIES: Final = frozenset(
    # GDPR applies in the 27 EU member states and the three EEA states (IS, LI, NO).
    [
        "AT",
        "BE",
        "BG",
        "HR",
        "CY",
        "CZ",
        "DK",
        "EE",
        "FI",
        "FR",
        "DE",
        "GR",
        "HU",
        "IE",
        "IT",
        "LV",
        "LT",
        "LU",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SK",
        "SI",
        "ES",
        "SE",
        "IS",
        "LI",
        "NO",
    ]
)

UNRESTRICTED_JURISDICTIONS: Final = frozenset({"global"})
"""Jurisdictions without a localisation rule: any known region may serve them."""

JURISDICTION_COUNTRIES: Final = MappingProxyType(
    {
        "eu": EU_EEA_COUNTRIES,
        # UK GDPR restricts transfers out of the UK; the EEA states are covered by UK adequacy
        # regulations (Data Protection Act 2018, Schedule 21, paragraphs 4-5), so UK + EEA is lawful.
        "uk": frozenset({"GB"}) | EU_EEA_COUNTRIES,
        "id": frozenset({"ID"}),  # Indonesia PDP Law 27/2022, GR 71/2019
        "sa": frozenset({"SA"}),  # Saudi PDPL, NCA Cloud Cybersecurity Controls
        "vn": frozenset({"VN"}),  # Vietnam Decree 53/2022 (no AWS region there yet)
    }
)
"""Residency-bound jurisdiction name -> countries whose regions may process its media."""


def country_of(cloud_region: str) -> str | None:
    """Country of a cloud region, or None when the region is not in the table."""
    return AWS_REGION_COUNTRY.get(cloud_region)


def jurisdiction_allows_country(jurisdiction: str, country: str) -> bool | None:
    """True/False for a known jurisdiction, None when the jurisdiction is unknown here."""
    if jurisdiction in UNRESTRICTED_JURISDICTIONS:
        return True
    countries = JURISDICTION_COUNTRIES.get(jurisdiction)
    if countries is None:
        return None
    return country in countries


def geography_contradictions(spec: EnvironmentSpec) -> Iterator[Problem]:
    """Each listing of a region by a jurisdiction whose countries do not include the region's country.

    Only what the tables know can contradict: a cloud region or jurisdiction missing from them is
    `unknown_geography`'s business. Robust to specs built without validation (names that resolve to
    nothing are skipped; the spec's own checks report them).
    """
    cloud_region_of = {r.name: r.cloud_region for r in spec.regions}
    for jindex, jurisdiction in enumerate(spec.jurisdictions):
        for rindex, region_name in enumerate(jurisdiction.allowed_regions):
            cloud_region = cloud_region_of.get(region_name)
            country = None if cloud_region is None else country_of(cloud_region)
            if country is None or jurisdiction_allows_country(jurisdiction.name, country) is not False:
                continue
            yield (
                ("jurisdictions", jindex, "allowed_regions", rindex),
                f"region {region_name!r} ({cloud_region}) is in {country}, outside jurisdiction "
                f"{jurisdiction.name!r}: media or recordings of its markets there would break residency",
                region_name,
            )


def unknown_geography(spec: EnvironmentSpec) -> Iterator[Problem]:
    """Cloud regions and jurisdictions the tables do not know: their residency cannot be checked."""
    for index, region in enumerate(spec.regions):
        if country_of(region.cloud_region) is None:
            yield (
                ("regions", index, "cloud_region"),
                f"cloud region {region.cloud_region!r} of region {region.name!r} is not in "
                "controller/spec/residency_geography.py: its country is unknown, so its residency cannot be checked",
                region.cloud_region,
            )
    for index, jurisdiction in enumerate(spec.jurisdictions):
        if jurisdiction.name not in UNRESTRICTED_JURISDICTIONS and jurisdiction.name not in JURISDICTION_COUNTRIES:
            yield (
                ("jurisdictions", index, "name"),
                f"jurisdiction {jurisdiction.name!r} has no geography in controller/spec/residency_geography.py "
                "(JURISDICTION_COUNTRIES): add the countries it covers before deploying",
                jurisdiction.name,
            )
