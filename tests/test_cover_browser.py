"""The cover page in a real headless Chromium at a phone's width, as advocates use it: dana asks for cover of a
shift, luis takes it from the link in his text, zoe (asked too) finds it taken, and the shift leaves dana's page.
The page's own style holds under the strict CSP (its nonce), with no script. Screenshots go to
test-artifacts/cover/."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page

from services.alerts.worker import Worker
from tests.fake_twilio import FakeTwilio
from tests.test_cover import IN_TUESDAYS_SHIFT, TUESDAY, cover_link, offer_link, primaries_at, program, texted
from tests.test_link_page_browser import PHONE, fits_the_phone, phone_page

SCREENSHOTS = Path(__file__).parent.parent / "test-artifacts" / "cover"
pytestmark = pytest.mark.usefixtures("program")
__all__ = ["program"]  # the fixture, shared with the HTTP tests of cover requests


async def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


async def opened(browser: Browser, url: str, refused: list[str]) -> Page:
    """A phone's browser on `url`, noting anything the Content-Security-Policy refused."""
    page = await phone_page(browser)
    page.on(
        "console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None
    )
    await page.goto(url)
    return page


async def test_an_advocate_asks_for_cover_and_another_takes_it_on_their_phone(
    served: str,
    browser: Browser,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    worker: Worker,
    fake_twilio: FakeTwilio,
) -> None:
    refused: list[str] = []
    link = await cover_link(fake_twilio, "dana")
    dana = await opened(browser, served + link, refused)
    own = await dana.inner_text("body")
    button_width = (await dana.get_by_role("button", name="Ask for cover").first.bounding_box() or {"width": 0})[
        "width"
    ]
    await shot(dana, "1-own-shifts")
    await dana.locator("li", has_text=TUESDAY).get_by_role("button", name="Ask for cover").click()
    asked = await dana.inner_text("body")
    await shot(dana, "2-asked")
    offers = {key: offer_link(bodies) for key, bodies in (await texted(worker, fake_twilio)).items()}

    luis = await opened(browser, served + offers["luis"], refused)
    offered = await luis.inner_text("body")
    await shot(luis, "3-offered")
    await luis.get_by_role("button", name="Take this shift").click()
    taken = await luis.inner_text("body")
    await shot(luis, "4-taken")
    zoe = await opened(browser, served + offers["zoe"], refused)
    too_late = await zoe.inner_text("body")
    await shot(zoe, "5-taken-by-someone-else")
    await dana.goto(served + link)  # (a reload would post the ask again)
    covered = await dana.inner_text("body")
    await shot(dana, "6-covered")

    assert "Your shifts, the next 14 days" in own and TUESDAY in own
    assert button_width > 0.8 * PHONE["width"] - 40  # the page's own style applies: buttons fill a phone's width
    assert "Cover asked" in asked and "Withdraw" in asked
    assert "Shifts you are asked to cover" in offered and "primary, area 1, for dana" in offered
    assert "you are on call as primary in area 1" in taken and "covering for dana" in taken
    assert "Taken by someone else" in too_late
    assert TUESDAY not in covered  # luis's now
    assert await primaries_at(client, admin, IN_TUESDAYS_SHIFT) == ["luis"]
    for page in (dana, luis, zoe):
        assert await fits_the_phone(page)
    assert refused == []
