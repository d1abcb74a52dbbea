"""Premises: an incident's address as a key, never as the address. Normalised (USPS Pub. 28, by
`usaddress-scourgify`) so that "1234 Ziggurat Lane" and "1234 ziggurat ln" meet, then keyed with the data key so
that the key cannot be turned back into an address by trying likely ones."""

from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache
from typing import Any

from scourgify import normalize_address_record  # type: ignore[import-untyped]  # ships no types
from scourgify.exceptions import AddressNormalizationError  # type: ignore[import-untyped]  # ships no types

UNIT_DESIGNATOR = re.compile(r"^(APT|APARTMENT|UNIT|STE|SUITE|#|NO|NUMBER)\s*", re.I)


@lru_cache(maxsize=4096)
def normalised(address: str, unit: str, city: str, state: str, postal_code: str) -> str | None:
    """The address as one canonical line, or None when it cannot be read as a street address."""
    # As one line: scourgify reads a line with no postal code, where a record of parts would need one.
    line = ", ".join(p for p in (address, unit, city, f"{state} {postal_code}".strip()) if p)
    try:
        parts = normalize_address_record(line)
    except (AddressNormalizationError, ValueError, KeyError, TypeError):
        return None
    line_2 = UNIT_DESIGNATOR.sub("", parts.get("address_line_2") or "").strip()
    place = parts.get("city") or parts.get("postal_code") or ""
    return "|".join((parts["address_line_1"], line_2, place, parts.get("state") or ""))


def premise_key(location: dict[str, Any] | None, data_key: str) -> str | None:
    """The premise key of a location ({address, unit, city, state, postal_code}); None without a readable one."""
    if not location or not location.get("address"):
        return None
    line = normalised(*(str(location.get(k) or "") for k in ("address", "unit", "city", "state", "postal_code")))
    if line is None:
        return None
    return hmac.new(data_key.encode(), line.encode(), hashlib.sha256).hexdigest()
