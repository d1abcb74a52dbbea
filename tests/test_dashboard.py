"""The supervisors' dashboard in a real headless Chromium (the `browser` fixture: tests/browser.py finds it): it
signs in, draws its charts from real calls, and a filter changes them. Screenshots at desktop and phone width go
to test-artifacts/dashboard/."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page

from services.alerts.worker import Worker
from shared.clock import FakeClock
from tests.conftest import PUBLIC_URL, csp_violations
from tests.factories import PHONES, dv_event, make_program, post_event
from tests.fake_twilio import FakeTwilio

SCREENSHOTS = Path(__file__).parent.parent / "test-artifacts" / "dashboard"


@pytest.fixture(autouse=True)
async def two_calls(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, clock: FakeClock, fake_twilio: FakeTwilio
) -> None:
    """Luis accepts the first call after a minute; nobody has taken the second yet."""
    await make_program(client, admin)
    await post_event(client, dv_event())
    await worker.run_once()
    clock.advance(timedelta(seconds=60))
    await fake_twilio.text_in(f"{PUBLIC_URL}/v1/twilio/sms", PHONES["luis"], "1")
    await post_event(client, dv_event(area="1"))
    await worker.run_once()


async def sign_in(page: Page, base: str, token: str) -> None:
    await page.goto(f"{base}/dashboard")
    await page.fill("input[name=token]", token)
    await page.click("form.signin button")
    await page.wait_for_selector("#figures")


async def test_the_dashboard_draws_real_figures_and_a_filter_changes_them(
    served: str, browser: Browser, issued_admin: str
) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 1000})
    refused = csp_violations(page)
    await sign_in(page, served, issued_admin)

    assert "Calls2" in (await page.inner_text("#figures")).replace("\n", "")
    histogram = page.locator("#acceptance-histogram rect.bar")
    assert await histogram.count() == 7
    assert await page.get_attribute('#acceptance-histogram rect.bar[data-label="≤1m"]', "data-value") == "1"
    assert await page.locator("#coverage rect.bar").count() == 1
    assert await page.locator("#open-callouts tr").count() == 3  # a header and both callouts, one accepted
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / "desktop.png", full_page=True)
    async with page.expect_download() as downloading:
        await page.click("a.export")
    downloaded = Path(await (await downloading.value).path())
    exported = (await asyncio.to_thread(downloaded.read_text)).splitlines()
    assert len(exported) == 3 and exported[0].startswith("agency,date,area,tier")  # a header and the two calls

    await page.select_option("select[name=tier]", "priority")
    await page.click("form.filters button")
    await page.wait_for_load_state()

    assert "Nothing to show for this period." in await page.inner_text("#acceptance-histogram")
    assert "Calls0" in (await page.inner_text("#figures")).replace("\n", "")
    assert refused == []  # the CSP broke nothing: every page's style applied


async def test_on_a_phone_it_fits_and_opens_an_incidents_timeline(
    served: str, browser: Browser, issued_admin: str
) -> None:
    page = await browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    await sign_in(page, served, issued_admin)

    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    await page.screenshot(path=SCREENSHOTS / "phone.png", full_page=True)
    await page.click("#open-callouts a >> nth=0")
    await page.wait_for_selector("table.timeline")

    assert overflow <= 0  # nothing wider than the phone: tables scroll inside themselves
    stages = await page.locator("table.timeline td:nth-child(2)").all_inner_texts()
    assert stages[:2] == ["cad_received", "triaged"] and "acknowledged" in stages


async def test_without_a_valid_token_there_is_only_the_sign_in(served: str, browser: Browser) -> None:
    page = await browser.new_page()
    await page.goto(f"{served}/dashboard")
    await page.fill("input[name=token]", "not-a-token")
    await page.click("form.signin button")

    assert "That token is not valid." in await page.content()
    assert await page.locator("#figures").count() == 0
