"""Triage rules: DV codes, the LAP screen (classic and 2.0) and the tiers. Pure logic, so properties."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from services.intake.schemas import CadEvent
from services.intake.triage import LAP_2, LAP_CLASSIC, lap_rule, screen_lap, triage
from shared.apco import DEFAULT_CODE_MAP
from shared.tables import Tier

QUESTIONS = [f"q{n}" for n in range(1, 12)]
answers_st = st.dictionaries(st.sampled_from(QUESTIONS), st.sampled_from(["yes", "no", "not_answered"]))
rules_st = st.sampled_from([LAP_CLASSIC, LAP_2])


def reference_lap(answers: dict[str, str], officer_belief: bool, rule: str) -> bool:
    """The LAP rule exactly as docs/product.md words it."""
    yes = {q for q, a in answers.items() if a == "yes"}
    return (
        bool(yes & {"q1", "q2", "q3"})
        or len(yes & {f"q{n}" for n in range(4, 12)}) >= 4
        or officer_belief
        or (rule == LAP_2 and "q5" in yes)
    )


@given(answers_st, st.booleans(), rules_st)
def test_lap_screen_follows_the_published_rule(answers: dict[str, str], belief: bool, rule: str) -> None:
    result = screen_lap(answers, officer_belief=belief, rule=rule)
    assert result.screened_in == reference_lap(answers, belief, rule)
    assert result.rule == rule
    assert bool(result.reasons) == result.screened_in


@given(answers_st, st.booleans(), rules_st)
def test_not_answered_never_counts_as_yes(answers: dict[str, str], belief: bool, rule: str) -> None:
    as_no = {q: ("no" if a == "not_answered" else a) for q, a in answers.items()}
    assert (
        screen_lap(answers, officer_belief=belief, rule=rule).screened_in
        == screen_lap(as_no, officer_belief=belief, rule=rule).screened_in
    )


@given(answers_st, st.booleans(), st.sampled_from(QUESTIONS), rules_st)
def test_one_more_yes_never_screens_a_victim_out(answers: dict[str, str], belief: bool, q: str, rule: str) -> None:
    before = screen_lap(answers, officer_belief=belief, rule=rule).screened_in
    after = screen_lap({**answers, q: "yes"}, officer_belief=belief, rule=rule).screened_in
    assert after or not before


@given(answers_st, st.booleans())
def test_lap_2_screens_in_whenever_classic_does(answers: dict[str, str], belief: bool) -> None:
    if screen_lap(answers, officer_belief=belief, rule=LAP_CLASSIC).screened_in:
        assert screen_lap(answers, officer_belief=belief, rule=LAP_2).screened_in


def test_strangulation_alone_screens_in_under_lap_2_only() -> None:
    assert screen_lap({"q5": "yes"}, officer_belief=False, rule=LAP_2).screened_in
    assert not screen_lap({"q5": "yes"}, officer_belief=False, rule=LAP_CLASSIC).screened_in


def test_three_of_the_later_questions_are_not_enough_four_are() -> None:
    three = {"q4": "yes", "q6": "yes", "q7": "yes"}
    assert not screen_lap(three, officer_belief=False, rule=LAP_CLASSIC).screened_in
    assert screen_lap({**three, "q11": "yes"}, officer_belief=False, rule=LAP_CLASSIC).screened_in


def test_rule_version_is_read_from_the_screen() -> None:
    assert [lap_rule(v) for v in (None, "1", "classic", "2", "2.0", "v2")] == [LAP_CLASSIC] * 3 + [LAP_2] * 3


def event(**fields: Any) -> CadEvent:
    base: dict[str, Any] = {
        "incident_id": "1",
        "status": "new",
        "occurred_at": "2026-11-16T12:00:00Z",
        "type_code": "DVA",
    }
    return CadEvent.model_validate({**base, **fields})


LAP = "LAP"
TIER_CASES: list[tuple[dict[str, Any], Tier]] = [
    ({"type_code": "BURG"}, Tier.none),
    ({"type_code": "dva"}, Tier.follow_up),  # codes are matched without regard to case
    ({"screen": {"instrument": LAP, "answers": {"q3": "yes"}}}, Tier.priority),
    ({"screen": {"instrument": LAP, "answers": {"q1": "yes"}}}, Tier.immediate),  # weapon
    ({"screen": {"instrument": LAP, "answers": {"q2": "yes"}}}, Tier.immediate),  # threat to kill
    ({"screen": {"instrument": LAP, "version": "2", "answers": {"q5": "yes"}}}, Tier.immediate),  # strangulation
    ({"screen": {"instrument": LAP, "answers": {"q3": "yes"}}, "cautions": ["SUSPECT_AT_LARGE"]}, Tier.immediate),
    ({"screen": {"instrument": LAP, "answers": {"q3": "no"}}, "cautions": ["FIREARM"]}, Tier.follow_up),
    ({"screen": {"instrument": "DA", "level": "severe"}}, Tier.priority),
    ({"screen": {"instrument": "DA", "level": "increased"}}, Tier.follow_up),
    ({"screen": {"instrument": "DASH", "level": "high"}}, Tier.priority),
    ({"type_code": "BURG", "advocate_requested": "on_scene"}, Tier.immediate),
    ({"advocate_requested": "phone"}, Tier.priority),
]


def test_tiers_follow_the_product_table() -> None:
    for fields, tier in TIER_CASES:
        assert triage(event(**fields), DEFAULT_CODE_MAP).tier == tier, fields


def test_an_agency_code_maps_through_its_code_map() -> None:
    result = triage(event(type_code=" 415   fam "), {"415 FAM": "DVNA"})
    assert (result.dv, result.apco_code, result.tier) == (True, "DVNA", Tier.follow_up)
