"""Change a rotation and see the calendar move, in a real headless Chromium: a supervisor on a phone sees on the
week who the rotation puts on call, reorders its turns on the rotations page (a wrong key first, refused by its
field), and finds the other person on those days; at a desk they upload a small calendar through the form, are
told what it holds and what names nobody, and find its event on the week. The pages' own style holds under the
strict CSP, with no script. Screenshots go to test-artifacts/rotations/."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, FilePayload, Locator, Page

from shared.auth import Role
from shared.clock import FakeClock
from tests.factories import issued_token
from tests.test_link_page_browser import fits_the_phone, phone_page
from tests.test_program_pages_browser import DESK, signed_in
from tests.test_rotation_pages import EVENINGS, program

SCREENSHOTS = Path(__file__).parent.parent / "test-artifacts" / "rotations"
pytestmark = pytest.mark.usefixtures("program")
__all__ = ["program"]  # the fixture: New York's program, Dana and Luis taking daily turns as primary


async def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def day_of(page: Page, day: str) -> Locator:
    """The week's day headed `day` (another day's reasons may name it: "until Tue 17 Nov 09:00")."""
    return page.locator("section.day").filter(has=page.get_by_role("heading", name=day, exact=True))


async def on_the_day(page: Page, day: str, role: str) -> list[str]:
    """Each stretch of `role` on the week's `day`: "09:00 to 24:00 dana"."""
    stretches = day_of(page, day).locator(f".stretch[data-role={role}]")
    return [
        f"{await s.locator('.time').inner_text()} {await s.locator('.who').inner_text()}" for s in await stretches.all()
    ]


async def test_a_supervisor_changes_a_rotation_and_sees_the_week_move_then_imports_a_calendar(
    served: str, browser: Browser, app: FastAPI, clock: FakeClock
) -> None:
    token = await issued_token(app.state.db, role=Role.supervisor, label="M. Lee", agency="metro", now=clock.now())
    refused: list[str] = []
    phone = await phone_page(browser)
    await signed_in(phone, served, token, refused)

    await phone.goto(f"{served}/dashboard/program/metro/week?area=1&start=2026-11-16")
    assert await on_the_day(phone, "Mon 16 Nov", "primary") == ["00:00 to 09:00 dana", "09:00 to 24:00 luis"]
    assert await on_the_day(phone, "Tue 17 Nov", "primary") == ["00:00 to 09:00 luis", "09:00 to 24:00 dana"]
    assert await fits_the_phone(phone)
    await shot(phone, "phone-week-before")

    await phone.click("header >> text=Rotations and calendars")
    primaries = phone.locator(".rotation[data-name=primaries]")
    assert "On turn now: Dana (dana) until Mon 16 Nov 09:00 EST" in await primaries.inner_text()
    assert await fits_the_phone(phone)
    await shot(phone, "phone-rotations")

    await phone.click("text=Change or remove primaries")
    await phone.fill("#rotation-participants", "luis, dnaa")  # a slip of the thumb: refused by its field
    await phone.click("form.rotation button")
    assert "unknown advocate 'dnaa'" in await phone.inner_text("#rotation-participants-problem")
    assert await phone.input_value("#rotation-participants") == "luis, dnaa"  # kept as typed
    assert await fits_the_phone(phone)
    await shot(phone, "phone-rotation-refused")
    await phone.fill("#rotation-participants", "luis, dana")
    await phone.click("form.rotation button")
    assert "Saved rotation primaries in area 1." in await phone.inner_text("main")
    assert "On turn now: Luis (luis) until Mon 16 Nov 09:00 EST" in await primaries.inner_text()
    await shot(phone, "phone-rotation-saved")

    await phone.click("text=The week in area 1")
    assert await on_the_day(phone, "Mon 16 Nov", "primary") == ["00:00 to 09:00 luis", "09:00 to 24:00 dana"]
    assert await on_the_day(phone, "Tue 17 Nov", "primary") == ["00:00 to 09:00 dana", "09:00 to 24:00 luis"]
    assert await fits_the_phone(phone)
    await shot(phone, "phone-week-after")

    desk = await browser.new_page(viewport=DESK)
    await signed_in(desk, served, token, refused)
    await desk.goto(f"{served}/dashboard/program/metro/rotations")
    await desk.set_input_files(
        "#calendar-file", files=FilePayload(name="evenings.ics", mimeType="text/calendar", buffer=EVENINGS.encode())
    )
    await desk.select_option("#calendar-area", "1")
    await desk.select_option("#calendar-role", "backup")
    await desk.fill("#calendar-name", "evenings")
    await desk.click("form.calendar button")
    note = await desk.inner_text("p.note")
    assert "Imported calendar evenings into area 1: 2 events, 1 of them naming nobody who covers the area" in note
    evenings = await desk.inner_text(".calendar[data-name=evenings]")
    assert "2 events" in evenings and "Volunteer training" in evenings
    await shot(desk, "desktop-calendar-imported")

    await desk.click("text=The week in area 1")
    assert "18:00 to 23:00 luis" in await on_the_day(desk, "Thu 19 Nov", "backup")
    thursday = await day_of(desk, "Thu 19 Nov").inner_text()
    assert "backup by calendar 'evenings': Luis backup evening" in thursday
    columns = await desk.eval_on_selector_all("section.day", "days => new Set(days.map(d => d.offsetTop)).size")
    assert columns == 1  # seven columns side by side
    await shot(desk, "desktop-week")
    assert refused == []
