"""The advocate's page for one callout, behind the link in their text: what it shows to whom, when.

Before anyone accepts, every person alerted (and any link-preview bot, or whoever a text is forwarded to) sees the
code, tier, area and language with Accept and Decline — nothing personal. The address, the safe contact, the risk
flags and earlier calls are for the person who accepted, while the callout runs, with masked calls to the survivor
(only when they consented and gave a safe contact) and to the hotline; once it ends, a short summary without
personal data. Times are the agency's local time.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.alerts import messages
from shared.localtime import local_time
from shared.security import csp_nonce
from shared.tables import OPEN, Callout, CalloutStatus, Incident, Stage, Tier

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")), autoescape=select_autoescape(["html"])
)
TEMPLATES.globals["csp_nonce"] = csp_nonce  # each page's <style> nonce (shared/security.py)
ANSWERS = {"accept": "Accept", "decline": "Decline"}
PROGRESS = {
    Stage.en_route.value: "En route",
    Stage.on_scene.value: "On scene",
    Stage.survivor_contacted.value: "Survivor contacted",
    Stage.survivor_declined.value: "Survivor declined",
    Stage.closed.value: "Close",
}
CALLS = {"call_survivor": "Call the survivor", "call_hotline": "Call the hotline"}
ACTIONS = {**ANSWERS, **PROGRESS, **CALLS, "pin": "Show the details"}
# The second factor, as it stands for the acceptor's browser: the PIN was given; it is asked for; the link is
# locked (five wrong PINs); or no PIN is set yet (the details show, saying a PIN would guard them).
Guard = Literal["given", "ask", "locked", "none"]


@dataclass(frozen=True)
class Page:
    code: str
    tier: str
    area: str
    language: str | None
    state: str
    expires: str | None
    note: str | None = None
    summary: str | None = None
    details: list[tuple[str, str]] = field(default_factory=list)
    buttons: list[tuple[str, str]] = field(default_factory=list)
    guard: Guard = "given"

    def html(self) -> str:
        return TEMPLATES.get_template("link.html").render(page=self)


def page_for(
    *,
    recipient: str,
    callout: Callout,
    incident: Incident,
    timezone: str,
    expires_at: datetime | None,
    note: str | None,
    survivor_reachable: bool,
    guard: Guard,
) -> Page:
    """What the link of `recipient` shows of `callout` now."""
    mine = callout.accepted_by_recipient(recipient)
    running = callout.end_requested_at is None
    language = incident.language and incident.language + (
        " (interpreter needed)" if incident.interpreter_needed else ""
    )
    base = Page(
        code=callout.code,
        tier=messages.TIER_WORDS[Tier(callout.tier)],
        area=incident.area or "not given",
        language=language or None,
        state="This callout is no longer open.",
        expires=local_time(expires_at, timezone) if expires_at else None,
        note=note,
    )
    if callout.status in OPEN and running:
        return replace(base, state="Waiting for an advocate to accept.", buttons=list(ANSWERS.items()))
    if callout.status == CalloutStatus.accepted and running:
        if not mine:
            return replace(base, state="Someone else accepted this callout. Thank you.")
        mine_now = replace(base, state="You accepted this callout.", guard=guard)
        if guard in ("ask", "locked"):  # nothing personal, no call, no progress before the PIN
            return mine_now
        calls = [(k, v) for k, v in CALLS.items() if survivor_reachable or k != "call_survivor"]
        return replace(mine_now, details=details(incident), buttons=calls + list(PROGRESS.items()))
    ended = f"This callout ended ({callout.end_reason or callout.status})"
    if callout.accepted_at is not None:
        ended += f"; accepted {local_time(callout.accepted_at, timezone)}" + (" by you" if mine else "")
    return replace(base, summary=ended + ".")


def details(incident: Incident) -> list[tuple[str, str]]:
    """What the advocate needs at the scene; shown only to the one who accepted, never in a text."""
    found: dict[str, Any] = incident.details or {}
    rows: list[tuple[str, str]] = []
    location = found.get("location") or {}
    address = ", ".join(
        str(location[k]) for k in ("address", "unit", "city", "state", "postal_code") if location.get(k)
    )
    if address:
        rows.append(("Address", address))
    if found.get("cautions"):
        rows.append(("Risk flags (from CAD)", ", ".join(found["cautions"])))
    premise = incident.premise or {}
    if premise.get("flags"):
        rows.append(
            (
                "Flags at this address",
                ", ".join(f"{f['kind'].replace('_', ' ')} ({f['source']})" for f in premise["flags"]),
            )
        )
    if premise.get("prior_dv_calls"):
        rows.append(("Earlier DV calls here", f"{premise['prior_dv_calls']} in the 12 months before this call"))
    victim: dict[str, Any] = next((p for p in found.get("persons", []) if p.get("role") == "victim"), {})
    contact = victim.get("safe_contact") or {}
    if victim.get("consents_to_contact") is True and contact:
        rows.append(
            ("Safe contact", " — ".join(str(contact[k]) for k in ("phone", "window", "notes") if contact.get(k)))
        )
    elif victim.get("consents_to_contact") is False:
        rows.append(("Safe contact", "The survivor declined contact. Do not call."))
    return rows
