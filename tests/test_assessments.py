"""Danger screens as records: every answer with "not answered" kept apart from "no", the rule and its version,
the result, and a person's override with its reason."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.intake.triage import RULES_VERSION
from tests.factories import dv_event, make_program, post_event


@pytest.fixture(autouse=True)
async def program(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await make_program(client, admin)


async def assessments(client: httpx.AsyncClient, admin: dict[str, str], ref: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/incidents/{ref}/assessments", headers=admin)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]  # a JSON body is Any


async def test_a_screen_is_kept_with_every_answer_its_rule_and_its_result(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    screen = {"instrument": "LAP", "version": "2", "answers": {"q4": "no", "q5": "yes", "q6": "not_answered"}}
    ref = (await post_event(client, dv_event(screen=screen))).json()["incident_ref"]

    [record] = await assessments(client, admin, ref)

    assert (record["instrument"], record["instrument_version"]) == ("LAP", "2")
    assert (record["rule"], record["rule_version"]) == ("LAP-2.0", RULES_VERSION)
    assert record["answers"]["q4"] == "no"
    assert record["answers"]["q6"] == "not_answered"
    assert record["answers"]["q11"] == "not_answered"  # never asked is not "no"
    assert len(record["answers"]) == 11
    assert record["screened_in"] is True
    assert record["reasons"] == ["yes to q5 (strangulation, LAP 2.0)"]
    assert record["override"] is None


async def test_the_same_screen_sent_again_is_not_a_new_assessment_a_changed_one_is(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    event = dv_event()
    ref = (await post_event(client, event)).json()["incident_ref"]
    await post_event(client, {**event, "status": "updated"})
    await post_event(client, {**event, "status": "updated", "screen": {"instrument": "DA", "level": "extreme"}})

    records = await assessments(client, admin, ref)

    assert [(r["instrument"], r["rule"], r["screened_in"]) for r in records] == [
        ("LAP", "LAP-classic", True),
        ("DA", "DA-unversioned", True),
    ]


async def test_an_override_is_recorded_with_its_reason_and_the_timeline_says_who_decided(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    screen = {"instrument": "LAP", "answers": {"q4": "yes"}}
    ref = (await post_event(client, dv_event(screen=screen))).json()["incident_ref"]
    [record] = await assessments(client, admin, ref)
    assert record["screened_in"] is False

    override = {"screened_in": True, "by": "officer", "name": "Ofc. Reyes", "reason": "visible injuries to the neck"}
    response = await client.post(
        f"/v1/incidents/{ref}/assessments/{record['id']}/override", json=override, headers=admin
    )

    assert response.status_code == 200, response.text
    assert {k: response.json()["override"][k] for k in override} == override
    assert response.json()["screened_in"] is False  # what the rule computed stays as it was
    timeline = (await client.get(f"/v1/incidents/{ref}/timeline", headers=admin)).json()["entries"]
    assert timeline[-1]["stage"] == "triaged"
    assert timeline[-1]["data"] == {
        "assessment_id": record["id"],
        "override_by": "officer",
        "screened_in": True,
        "computed": False,
    }
    assert "neck" not in str(timeline)  # the reason stays with the assessment


async def test_overrides_need_a_reason_and_a_known_assessment(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    ref = (await post_event(client, dv_event())).json()["incident_ref"]
    [record] = await assessments(client, admin, ref)
    url = f"/v1/incidents/{ref}/assessments/{record['id']}/override"

    no_reason = await client.post(url, json={"screened_in": False, "by": "advocate", "name": "Dana"}, headers=admin)
    unknown = await client.post(
        f"/v1/incidents/{ref}/assessments/999999/override",
        json={"screened_in": False, "by": "advocate", "name": "Dana", "reason": "spoke with her"},
        headers=admin,
    )
    anonymous = await client.get(f"/v1/incidents/{ref}/assessments")

    assert (no_reason.status_code, unknown.status_code, anonymous.status_code) == (422, 404, 401)
    assert (await assessments(client, admin, ref))[0]["override"] is None
