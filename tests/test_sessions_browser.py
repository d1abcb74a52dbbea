"""The dashboard's sessions in a real headless Chromium: signing in and out, a cookie kept from before the
sign-out replayed, a session left idle, another site's sign-in form, and a token revoked while it is signed in."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from click.testing import CliRunner
from playwright.async_api import Browser, BrowserContext, Page, Route

from callout.cli import main
from shared.clock import FakeClock
from shared.sessions import COOKIE

EVIL = "http://evil.example"


async def sign_in(context: BrowserContext, base: str, token: str) -> Page:
    page = await context.new_page()
    await page.goto(f"{base}/dashboard")
    await page.fill("input[name=token]", token)
    await page.click("form.signin button")
    await page.wait_for_selector("#figures")
    return page


async def session_cookies(context: BrowserContext) -> list[str]:
    return [c["value"] for c in await context.cookies() if c["name"] == COOKIE]


async def test_signing_out_ends_the_session_and_its_cookie_replayed_opens_nothing(
    served: str, browser: Browser, issued_admin: str
) -> None:
    context = await browser.new_context()
    page = await sign_in(context, served, issued_admin)
    [kept] = await session_cookies(context)
    shown_as = await page.inner_text("form.account span")

    await page.click("form.account button")
    await page.wait_for_selector("form.signin")
    signed_out = await page.content()
    replaying = await browser.new_context()
    await replaying.add_cookies([{"name": COOKIE, "value": kept, "url": f"{served}/dashboard"}])
    replayed = await replaying.new_page()
    await replayed.goto(f"{served}/dashboard")

    assert shown_as == "A. Admin"
    assert "You are signed out." in signed_out and await session_cookies(context) == []
    assert replayed.url == f"{served}/dashboard/sign-in?ended=1"
    assert await replayed.locator("form.signin").count() == 1 and await replayed.locator("#figures").count() == 0


async def test_a_session_left_idle_ends_and_says_so(
    served: str, browser: Browser, issued_admin: str, clock: FakeClock
) -> None:
    page = await sign_in(await browser.new_context(), served, issued_admin)
    clock.advance(timedelta(minutes=31))
    await page.reload()

    assert page.url == f"{served}/dashboard/sign-in?ended=1"
    assert "Your session ended. Sign in again." in await page.content()
    assert await page.locator("#figures").count() == 0


async def test_another_sites_sign_in_form_is_refused_and_sets_no_cookie(
    served: str, browser: Browser, issued_admin: str
) -> None:
    """Login CSRF: a page elsewhere posts a token of the attacker's choosing to the sign-in."""
    forged = f"""<form method=post action="{served}/dashboard/sign-in">
    <input name=token value="{issued_admin}"><button>Win a prize</button></form>"""

    async def evil_site(route: Route) -> None:
        await route.fulfill(status=200, content_type="text/html", body=forged)

    context = await browser.new_context()
    await context.route(f"{EVIL}/**", evil_site)
    page = await context.new_page()
    await page.goto(f"{EVIL}/prize")
    async with page.expect_navigation() as navigating:
        await page.click("button")
    landed = await navigating.value

    assert landed is not None and landed.status == 403
    assert "the form was sent from another site" in await page.content()
    assert await session_cookies(context) == []


async def test_revoking_a_token_ends_its_session_in_the_browser(
    served: str, browser: Browser, issued_admin: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = await sign_in(await browser.new_context(), served, issued_admin)
    monkeypatch.setenv("CALLOUT_DATABASE_URL", database_url)
    revoked = await asyncio.to_thread(CliRunner().invoke, main, ["token", "revoke", "1"])
    await page.reload()

    assert revoked.exit_code == 0, revoked.output
    assert page.url == f"{served}/dashboard/sign-in?ended=1"
    await page.fill("input[name=token]", issued_admin)
    await page.click("form.signin button")
    await page.wait_for_selector("form.signin .note")
    assert "That token was revoked." in await page.inner_text("form.signin .note")
