"""The overrides, escalation and hotline pages in a real headless Chromium. On a phone, a supervisor puts Luis on
call tonight in Dana's place, sees it on the week with its reason, and takes it back; makes the immediate tier
escalate their own way in one area and finds it listed as the area's; changes the hotline. At a desk, a coordinator
types an override on the night the clocks go back and is told which time comes twice, then adds a step to a tier for
every area. No script, nothing the CSP refuses. Screenshots go to test-artifacts/overrides/."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, Page, ViewportSize

from shared.auth import Role
from shared.clock import FakeClock
from tests.conftest import csp_violations
from tests.factories import issued_token
from tests.test_link_page_browser import fits_the_phone, phone_page
from tests.test_program_pages import program

SCREENSHOTS = Path(__file__).parent.parent / "test-artifacts" / "overrides"
DESK = ViewportSize(width=1280, height=900)
pytestmark = pytest.mark.usefixtures("program")
__all__ = ["program"]  # the fixture: New York's program, Dana primary, Luis on no shift; Monday 16 Nov 07:00 EST


async def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


async def signed_in(page: Page, base: str, token: str) -> None:
    await page.goto(f"{base}/dashboard/sign-in")
    await page.fill("input[name=token]", token)
    await page.click("form.signin button")
    await page.wait_for_url(f"{base}/dashboard")
    await page.goto(f"{base}/dashboard/program/metro")


async def test_on_a_phone_a_supervisor_covers_tonight_changes_an_area_s_escalation_and_the_hotline(
    served: str, browser: Browser, app: FastAPI, clock: FakeClock
) -> None:
    token = await issued_token(app.state.db, role=Role.supervisor, label="S. Visor", agency="metro", now=clock.now())
    page = await phone_page(browser)
    refused = csp_violations(page)
    await signed_in(page, served, token)

    await page.click("header >> text=Overrides")
    assert "No overrides ahead." in await page.inner_text("main")
    await page.select_option("#role", "primary")
    await page.select_option("#advocate", "luis")
    await page.select_option("#replaces", "dana")
    await page.fill("#starts_date", "2026-11-16")
    await page.fill("#starts_time", "20:00")
    await page.fill("#ends_date", "2026-11-16")  # the morning after forgotten: refused, said by the field
    await page.fill("#ends_time", "08:00")
    await page.fill("#note", "Dana at a training")
    await page.click("form.override button")
    assert await page.inner_text("#ends_at-problem") == "The end must be after the start"
    assert await page.input_value("#note") == "Dana at a training"  # kept as typed
    await shot(page, "phone-override-refused")

    await page.fill("#ends_date", "2026-11-17")
    await page.click("form.override button")
    when = "as primary in area 1 from Mon 16 Nov 20:00 to Tue 17 Nov 08:00 EST"
    assert f"Saved: luis covers dana {when}." in await page.inner_text("main")
    listed = page.locator("li[data-override]")
    assert await listed.count() == 1 and f"Luis covers Dana {when}" in await listed.inner_text()
    assert "Note: Dana at a training" in await listed.inner_text()
    assert await fits_the_phone(page)
    await shot(page, "phone-overrides")

    await listed.locator("text=See it on the week").click()
    tonight = page.locator("section.day", has_text="Mon 16 Nov").locator(".stretch", has_text="luis")
    assert "20:00 to 24:00" in await tonight.inner_text()
    assert "primary by override until Tue 17 Nov 08:00, covering for dana" in await tonight.inner_text()
    assert await fits_the_phone(page)
    await shot(page, "phone-week-with-the-override")

    await page.go_back()
    await page.locator("li[data-override]").get_by_label("Yes, remove it").check()
    await page.locator("li[data-override]").get_by_role("button", name="Remove").click()
    assert "Removed override" in await page.inner_text("main") and await page.locator("li[data-override]").count() == 0
    await page.goto(f"{served}/dashboard/program/metro/week?area=1&start=2026-11-16")
    assert await page.locator("section.day", has_text="Mon 16 Nov").locator(".stretch", has_text="luis").count() == 0

    await page.click("header >> text=Escalation")
    area_immediate = "div.policy[data-tier=immediate][data-scope='1']"
    assert "Source: default" in await page.inner_text(area_immediate)
    await page.click(f"{area_immediate} >> text=Change")
    assert await page.input_value("#scope") == "1" and await page.input_value("#tier") == "immediate"
    await page.fill("#step-0-wait", "1")  # the primary gets one minute, not two, in this area
    await page.uncheck("input[name='steps.1.via'][value=voice]")  # and the backup a text only
    await page.click("form.policy button[value=save]")
    assert "Saved: Immediate in area 1." in await page.inner_text("main")
    mine = await page.inner_text(area_immediate)
    assert "Source: area" in mine and "text and call the primary; wait 1 min" in mine
    assert "text the backup; wait 2 min" in mine and "Go back to the default" in mine
    assert "Source: default" in await page.inner_text("div.policy[data-tier=immediate][data-scope='']")
    assert await fits_the_phone(page)
    await shot(page, "phone-policies")

    await page.click("header >> text=Hotline")
    await page.fill("#hotline", "+1 202 555 0111")
    await page.fill("#feed_silence_minutes", "90")
    await page.click("form.program button")
    assert "Saved the hotline and the feed watch." in await page.inner_text("main")
    assert (
        await page.input_value("#hotline") == "+12025550111" and await page.input_value("#feed_silence_minutes") == "90"
    )
    assert await fits_the_phone(page)
    await shot(page, "phone-hotline")
    assert refused == []


async def test_at_a_desk_a_time_the_clocks_repeat_is_refused_and_a_step_is_added_for_every_area(
    served: str, browser: Browser, issued_admin: str
) -> None:
    page = await browser.new_page(viewport=DESK)
    refused = csp_violations(page)
    await signed_in(page, served, issued_admin)

    await page.goto(f"{served}/dashboard/program/metro/overrides")
    await page.select_option("#role", "backup")
    await page.select_option("#advocate", "luis")
    await page.fill("#starts_date", "2027-11-07")
    await page.fill("#starts_time", "01:30")
    await page.fill("#ends_date", "2027-11-07")
    await page.fill("#ends_time", "09:00")
    await page.click("form.override button")
    problem = await page.inner_text("#starts_at-problem")
    assert "01:30 comes twice on Sun 07 Nov 2027 in America/New_York (EDT, then EST)" in problem
    assert await page.locator("li[data-override]").count() == 0
    await shot(page, "desktop-override-refused")

    await page.goto(f"{served}/dashboard/program/metro/policies")
    await page.click("div.policy[data-tier=priority][data-scope=''] >> text=Change")
    await page.click("form.policy button[value=add-row]")  # the default's four steps, an empty row, one more
    assert await page.locator("fieldset.step").count() == 6
    await page.check("input[name='steps.4.notify'][value=hotline]")
    await page.check("input[name='steps.4.via'][value=voice]")
    await page.fill("#step-4-wait", "5")
    await page.click("form.policy button[value=save]")
    assert "Saved: Priority in every area." in await page.inner_text("main")
    every = await page.inner_text("div.policy[data-tier=priority][data-scope='']")
    assert "Source: agency" in every and "call the hotline; wait 5 min" in every
    in_area = await page.inner_text("div.policy[data-tier=priority][data-scope='1']")
    assert "Source: agency" in in_area and "call the hotline; wait 5 min" in in_area  # the area follows it
    await shot(page, "desktop-policies")

    await page.click("header >> text=Hotline")
    await shot(page, "desktop-hotline")
    assert refused == []
