"""APCO 2.103 incident types (the EIDO registry) that Callout treats as domestic violence by default."""

DV_CODES = frozenset({"DVA", "DVNA", "ORDERV", "STKX"})
# A new agency starts with the APCO codes mapped to themselves; it adds its own ("10-16" -> "DVA").
DEFAULT_CODE_MAP: dict[str, str] = {code: code for code in sorted(DV_CODES)}
