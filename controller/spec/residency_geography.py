"""Where cloud regions physically are, which countries a residency jurisdiction covers, and the rule
that joins them: a jurisdiction may only list regions inside its countries.

A legal fact the EnvironmentSpec cannot state about itself: the spec says "jurisdiction eu allows
region fra (eu-central-1)", and only a table of region locations can tell that this is in Germany
and therefore in the EU. One implementation, three callers:
- `geography_contradictions`: run by the spec's own validation (`controller.spec.cross_checks`), so
  `edgectl env validate`, `edgectl plan` and every other loader refuse `eu` listing Jakarta;
- `unknown_cloud_regions`: run by the spec's own validation, so a code AWS does not have (a typo, or
  another cloud's region) fails closed in `edgectl env validate`; a simulator-only fleet
  (`bench/synthetic_spec.py`) may opt out through the validation context `SIMULATED_CLOUD_REGIONS`,
  which no environment file can set;
- `unknown_geography`: run by `infra.residency.residency_preflight` before deploying, on any spec
  however built: unknown cloud regions and jurisdictions without geography fail closed there;
- `country_of` / `jurisdiction_allows_country`: the policy pack (`infra/policy/residency_policies.py`)
  checking where AWS will really create each resource.

Pure data and functions, no I/O (part of the spec's pure ring). Only the commercial `aws` partition
is listed: the program builds IAM ARNs in that partition, so a China or GovCloud region is refused
as unknown rather than half-working. Adding a region or a jurisdiction is a reviewed code change on
purpose (fail closed).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from controller.spec.environment import EnvironmentSpec

Problem = tuple[tuple[str | int, ...], str, Any]
"""(field location, reason, offending value): the shape `EnvironmentSpec` turns into a ValidationError."""


@dataclass(frozen=True)
class AwsRegion:
    """One AWS region as the deployment trusts it."""

    code: str
    """Region code exactly as AWS's SDK data spells it (botocore `partitions.json`, partition `aws`)."""
    description: str
    """AWS's own name for it, copied from the same data (`tests/infra/test_region_table.py` compares both)."""
    country: str
    """ISO 3166-1 alpha-2 country of its data centres (what residency rules are about)."""
    opt_in: bool
    """Disabled in an account until enabled (AWS: regions launched after 20 March 2019, except Osaka).
    Not in botocore's data: from AWS's account documentation; `edgectl infra preflight` lists it to check."""


def _regions(*rows: tuple[str, str, str, bool]) -> MappingProxyType[str, AwsRegion]:
    return MappingProxyType({row[0]: AwsRegion(*row) for row in rows})


