"""Triage: is this a domestic-violence call, how dangerous, and so which tier. Pure functions, no I/O.

The rules, in order (docs/product.md, "Tiers"):
- DV when the agency's code maps to an APCO DV code, or when CAD asks for an advocate.
- LAP Lethality Screen, classic: screens in when any of q1-q3 is yes, or at least 4 of q4-q11 are yes, or the
  officer believes the victim is in danger. LAP 2.0 also screens in on q5 (strangulation) alone.
  "not_answered" is never a yes. Danger Assessment levels severe/extreme and DASH "high" screen in too.
- immediate: CAD asks for an on-scene advocate, or screened in with a weapon (q1, FIREARM), a threat to kill (q2),
  strangulation (q5, STRANGULATION) or the suspect at large (SUSPECT_AT_LARGE).
- priority: screened in, or CAD asks for an advocate by phone. follow_up: any other DV call. none: not DV.
- Premise: a DV call at an address with an active flag (DV history, firearm, protection order, prior
  strangulation, other), or with two other DV calls in the twelve months before (three with this one), goes up
  one tier — follow_up to priority, priority to immediate — once, however many signs there are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.intake.schemas import CadEvent, Screen
from shared.apco import DV_CODES
from shared.tables import Tier

# The version of these rules, kept with every assessment: a result can always be traced to the rule that made it.
RULES_VERSION = "2026.11"
LAP_CLASSIC, LAP_2 = "LAP-classic", "LAP-2.0"
LAP_QUESTIONS = tuple(f"q{n}" for n in range(1, 12))
HIGH_LEVELS = {"DA": {"severe", "extreme"}, "DASH": {"high"}}


@dataclass(frozen=True)
class ScreenResult:
    instrument: str
    rule: str
    screened_in: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Triage:
    dv: bool
    apco_code: str | None
    tier: Tier
    reasons: tuple[str, ...]
    screen: ScreenResult | None


def normalise_code(code: str) -> str:
    return " ".join(code.upper().split())


def apco_code_for(type_code: str, code_map: Mapping[str, str]) -> str | None:
    return code_map.get(normalise_code(type_code))


def lap_rule(version: str | None) -> str:
    return LAP_2 if version and version.strip().lstrip("vV").startswith("2") else LAP_CLASSIC


def screen_lap(answers: Mapping[str, str], *, officer_belief: bool | None, rule: str) -> ScreenResult:
    yes = {q for q, answer in answers.items() if answer == "yes"}
    reasons: list[str] = []
    if high := sorted(yes & {"q1", "q2", "q3"}, key=lambda q: int(q[1:])):
        reasons.append(f"yes to {', '.join(high)}")
    if rule == LAP_2 and "q5" in yes:
        reasons.append("yes to q5 (strangulation, LAP 2.0)")
    count = len(yes & {f"q{n}" for n in range(4, 12)})
    if count >= 4:
        reasons.append(f"{count} of q4-q11 yes")
    if officer_belief:
        reasons.append("officer believes the victim is in danger")
    return ScreenResult("LAP", rule, bool(reasons), tuple(reasons))


def assess(screen: Screen) -> ScreenResult:
    instrument = screen.instrument.upper()
    if instrument == "LAP":
        return screen_lap(screen.answers, officer_belief=screen.officer_belief, rule=lap_rule(screen.version))
    reasons = []
    level = (screen.level or "").lower()
    if level in HIGH_LEVELS.get(instrument, set()):
        reasons.append(f"{instrument} level {level}")
    if screen.officer_belief:
        reasons.append("officer believes the victim is in danger")
    return ScreenResult(instrument, f"{instrument}-{screen.version or 'unversioned'}", bool(reasons), tuple(reasons))


def assessment_record(screen: Screen, result: ScreenResult) -> dict[str, Any]:
    """The screen as a record: for the LAP every question, an unasked one as "not_answered" (never "no")."""
    answers = dict(screen.answers)
    if result.instrument == "LAP":
        answers = {q: screen.answers.get(q, "not_answered") for q in LAP_QUESTIONS}
    record = {
        "instrument": screen.instrument,
        "instrument_version": screen.version,
        "rule": result.rule,
        "rule_version": RULES_VERSION,
        "answers": answers,
        "officer_belief": screen.officer_belief,
        "level": screen.level,
        "screened_in": result.screened_in,
        "reasons": list(result.reasons),
    }
    return record


def lethality_signs(event: CadEvent) -> list[str]:
    answers = event.screen.answers if event.screen and event.screen.instrument.upper() == "LAP" else {}
    cautions = set(event.cautions)
    signs = []
    if answers.get("q1") == "yes" or "FIREARM" in cautions:
        signs.append("weapon")
    if answers.get("q2") == "yes":
        signs.append("threat to kill")
    if answers.get("q5") == "yes" or "STRANGULATION" in cautions:
        signs.append("strangulation")
    if "SUSPECT_AT_LARGE" in cautions:
        signs.append("suspect at large")
    return signs


REPEAT_CALLS = 3  # DV calls at one address within a year, this one included, that count as a sign
RAISED = {Tier.follow_up: Tier.priority, Tier.priority: Tier.immediate, Tier.immediate: Tier.immediate}


def premise_signs(premise: Mapping[str, Any] | None) -> list[str]:
    if not premise:
        return []
    signs = [f"{kind.replace('_', ' ')} flag" for kind in premise.get("kinds", [])]
    if (calls := premise.get("prior_dv_calls", 0) + 1) >= REPEAT_CALLS:
        signs.append(f"{calls} DV calls at this address in 12 months")
    return signs


def triage(event: CadEvent, code_map: Mapping[str, str], premise: Mapping[str, Any] | None = None) -> Triage:
    apco = apco_code_for(event.type_code, code_map)
    reasons: list[str] = []
    if apco in DV_CODES:
        reasons.append(f"type {normalise_code(event.type_code)} maps to APCO {apco}, a DV code")
    if event.advocate_requested:
        reasons.append(f"CAD requested an advocate ({event.advocate_requested})")
    dv = bool(reasons)
    if not dv:
        return Triage(False, apco, Tier.none, (f"type {normalise_code(event.type_code)} is not a DV code",), None)

    screen = assess(event.screen) if event.screen else None
    if screen is None:
        reasons.append("not screened")
    else:
        verdict = "screened in" if screen.screened_in else "screened out"
        detail = f": {'; '.join(screen.reasons)}" if screen.reasons else ""
        reasons.append(f"{screen.rule} {verdict}{detail}")

    screened_in = screen is not None and screen.screened_in
    signs = lethality_signs(event)
    if event.advocate_requested == "on_scene":
        tier = Tier.immediate
    elif screened_in and signs:
        tier = Tier.immediate
        reasons.append(f"high danger with {', '.join(signs)}")
    elif screened_in or event.advocate_requested == "phone":
        tier = Tier.priority
    else:
        tier = Tier.follow_up
    if signs_at_premise := premise_signs(premise):
        raised = RAISED[tier]
        change = f"; tier raised from {tier.value}" if raised is not tier else ""
        reasons.append(f"premise: {', '.join(signs_at_premise)}{change}")
        tier = raised
    return Triage(True, apco, tier, tuple(reasons), screen)
