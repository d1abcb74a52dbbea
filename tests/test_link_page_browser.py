"""The advocate's page for one callout, in a real headless Chromium at a phone's width, as the advocate uses it:
nothing personal before they accept; after, the PIN; then the details and the masked call buttons; five wrong
PINs lock it. Screenshots go to test-artifacts/link-page/."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, ViewportSize

from services.alerts.worker import Worker
from tests.conftest import PUBLIC_URL, csp_violations
from tests.factories import PHONES, dv_event, post_event
from tests.fake_twilio import FakeTwilio
from tests.test_phones import link_of, program, prove_with_pin

SCREENSHOTS = Path(__file__).parent.parent / "test-artifacts" / "link-page"
PHONE: ViewportSize = {"width": 390, "height": 844}  # a common phone's viewport
pytestmark = pytest.mark.usefixtures("program")
__all__ = ["program"]  # the fixture, shared with the page's HTTP tests


@pytest.fixture
async def posted(client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio) -> tuple[str, str]:
    """Luis has proven his phone and chosen PIN 4821; a DV call has just texted him his link. The link, and the
    incident's reference."""
    await prove_with_pin(worker, fake_twilio, client)
    ref: str = (await post_event(client, dv_event())).json()["incident_ref"]
    await worker.run_once()
    return link_of(fake_twilio.to(PHONES["luis"])[0]), ref


@pytest.fixture
def link(posted: tuple[str, str]) -> str:
    return posted[0]


async def phone_page(browser: Browser) -> Page:
    context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    return await context.new_page()


async def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


async def fits_the_phone(page: Page) -> bool:
    """Nothing wider than the screen: no sideways scrolling on a phone."""
    width: int = await page.evaluate("document.documentElement.scrollWidth")
    return width <= PHONE["width"]


async def test_an_advocate_accepts_gives_the_pin_sees_the_details_and_calls_the_survivor(
    served: str,
    browser: Browser,
    posted: tuple[str, str],
    client: httpx.AsyncClient,
    admin: dict[str, str],
    worker: Worker,
    fake_twilio: FakeTwilio,
) -> None:
    page, (link, ref) = await phone_page(browser), posted
    refused = csp_violations(page)

    await page.goto(served + link)
    before = await page.inner_text("body")
    await shot(page, "1-before-accepting")
    await page.get_by_role("button", name="Accept").click()
    asked = await page.inner_text("body")
    await shot(page, "2-pin-asked")
    await page.fill("input[name=pin]", "4821")
    await page.get_by_role("button", name="Show the details").click()
    details = await page.inner_text("body")
    await shot(page, "3-details")
    await page.get_by_role("button", name="Call the survivor").click()
    calling = await page.inner_text("body")
    await page.get_by_role("button", name="Call the survivor").click()  # pressed again while it rings
    await worker.run_once()
    [call] = [c for c in fake_twilio.to(PHONES["luis"], "voice") if "<Dial" in c.body]  # one, pressed twice
    await fake_twilio.bridge(call, "completed", seconds=95)
    await page.goto(served + link)  # (a reload would post the call again)
    await shot(page, "4-after-the-call")

    assert "Accept" in before and "Decline" in before and "Ziggurat" not in before and "+1202" not in before
    assert "Enter your PIN" in asked and "Ziggurat" not in asked
    assert "1234 Ziggurat Lane" in details and "Call the hotline" in details
    assert "Call the survivor" in details and "Never call the 911 callback number" in details
    assert "calling you" in calling.lower()
    _, caller_id, number = call.dial
    assert number == "+12025557777" and caller_id != PHONES["luis"]  # the safe contact, from the program's number
    assert await fits_the_phone(page)
    assert refused == []  # the CSP broke nothing: the page's style applied
    stages = [e["stage"] for e in (await client.get(f"/v1/incidents/{ref}/timeline", headers=admin)).json()["entries"]]
    assert "survivor_contacted" in stages


async def test_five_wrong_pins_lock_the_page_in_the_browser(
    served: str, browser: Browser, link: str, worker: Worker, fake_twilio: FakeTwilio
) -> None:
    page = await phone_page(browser)
    await page.goto(served + link)
    await page.get_by_role("button", name="Accept").click()

    for _ in range(5):
        await page.fill("input[name=pin]", "0000")
        await page.get_by_role("button", name="Show the details").click()
    locked = await page.inner_text("body")
    await shot(page, "5-locked")
    await worker.run_once()

    assert "locked after five wrong PINs" in locked and "Ziggurat" not in locked
    assert await page.locator("input[name=pin]").count() == 0  # nothing left to try
    assert any("locked" in m.body for m in fake_twilio.to(PHONES["ada"]))
    assert await fits_the_phone(page)


async def test_a_forwarded_link_opened_elsewhere_shows_nothing_personal(
    served: str, browser: Browser, link: str
) -> None:
    advocate, forwarded_to = await phone_page(browser), await phone_page(browser)  # two browsers, two cookie jars
    await advocate.goto(served + link)
    await advocate.get_by_role("button", name="Accept").click()
    await advocate.fill("input[name=pin]", "4821")
    await advocate.get_by_role("button", name="Show the details").click()

    await forwarded_to.goto(served + link)
    elsewhere = await forwarded_to.inner_text("body")
    await shot(forwarded_to, "6-forwarded")

    assert "1234 Ziggurat Lane" in await advocate.inner_text("body")
    assert "Ziggurat" not in elsewhere and "Enter your PIN" in elsewhere
    assert PUBLIC_URL not in elsewhere