AWS_REGIONS: Final = _regions(
    ("af-south-1", "Africa (Cape Town)", "ZA", True),
    ("ap-east-1", "Asia Pacific (Hong Kong)", "HK", True),
    ("ap-east-2", "Asia Pacific (Taipei)", "TW", True),
    ("ap-northeast-1", "Asia Pacific (Tokyo)", "JP", False),
    ("ap-northeast-2", "Asia Pacific (Seoul)", "KR", False),
    ("ap-northeast-3", "Asia Pacific (Osaka)", "JP", False),
    ("ap-south-1", "Asia Pacific (Mumbai)", "IN", False),
    ("ap-south-2", "Asia Pacific (Hyderabad)", "IN", True),
    ("ap-southeast-1", "Asia Pacific (Singapore)", "SG", False),
    ("ap-southeast-2", "Asia Pacific (Sydney)", "AU", False),
    ("ap-southeast-3", "Asia Pacific (Jakarta)", "ID", True),
    ("ap-southeast-4", "Asia Pacific (Melbourne)", "AU", True),
    ("ap-southeast-5", "Asia Pacific (Malaysia)", "MY", True),
    ("ap-southeast-6", "Asia Pacific (New Zealand)", "NZ", True),
    ("ap-southeast-7", "Asia Pacific (Thailand)", "TH", True),
    ("ca-central-1", "Canada (Central)", "CA", False),
    ("ca-west-1", "Canada West (Calgary)", "CA", True),
    ("eu-central-1", "Europe (Frankfurt)", "DE", False),
    ("eu-central-2", "Europe (Zurich)", "CH", True),
    ("eu-north-1", "Europe (Stockholm)", "SE", False),
    ("eu-south-1", "Europe (Milan)", "IT", True),
    ("eu-south-2", "Europe (Spain)", "ES", True),
    ("eu-west-1", "Europe (Ireland)", "IE", False),
    ("eu-west-2", "Europe (London)", "GB", False),
    ("eu-west-3", "Europe (Paris)", "FR", False),
    ("il-central-1", "Israel (Tel Aviv)", "IL", True),
    ("me-central-1", "Middle East (UAE)", "AE", True),
    ("me-south-1", "Middle East (Bahrain)", "BH", True),
    ("me-west-1", "Middle East (Saudi Arabia)", "SA", True),
    ("mx-central-1", "Mexico (Central)", "MX", True),
    ("sa-east-1", "South America (Sao Paulo)", "BR", False),
    ("sa-west-1", "South America (Chile)", "CL", True),
    ("us-east-1", "US East (N. Virginia)", "US", False),
    ("us-east-2", "US East (Ohio)", "US", False),
    ("us-west-1", "US West (N. California)", "US", False),
    ("us-west-2", "US West (Oregon)", "US", False),
)
"""Every region of AWS's commercial partition, keyed by code. Checked against botocore's
`partitions.json` (same codes, same descriptions) by `tests/infra/test_region_table.py`; a code that
is not here fails closed in `edgectl env validate` and in the Pulumi program."""

AWS_REGION_COUNTRY: Final = MappingProxyType({code: region.country for code, region in AWS_REGIONS.items()})
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


SIMULATED_CLOUD_REGIONS: Final = "edgeplane.simulated_cloud_regions"
"""Validation-context key that lets a spec use cloud region codes AWS does not have, for simulator-only
fleets (`bench/synthetic_spec.py`): `EnvironmentSpec.model_validate(data, context={SIMULATED_CLOUD_REGIONS: True})`.
`controller.spec_file.load_environment` never passes it, so no environment file can use it, and the
deploy preflight (`unknown_geography`) refuses such a spec whatever built it."""


def unknown_cloud_regions(spec: EnvironmentSpec) -> Iterator[Problem]:
    """Regions whose cloud region code is not an AWS region: run by the spec's own validation (fail closed)."""
    for index, region in enumerate(spec.regions):
        if region.cloud_region not in AWS_REGIONS:
            yield (
                ("regions", index, "cloud_region"),
                f"cloud region {region.cloud_region!r} of region {region.name!r} is not an AWS region (the codes of "
                "AWS's SDK data are listed in controller/spec/residency_geography.py): its country is unknown, so "
                "its residency cannot be checked and AWS would refuse it",
                region.cloud_region,
            )


def unknown_geography(spec: EnvironmentSpec) -> Iterator[Problem]:
    """Cloud regions and jurisdictions the tables do not know: their residency cannot be checked.

    Run by the deploy preflight on any spec, however it was built (including a simulator-only spec
    validated with `SIMULATED_CLOUD_REGIONS`)."""
    yield from unknown_cloud_regions(spec)
    for index, jurisdiction in enumerate(spec.jurisdictions):
        if jurisdiction.name not in UNRESTRICTED_JURISDICTIONS and jurisdiction.name not in JURISDICTION_COUNTRIES:
            yield (
                ("jurisdictions", index, "name"),
                f"jurisdiction {jurisdiction.name!r} has no geography in controller/spec/residency_geography.py "
                "(JURISDICTION_COUNTRIES): add the countries it covers before deploying",
                jurisdiction.name,
            )
