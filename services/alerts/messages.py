"""What an alert says. Texts are not secure: a code, the tier, the area, how to reply and a link — nothing else."""

from __future__ import annotations

from shared.tables import Tier

TIER_WORDS = {
    Tier.immediate: "IMMEDIATE",
    Tier.priority: "PRIORITY",
    Tier.follow_up: "FOLLOW-UP",
}


def alert_sms(*, code: str, tier: Tier, area: str | None, link: str, role: str) -> str:
    where = f"area {area}" if area else "area not given"
    if role == "hotline":
        return f"Callout {code}: {TIER_WORDS[tier]} DV call, {where}, no advocate reached. Details: {link}"
    return f"Callout {code}: {TIER_WORDS[tier]} DV call, {where}. Reply 1 to accept, 2 to decline. {link}"
