"""The directory: who is on call for an area at a time, in order, speakers of the victim's language first."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import make_program

ON_CALL = "/v1/directory/agencies/metro/on-call"


async def chain(client: httpx.AsyncClient, admin: dict[str, str], **params: str) -> list[dict[str, Any]]:
    response = await client.get(ON_CALL, params={"area": "1", **params}, headers=admin)
    assert response.status_code == 200, response.text
    return response.json()["chain"]  # type: ignore[no-any-return]  # a JSON body is Any


async def test_primaries_come_before_backups_and_speakers_first(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await make_program(client, admin)

    spanish = await chain(client, admin, at="2026-11-16T12:00:00Z", language="es-MX")
    chinese = await chain(client, admin, at="2026-11-16T12:00:00Z", language="zh")
    none = await chain(client, admin, at="2026-11-16T12:00:00Z")

    assert [(c["key"], c["role"], c["language_match"]) for c in spanish] == [
        ("luis", "primary", True),
        ("dana", "primary", False),
        ("mei", "backup", False),
        ("ada", "supervisor", False),
    ]
    assert [c["key"] for c in chinese] == ["dana", "luis", "mei", "ada"]  # a speaker never jumps a role
    assert [c["language_match"] for c in none] == [None] * 4
    assert spanish[0]["reason"] == "primary on call mon 00:00 to tue 00:00; speaks es-MX"


async def test_a_night_shift_covers_past_midnight_and_the_day_shift_does_not(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    shifts = [
        {"advocate": "dana", "role": "primary", "day": "mon", "start": "08:00", "end": "20:00"},
        {"advocate": "luis", "role": "primary", "day": "mon", "start": "20:00", "end": "08:00"},
        {"advocate": "mei", "role": "primary", "day": "sun", "start": "22:00", "end": "02:00"},
    ]
    await make_program(client, admin, shifts=shifts)

    assert [c["key"] for c in await chain(client, admin, at="2026-11-16T19:59:00Z")] == ["dana"]
    assert [c["key"] for c in await chain(client, admin, at="2026-11-16T20:00:00Z")] == ["luis"]
    assert [c["key"] for c in await chain(client, admin, at="2026-11-17T07:59:00Z")] == ["luis"]
    assert [c["key"] for c in await chain(client, admin, at="2026-11-17T08:00:00Z")] == []
    # Sunday 22:00 to Monday 02:00 wraps around the end of the week.
    assert [c["key"] for c in await chain(client, admin, at="2026-11-16T01:00:00Z")] == ["mei"]


async def test_schedules_are_read_in_the_agencys_time_zone(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await make_program(client, admin, shifts=[{"advocate": "dana", "role": "primary", "day": "mon", "end": "12:00"}])
    await client.put(
        "/v1/directory/agencies/metro",
        headers=admin,
        json={"name": "Metro", "hotline": "+12025550100", "timezone": "America/Chicago"},
    )

    # Monday 11:00 in Chicago is 17:00 UTC; Monday 11:00 UTC is still Monday 05:00 in Chicago.
    assert [c["key"] for c in await chain(client, admin, at="2026-11-16T17:00:00Z")] == ["dana"]
    assert [c["key"] for c in await chain(client, admin, at="2026-11-16T18:00:00Z")] == []


async def test_an_area_nobody_covers_has_an_empty_chain_and_still_the_hotline(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await make_program(client, admin)

    response = await client.get(ON_CALL, params={"area": "99"}, headers=admin)

    assert (response.json()["chain"], response.json()["hotline"]) == ([], "+12025550100")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/directory/agencies/metro/advocates/zed", {"name": "Zed", "phone": "555-1234", "areas": ["1"]}, "phone"),
        (
            "/v1/directory/agencies/metro/advocates/zed",
            {"name": "Zed", "phone": "+15555550123", "areas": ["1"]},
            "phone",
        ),
        ("/v1/directory/agencies/metro", {"name": "M", "hotline": "+12025550100", "timezone": "Mars/Base"}, "timezone"),
        (
            "/v1/directory/agencies/metro/areas/1/schedule",
            {"shifts": [{"advocate": "dana", "role": "primary", "day": "mon", "start": "24:00"}]},
            "shifts.0.start",
        ),
    ],
)
async def test_bad_directory_input_is_a_422_naming_the_field(
    path: str,
    body: dict[str, Any],
    field: str,
    client: httpx.AsyncClient,
    admin: dict[str, str],
) -> None:
    await make_program(client, admin)

    response = await client.put(path, json=body, headers=admin)

    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]


async def test_a_schedule_naming_someone_unknown_is_refused_whole(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await make_program(client, admin)
    shifts = [
        {"advocate": "dana", "role": "primary", "day": "mon"},
        {"advocate": "ghost", "role": "backup", "day": "mon"},
    ]

    response = await client.put("/v1/directory/agencies/metro/areas/1/schedule", json={"shifts": shifts}, headers=admin)

    assert response.status_code == 422
    assert "ghost" in response.json()["detail"]
    assert len(await chain(client, admin, at="2026-11-16T12:00:00Z")) == 4  # the old schedule stands


async def test_phone_numbers_are_stored_in_e164(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await make_program(client, admin)

    response = await client.put(
        "/v1/directory/agencies/metro/advocates/ada",
        headers=admin,
        json={"name": "Ada", "phone": "+1 (202) 555-0104", "areas": ["1"]},
    )

    assert response.json()["phone"] == "+12025550104"


async def test_the_directory_needs_an_admin_token(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await make_program(client, admin)

    anonymous = await client.get(ON_CALL)
    wrong = await client.get(ON_CALL, headers={"Authorization": "Bearer nope"})

    assert (anonymous.status_code, wrong.status_code) == (401, 401)
    assert anonymous.headers["content-type"] == "application/problem+json"


async def test_an_agency_updated_keeps_the_feed_watch_its_program_set(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """The program keeps its feed watch (PUT …/program); an admin's update of the agency that does not name it
    (a new code map, say) leaves it be, and one that names it sets it."""
    await make_program(client, admin)
    watch = {"hotline": "+12025550100", "feed_silence_minutes": 45, "it_contact": "+12025550188"}
    assert (await client.put("/v1/directory/agencies/metro/program", json=watch, headers=admin)).status_code == 200
    agency = {"name": "Metro 911", "hotline": "+12025550100", "code_map": {"10-16": "DVA"}}

    updated = await client.put("/v1/directory/agencies/metro", json=agency, headers=admin)
    cleared = await client.put(
        "/v1/directory/agencies/metro", json={**agency, "feed_silence_minutes": None}, headers=admin
    )

    assert updated.status_code == 200
    assert (updated.json()["feed_silence_minutes"], updated.json()["it_contact"]) == (45, "+12025550188")
    assert (cleared.json()["feed_silence_minutes"], cleared.json()["it_contact"]) == (None, "+12025550188")
