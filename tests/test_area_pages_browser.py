"""A gap appears and is texted, in a real headless Chromium: a supervisor on a phone opens area 1's weekly schedule,
removes the backup's Tuesday night shift, is told what changed, and sees the gap red on the week and on the board;
the alerts worker's watch then texts the supervisor about that gap, once. At a desk, the same supervisor adds a
shift that covers it again. The pages' own style holds under the strict CSP, with no script. Screenshots go to
test-artifacts/areas/."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, Page

from services.alerts.worker import Worker
from shared.auth import Role
from shared.clock import FakeClock
from tests.factories import PHONES, issued_token
from tests.fake_twilio import FakeTwilio
from tests.test_area_pages import program
from tests.test_link_page_browser import fits_the_phone, phone_page
from tests.test_program_pages_browser import DESK, RED, background, signed_in

SCREENSHOTS = Path(__file__).parent.parent / "test-artifacts" / "areas"
# Tuesday 17 November 2026, 08:30 in New York: the morning before the night whose backup shift is removed.
TUESDAY_MORNING = datetime(2026, 11, 17, 13, 30, tzinfo=UTC)
LUIS_TUESDAY_NIGHT = "section[data-day=tue] li[data-role=backup][data-advocate=luis]"
pytestmark = pytest.mark.usefixtures("program")
__all__ = ["program"]  # the fixture: New York's area 1 covered all week, luis the backup by night


async def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


async def test_a_supervisor_removes_a_night_shift_on_a_phone_sees_the_gap_and_is_texted_about_it_once(
    app: FastAPI, served: str, browser: Browser, clock: FakeClock, worker: Worker, fake_twilio: FakeTwilio
) -> None:
    clock.set(TUESDAY_MORNING)
    token = await issued_token(app.state.db, role=Role.supervisor, label="Ada", agency="metro", now=clock.now())
    refused: list[str] = []
    page = await phone_page(browser)
    await signed_in(page, served, token, refused)
    assert await page.locator("#area-1 li.gap").count() == 0  # covered all week

    await page.click("header >> text=Areas and schedules")
    assert "4 advocates cover it" in await page.inner_text("li[data-area='1']")
    assert await fits_the_phone(page)
    await shot(page, "phone-areas")
    await page.click("li[data-area='1'] >> text=Weekly schedule")
    assert "backup 20:00 to wed 08:00 luis" in (await page.inner_text(LUIS_TUESDAY_NIGHT)).lower()  # capitalized
    assert await fits_the_phone(page)
    await shot(page, "phone-schedule")

    await page.click(f"{LUIS_TUESDAY_NIGHT} button")

    assert "Removed luis as backup, Tue 20:00 to Wed 08:00." in await page.inner_text("p.note")
    assert await page.locator(LUIS_TUESDAY_NIGHT).count() == 0
    assert await page.locator("section[data-day=wed] li[data-advocate=luis]").count() == 1  # the other nights stay
    await shot(page, "phone-removed")
    await page.click("a.week-link")
    tuesday = page.locator("section.day", has_text="Tue 17 Nov").locator(".stretch.gap")
    assert await tuesday.count() == 1
    assert "backup 20:00 to 24:00 nobody" in " ".join((await tuesday.inner_text()).split()).lower()
    assert await tuesday.evaluate("e => getComputedStyle(e).backgroundColor") == RED
    wednesday = page.locator("section.day", has_text="Wed 18 Nov").locator(".stretch.gap")
    assert "00:00 to 08:00" in await wednesday.inner_text()
    assert await fits_the_phone(page)
    await shot(page, "phone-week")
    await page.click("header >> text=Board")
    assert "backup: Tue 17 Nov 20:00 to Wed 18 Nov 08:00 EST" in await page.inner_text("#area-1 li.gap >> nth=0")
    assert await background(page, "#area-1 li.gap") == RED
    await shot(page, "phone-board")

    for _ in range(2):  # the watch looks again: what it told, it does not tell twice
        await worker.watch_contacts()
        await worker.run_once()

    told = [m for m in fake_twilio.texts if "nobody is on call" in m.body]
    assert [(m.to, m.body) for m in told] == [
        (
            PHONES["ada"],
            "Callout: nobody is on call as backup in area 1 from 2026-11-17 20:00 EST to 2026-11-18 08:00 EST. "
            "Add cover (an override, on the program's Overrides page): until then its calls skip that role.",
        )
    ]

    desk = await browser.new_page(viewport=DESK)
    await signed_in(desk, served, token, refused)
    await desk.goto(f"{served}/dashboard/program/metro/areas")
    await shot(desk, "desktop-areas")
    await desk.goto(f"{served}/dashboard/program/metro/areas/1/schedule")
    await desk.select_option("#advocate", "mei")
    await desk.select_option("#role", "backup")
    await desk.select_option("#day", "tue")
    await desk.fill("#start", "20:00")
    await desk.fill("#end", "08:00")
    await desk.click("form.shift button")
    assert "Added mei as backup, Tue 20:00 to Wed 08:00." in await desk.inner_text("p.note")
    columns = await desk.eval_on_selector_all("section.day", "days => new Set(days.map(d => d.offsetTop)).size")
    assert columns == 1  # seven days side by side
    await shot(desk, "desktop-schedule")
    await desk.click("a.week-link")
    assert await desk.locator("section.day", has_text="Tue 17 Nov").locator(".stretch.gap").count() == 0
    await shot(desk, "desktop-week")
    assert refused == []
