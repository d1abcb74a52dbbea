"""The figures, computed from each incident's timeline. Every interval starts when Callout received the CAD's
first event for the incident (`cad_received`) and ends at the first of its stage:

| interval | ends at |
| --- | --- |
| `first_alert` | the first `notification_sent` (an alert handed to the provider) |
| `acceptance` | the first `acknowledged` |
| `on_scene` | the first `on_scene` |
| `survivor_contact` | the first `survivor_contacted` |

A tier's target (docs/product.md) is met when its stage came within the time; a call where it never came did not meet
it. Pure functions: the routes read the rows."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

INTERVALS = {
    "first_alert": "notification_sent",
    "acceptance": "acknowledged",
    "on_scene": "on_scene",
    "survivor_contact": "survivor_contacted",
}
# Per tier: (interval, seconds) that must hold.
TARGETS = {
    "immediate": (("acceptance", 5 * 60), ("on_scene", 30 * 60)),
    "priority": (("acceptance", 10 * 60), ("survivor_contact", 60 * 60)),
    "follow_up": (("survivor_contact", 48 * 3600),),
}


@dataclass
class Call:
    """One DV incident as the reports see it: no person, only times and outcomes."""

    agency: str
    hour: int  # of the day, in the agency's time zone
    area: str | None
    tier: str
    language: str | None
    received_at: datetime
    seconds: dict[str, float] = field(default_factory=dict)  # interval -> seconds
    advocate: str | None = None  # who accepted (their key), if anyone
    accepted_by_hotline: bool = False
    accepted: bool = False
    escalations: int = 0
    declines: int = 0
    screened: bool = False
    screened_in: bool = False

    @property
    def within_target(self) -> bool:
        return all(self.seconds.get(interval, float("inf")) <= limit for interval, limit in TARGETS[self.tier])


def call_from(incident: Any, agency: str, timezone: str, entries: Sequence[Any], advocate_keys: dict[int, str]) -> Call:
    """A call from its incident row and its timeline entries, in order."""
    received = next((e.observed_at for e in entries if e.stage == "cad_received"), incident.created_at)
    hour = received.astimezone(ZoneInfo(timezone)).hour
    call = Call(agency, hour, incident.area, incident.tier, incident.language, received)
    for entry in entries:
        for interval, stage in INTERVALS.items():
            if entry.stage == stage and interval not in call.seconds:
                call.seconds[interval] = (entry.observed_at - received).total_seconds()
        if entry.stage == "acknowledged" and not call.accepted:
            call.accepted = True
            call.accepted_by_hotline = entry.data.get("role") == "hotline"
            call.advocate = advocate_keys.get(entry.data.get("advocate_id") or -1)
        elif entry.stage == "escalated":
            call.escalations += 1
        elif entry.stage == "declined":
            call.declines += 1
        elif entry.stage == "triaged" and entry.data.get("screened_in") is not None:
            call.screened = True
            call.screened_in = call.screened_in or bool(entry.data["screened_in"])
    return call


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1], 1)


def summary(calls: Iterable[Call]) -> dict[str, Any]:
    calls = list(calls)
    by_tier: dict[str, list[Call]] = defaultdict(list)
    for call in calls:
        by_tier[call.tier].append(call)
    return {
        "calls": len(calls),
        "intervals": {
            interval: {
                "count": len(values := sorted(c.seconds[interval] for c in calls if interval in c.seconds)),
                "median_seconds": round(statistics.median(values), 1) if values else None,
                "p90_seconds": percentile(values, 90),
            }
            for interval in INTERVALS
        },
        "within_target": {
            tier: round(sum(c.within_target for c in tier_calls) / len(tier_calls), 3)
            for tier, tier_calls in sorted(by_tier.items())
        },
        "escalations": sum(c.escalations for c in calls),
        "declines": sum(c.declines for c in calls),
        "hotline_only": sum(c.accepted_by_hotline for c in calls),
        "never_accepted": sum(not c.accepted for c in calls),
        "lap": {
            "calls_screened": sum(c.screened for c in calls),
            "screened_in": sum(c.screened_in for c in calls),
            "advocate_reached": sum(c.accepted and not c.accepted_by_hotline for c in calls),
            "survivor_spoke_with_advocate": sum("survivor_contact" in c.seconds for c in calls),
        },
    }


def grouped(calls: Sequence[Call], key: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[Call]] = defaultdict(list)
    for call in calls:
        value = getattr(call, key)
        groups[str(value) if value is not None else "none"].append(call)
    return {name: summary(group) for name, group in sorted(groups.items())}
