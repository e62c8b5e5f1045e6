"""edgeplane's CrossGuard policy pack: the second residency wall, run by `pulumi preview --policy-pack infra/policy`."""
