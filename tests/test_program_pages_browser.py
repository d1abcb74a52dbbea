"""The program's pages in a real headless Chromium, at a phone's width and a desk's: a coordinator signs in with
an issued token, reads the board, adds an advocate through the form and finds them on the list, and sees a
coverage gap red on the week. The pages' own style holds under the strict CSP (its nonce), with no script.
Screenshots go to test-artifacts/program/."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, Page, ViewportSize
from sqlalchemy import select

from services.directory.models import Advocate
from shared.auth import Role
from shared.clock import FakeClock
from tests.factories import issued_token
from tests.test_link_page_browser import fits_the_phone, phone_page
from tests.test_program_pages import program

SCREENSHOTS = Path(__file__).parent.parent / "test-artifacts" / "program"
DESK = ViewportSize(width=1280, height=900)
RED = "rgb(248, 215, 218)"  # a gap's background (program_base.html)
pytestmark = pytest.mark.usefixtures("program")
__all__ = ["program"]  # the fixture: New York's program, nobody primary on Wednesdays


async def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


async def signed_in(page: Page, base: str, token: str, refused: list[str]) -> None:
    """Through the sign-in a page without a session sends to, then back to the board."""
    page.on(
        "console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None
    )
    await page.goto(f"{base}/dashboard/program/metro")
    await page.fill("input[name=token]", token)
    await page.click("form.signin button")
    await page.wait_for_url(f"{base}/dashboard")
    await page.goto(f"{base}/dashboard/program/metro")


async def background(page: Page, selector: str) -> str:
    color: str = await page.eval_on_selector(selector, "e => getComputedStyle(e).backgroundColor")
    return color


async def test_on_a_phone_a_coordinator_reads_the_board_and_adds_an_advocate(
    served: str, browser: Browser, issued_admin: str
) -> None:
    refused: list[str] = []
    page = await phone_page(browser)
    await signed_in(page, served, issued_admin, refused)

    board = await page.inner_text("#area-1")
    assert "Dana (dana)" in board and "Mei (mei)" in board and "Ada (ada)" in board
    assert "primary: Wed 18 Nov 00:00 to Thu 19 Nov 00:00 EST" in board
    assert await background(page, "#area-1 li.gap") == RED
    assert await fits_the_phone(page)
    await shot(page, "phone-board")

    await page.click("header >> text=Advocates")
    await page.fill("#key", "rosa")
    await page.fill("#name", "Rosa Diaz")
    await page.fill("#phone", "202-555-0109")  # no country code: refused, said by the field
    await page.fill("#languages", "es, en")
    await page.check("input[name=areas][value='1']")
    await page.click("form.advocate button")
    assert "+ and the country code" in await page.inner_text("#phone-problem")
    assert await page.input_value("#name") == "Rosa Diaz"  # kept as typed
    assert await page.locator("tr[data-key=rosa]").count() == 0
    await shot(page, "phone-advocate-refused")

    await page.fill("#phone", "+1 202 555 0109")
    await page.click("form.advocate button")
    assert "Saved rosa." in await page.inner_text("main")
    row = await page.inner_text("tr[data-key=rosa]")
    assert "Rosa Diaz (rosa)" in row and "+12025550109" in row and "unverified" in row
    assert await fits_the_phone(page)
    await shot(page, "phone-advocates")

    await page.goto(f"{served}/dashboard/program/metro/week?area=1&start=2026-11-16")
    assert await fits_the_phone(page)
    await shot(page, "phone-week")
    await page.click("a.month-link")
    assert "Area 1: November 2026" in await page.inner_text("h1")
    assert await page.locator(".month .blank").first.is_hidden()  # a phone lists the days, no empty cells
    assert await fits_the_phone(page)
    await shot(page, "phone-month")
    assert refused == []


async def test_on_a_desk_the_week_shows_a_gap_red(served: str, browser: Browser, issued_admin: str) -> None:
    refused: list[str] = []
    page = await browser.new_page(viewport=DESK)
    await signed_in(page, served, issued_admin, refused)
    await shot(page, "desktop-board")

    await page.click("#area-1 >> text=The week in area 1")
    await page.fill("#start", "2026-11-16")
    await page.click("form.pick button")

    wednesday = page.locator("section.day", has_text="Wed 18 Nov")
    gap = wednesday.locator(".stretch.gap")
    assert await gap.count() == 1
    assert "primary" in (await gap.inner_text()).lower() and "nobody" in await gap.inner_text()
    assert await gap.evaluate("e => getComputedStyle(e).backgroundColor") == RED
    assert await page.locator("section.day", has_text="Tue 17 Nov").locator(".stretch.gap").count() == 0
    columns = await page.eval_on_selector_all("section.day", "days => new Set(days.map(d => d.offsetTop)).size")
    assert columns == 1  # seven columns side by side
    await shot(page, "desktop-week")

    await page.click("a.next")
    assert "the week from Mon 23 Nov" in await page.inner_text("h1")

    await page.click("header >> text=Month")
    wednesdays = page.locator("section.mday.has-gap")
    assert await wednesdays.count() == 4
    assert await wednesdays.first.locator(".stretch.gap").evaluate("e => getComputedStyle(e).backgroundColor") == RED
    tops = await page.eval_on_selector_all(
        "section.mday", "days => days.slice(0, 8).map(d => Math.round(d.getBoundingClientRect().top))"
    )
    assert tops[0] < tops[1] == tops[7]  # Sunday the 1st ends the first row; the 2nd to the 8th fill the next
    await shot(page, "desktop-month")
    await wednesdays.first.locator("h3 a").click()
    assert "the week from Wed 04 Nov" in await page.inner_text("h1")
    assert refused == []


async def test_another_agency_s_supervisor_finds_nothing_of_this_one(
    served: str, browser: Browser, app: FastAPI, clock: FakeClock
) -> None:
    """Signed in as the other agency's supervisor, every page of metro's program is "not found" (as for an agency
    that does not exist), its forms change nothing, and their own agency's pages open."""
    token = await issued_token(
        app.state.db, role=Role.supervisor, label="Other's supervisor", agency="other", now=clock.now()
    )
    refused: list[str] = []
    page = await phone_page(browser)
    await signed_in(page, served, token, refused)  # lands on metro's board: not theirs
    assert "No agency 'metro'" in await page.inner_text("main")
    assert "Dana" not in await page.content()
    await shot(page, "phone-other-agency-refused")
    for path in (
        "/week?area=1",
        "/month?area=1",
        "/advocates",
        "/advocates/dana",
        "/areas",
        "/areas/1/schedule",
        "/rotations",
        "/overrides",
        "/policies",
        "/hotline",
    ):
        response = await page.goto(f"{served}/dashboard/program/metro{path}")
        assert response is not None and response.status == 404, path
        assert "No agency 'metro'" in await page.inner_text("main") and "Dana" not in await page.content(), path
    # A form of theirs, sent at metro's address, changes nothing there.
    await page.goto(f"{served}/dashboard/program/other/advocates")
    await page.eval_on_selector("form.advocate", "f => f.action = f.action.replace('/other/', '/metro/')")
    await page.fill("#key", "mallory")
    await page.fill("#name", "Mallory")
    await page.fill("#phone", "+12025550142")
    await page.click("form.advocate button")
    assert "No agency 'metro'" in await page.inner_text("main")
    async with app.state.db.sessionmaker() as session:
        assert await session.scalar(select(Advocate).where(Advocate.key == "mallory")) is None
    await page.goto(f"{served}/dashboard/program/other")
    assert "On call now" in await page.inner_text("h1")
    assert refused == []
