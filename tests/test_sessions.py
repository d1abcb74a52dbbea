"""The dashboard's sessions over HTTP: a sign-in opens a server-side session whose random id alone is in the
cookie; sign-out, idling, the absolute limit and a token's revocation or expiry end it; a form sent from another
site is refused; and the audit names the token that acted (its id and label), with the client's address and user
agent, for every view, change and sign-in."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import timedelta
from http.cookies import SimpleCookie
from typing import NamedTuple

import httpx
import pytest
from click.testing import CliRunner, Result
from fastapi import FastAPI

from callout.cli import main
from shared.audit import GENESIS
from shared.auth import BOOTSTRAP_LABEL, Role, hash_token
from shared.clock import FakeClock
from shared.sessions import COOKIE
from tests.conftest import ADMIN_TOKEN, MONDAY_NOON, PUBLIC_URL
from tests.factories import dv_event, issued_token, make_program, post_event
from tests.test_eido import fetch
from tests.test_reports import PERIOD

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"


@pytest.fixture
async def supervisor(app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], clock: FakeClock) -> str:
    """Metro's program, and a token issued to its supervisor J. Doe (token 1)."""
    await make_program(client, admin)
    return await issued_token(app.state.db, role=Role.supervisor, label="J. Doe", agency="metro", now=clock.now())


async def sign_in(client: httpx.AsyncClient, token: str, **headers: str) -> httpx.Response:
    response = await client.post(
        "/dashboard/sign-in", data={"token": token}, headers={"User-Agent": BROWSER, **headers}
    )
    client.cookies.clear()  # each request below says which cookie it sends
    return response


def cookies_set(response: httpx.Response) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        jar.load(header)
    return jar


def session_of(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    return cookies_set(response)[COOKIE].value


def with_session(session_id: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={session_id}", "User-Agent": BROWSER}


async def dashboard(client: httpx.AsyncClient, session_id: str, path: str = "/dashboard") -> httpx.Response:
    return await client.get(path, headers=with_session(session_id))


async def cli(database_url: str, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    monkeypatch.setenv("CALLOUT_DATABASE_URL", database_url)
    return await asyncio.to_thread(CliRunner().invoke, main, list(args))


class Audited(NamedTuple):
    actor: str
    action: str
    label: str | None
    client: str | None
    user_agent: str | None
    subject: str


async def audited(database_url: str) -> list[Audited]:
    query = "SELECT actor, action, actor_label, client, user_agent, subject FROM audit_log ORDER BY seq"
    return [Audited(*row) for row in await fetch(database_url, query)]


async def test_signing_in_opens_a_session_whose_random_id_alone_is_in_the_cookie(
    client: httpx.AsyncClient, supervisor: str, database_url: str
) -> None:
    signed_in = await sign_in(client, supervisor)
    cookie = cookies_set(signed_in)[COOKIE]
    shown = await dashboard(client, cookie.value)

    assert signed_in.headers["location"] == "/dashboard"
    assert cookie.value != supervisor and supervisor not in signed_in.headers.get("set-cookie", "")
    assert cookie["httponly"] and cookie["secure"] and cookie["samesite"] == "strict" and cookie["path"] == "/dashboard"
    stored = await fetch(database_url, "SELECT id_hash, token_id FROM dashboard_sessions")
    assert stored == [(hash_token(cookie.value), 1)]  # only its hash, and whose it is
    assert shown.status_code == 200 and 'id="figures"' in shown.text
    assert "J. Doe" in shown.text and 'action="/dashboard/sign-out"' in shown.text


async def test_the_cookie_is_secure_whenever_the_public_url_is_https_even_when_the_request_came_as_http(
    app: FastAPI, supervisor: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a TLS proxy reaches the service: plain http inside, https outside.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://reports:8000") as inside:
        behind_tls = cookies_set(await sign_in(inside, supervisor))[COOKIE]
        monkeypatch.setattr(app.state.settings, "public_url", "http://localhost:8000")
        plain = cookies_set(await sign_in(inside, supervisor))[COOKIE]

    assert behind_tls["secure"] is True
    assert not plain["secure"]  # a development machine on plain http still signs in


async def test_signing_out_ends_the_session_and_its_cookie_is_refused_after(
    client: httpx.AsyncClient, supervisor: str, database_url: str
) -> None:
    await post_event(client, dv_event())
    session_id = session_of(await sign_in(client, supervisor))
    out = await client.post("/dashboard/sign-out", headers=with_session(session_id))
    replayed = [
        await dashboard(client, session_id, path)
        for path in ("/dashboard", "/dashboard/export.csv", "/dashboard/incidents/INC-ANY")
    ]
    told = await client.get(replayed[0].headers["location"])

    assert (out.status_code, out.headers["location"]) == (303, "/dashboard/sign-in?out=1")
    assert cookies_set(out)[COOKIE]["max-age"] == "0"  # the browser drops it
    assert await fetch(database_url, "SELECT * FROM dashboard_sessions") == []
    assert [(r.status_code, r.headers["location"]) for r in replayed] == [(303, "/dashboard/sign-in?ended=1")] * 3
    assert "Your session ended. Sign in again." in told.text
    assert ("supervisor:token-1", "sign-out") in [r[:2] for r in await audited(database_url)]


async def test_signing_in_again_ends_the_session_before(
    client: httpx.AsyncClient, supervisor: str, database_url: str
) -> None:
    first = session_of(await sign_in(client, supervisor))
    second = session_of(await sign_in(client, supervisor, Cookie=f"{COOKIE}={first}"))

    assert await fetch(database_url, "SELECT id_hash FROM dashboard_sessions") == [(hash_token(second),)]
    assert (await dashboard(client, first)).status_code == 303


async def test_a_token_in_a_cookie_is_no_session(client: httpx.AsyncClient, supervisor: str) -> None:
    """What the dashboard once kept in its cookie, the raw token, opens nothing now."""
    as_before = await client.get("/dashboard", headers={"Cookie": f"callout_token={supervisor}"})
    as_session = await client.get("/dashboard", headers={"Cookie": f"{COOKIE}={supervisor}"})

    assert (as_before.status_code, as_before.headers["location"]) == (303, "/dashboard/sign-in")
    assert (as_session.status_code, as_session.headers["location"]) == (303, "/dashboard/sign-in?ended=1")


async def test_a_session_ends_after_30_minutes_unused(
    client: httpx.AsyncClient, supervisor: str, clock: FakeClock
) -> None:
    session_id = session_of(await sign_in(client, supervisor))
    seen = []
    for minutes in (29, 29, 31):  # each use starts the idle time again
        clock.advance(timedelta(minutes=minutes))
        seen.append((await dashboard(client, session_id)).status_code)

    assert seen == [200, 200, 303]


async def test_a_session_ends_12_hours_after_sign_in_however_busy(
    client: httpx.AsyncClient, supervisor: str, clock: FakeClock
) -> None:
    session_id = session_of(await sign_in(client, supervisor))
    busy = []
    for _ in range(12 * 3 - 1):  # every twenty minutes until 11 h 40 min
        clock.advance(timedelta(minutes=20))
        busy.append((await dashboard(client, session_id)).status_code)
    clock.advance(timedelta(minutes=20))
    at_twelve_hours = await dashboard(client, session_id)

    assert set(busy) == {200}
    assert at_twelve_hours.status_code == 303


async def test_the_idle_limit_is_a_setting(
    app: FastAPI, client: httpx.AsyncClient, supervisor: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app.state.settings, "session_idle_minutes", 5)
    session_id = session_of(await sign_in(client, supervisor))
    clock.advance(timedelta(minutes=6))

    assert (await dashboard(client, session_id)).status_code == 303


@pytest.mark.parametrize(
    "elsewhere",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},  # a sandboxed frame, a data: URL
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "same-site", "Origin": "https://reports.callout.example.org"},  # a sibling subdomain
    ],
)
async def test_a_sign_in_sent_from_another_site_is_refused_and_audited(
    client: httpx.AsyncClient, supervisor: str, database_url: str, elsewhere: dict[str, str]
) -> None:
    """Login CSRF: another site's form signing this browser in as someone the attacker chose."""
    refused = await sign_in(client, supervisor, **elsewhere)

    assert refused.status_code == 403 and "the form was sent from another site" in refused.text
    assert COOKIE not in cookies_set(refused)
    assert await fetch(database_url, "SELECT * FROM dashboard_sessions") == []
    [(detail,)] = await fetch(database_url, "SELECT detail FROM audit_log WHERE action = 'sign-in-failed'")
    assert json.loads(detail)["reason"] == "cross-site request"


@pytest.mark.parametrize(
    "own",
    [
        {"Sec-Fetch-Site": "same-origin", "Origin": PUBLIC_URL},
        {"Origin": PUBLIC_URL},  # an older browser: no Sec-Fetch-Site
        {"Origin": "http://reports:8000"},  # the service's own address, as the request reached it
        {},  # no browser at all (a script): it has nobody's cookie to abuse
    ],
)
async def test_a_sign_in_from_our_own_page_opens_a_session(app: FastAPI, supervisor: str, own: dict[str, str]) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://reports:8000") as inside:
        signed_in = await sign_in(inside, supervisor, **own)

    assert signed_in.status_code == 303 and COOKIE in cookies_set(signed_in)


async def test_a_sign_out_sent_from_another_site_is_refused(client: httpx.AsyncClient, supervisor: str) -> None:
    session_id = session_of(await sign_in(client, supervisor))
    forged = await client.post(
        "/dashboard/sign-out", headers={**with_session(session_id), "Origin": "https://evil.example"}
    )

    assert forged.status_code == 403
    assert (await dashboard(client, session_id)).status_code == 200


async def test_the_bootstrap_admin_token_opens_no_session_and_is_named_as_shared_on_the_api(
    client: httpx.AsyncClient, admin: dict[str, str], database_url: str
) -> None:
    refused = await sign_in(client, ADMIN_TOKEN)
    await make_program(client, admin)  # the directory's changes, on the API

    assert refused.status_code == 401 and "The bootstrap admin token is for the API" in refused.text
    assert COOKIE not in cookies_set(refused)
    [failed] = [r for r in await audited(database_url) if r.action == "sign-in-failed"]
    assert failed[:3] == ("admin:bootstrap", "sign-in-failed", BOOTSTRAP_LABEL)
    changes = {r[:3] for r in await audited(database_url) if r.action == "change"}
    assert changes == {("admin:bootstrap", "change", BOOTSTRAP_LABEL)}


async def test_every_sign_in_is_audited_with_whose_token_and_from_where_and_a_wrong_one_too(
    client: httpx.AsyncClient, supervisor: str, database_url: str
) -> None:
    session_of(await sign_in(client, supervisor))
    wrong = await sign_in(client, "co_not-a-token-anyone-holds")

    assert wrong.status_code == 401 and "That token is not valid." in wrong.text
    signed = [r[:5] for r in await audited(database_url) if r.subject == "dashboard"]
    assert signed == [
        ("supervisor:token-1", "sign-in", "J. Doe", "127.0.0.1", BROWSER),
        ("unknown", "sign-in-failed", None, "127.0.0.1", BROWSER),
    ]
    assert not any("co_not-a-token" in str(row) for row in await fetch(database_url, "SELECT * FROM audit_log"))


async def test_views_and_changes_name_the_token_its_holder_and_where_from(
    app: FastAPI, client: httpx.AsyncClient, supervisor: str, clock: FakeClock, database_url: str
) -> None:
    ops = await issued_token(app.state.db, role=Role.admin, label="R. Roe", now=clock.now())
    ref = (await post_event(client, dv_event())).json()["incident_ref"]
    as_supervisor = {"Authorization": f"Bearer {supervisor}", "User-Agent": "curl/8.5"}

    await client.put(
        "/v1/directory/agencies/metro/areas/2",
        json={"name": "North"},
        headers={"Authorization": f"Bearer {ops}", "User-Agent": "callout-sync/1"},
    )
    await client.get(f"/v1/incidents/{ref}/assessments", headers=as_supervisor)
    await client.get("/v1/reports/incidents.csv", params=PERIOD, headers=as_supervisor)
    await dashboard(client, session_of(await sign_in(client, supervisor)), f"/dashboard/incidents/{ref}")

    recorded = [r[:5] for r in await audited(database_url) if "token-" in r.actor and r.action != "sign-in"]
    assert recorded == [
        ("admin:token-2", "change", "R. Roe", "127.0.0.1", "callout-sync/1"),
        ("supervisor:token-1", "view", "J. Doe", "127.0.0.1", "curl/8.5"),
        ("supervisor:token-1", "export", "J. Doe", "127.0.0.1", "curl/8.5"),
        ("supervisor:token-1", "view", "J. Doe", "127.0.0.1", BROWSER),
    ]


async def test_revoking_a_token_ends_its_sessions_and_its_use_on_the_api(
    client: httpx.AsyncClient, supervisor: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    session_id = session_of(await sign_in(client, supervisor))
    bearer = {"Authorization": f"Bearer {supervisor}"}
    before = await client.get("/v1/reports/summary", params=PERIOD, headers=bearer)
    listed = await cli(database_url, monkeypatch, "token", "list")

    revoked = await cli(database_url, monkeypatch, "token", "revoke", "1")

    assert before.status_code == 200
    assert listed.exit_code == 0 and listed.stdout.splitlines()[1].split() == [
        "1", "supervisor", "metro", f"{MONDAY_NOON:%Y-%m-%d}", f"{MONDAY_NOON + timedelta(days=365):%Y-%m-%d}",
        "active", "J.", "Doe",
    ]  # fmt: skip
    assert revoked.exit_code == 0 and revoked.stdout == "token 1 (J. Doe) revoked; 1 dashboard session(s) ended\n"
    assert (await dashboard(client, session_id)).headers["location"] == "/dashboard/sign-in?ended=1"
    after = await client.get("/v1/reports/summary", params=PERIOD, headers=bearer)
    assert (after.status_code, after.json()["detail"]) == (401, "The bearer token was revoked.")
    again = await sign_in(client, supervisor)
    assert again.status_code == 401 and "That token was revoked." in again.text
    assert ("supervisor:token-1", "sign-in-failed", "J. Doe") in [r[:3] for r in await audited(database_url)]
    assert ("cli", "change", "token revoke 1") in [(r.actor, r.action, r.subject) for r in await audited(database_url)]
    assert "revoked" in (await cli(database_url, monkeypatch, "token", "list")).stdout.splitlines()[1]


async def test_revoke_says_what_it_did_to_a_token_revoked_already_and_to_none(
    supervisor: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await cli(database_url, monkeypatch, "token", "revoke", "1")
    twice = await cli(database_url, monkeypatch, "token", "revoke", "1")
    nothing = await cli(database_url, monkeypatch, "token", "revoke", "99")

    assert twice.exit_code == 0 and "token 1 (J. Doe) was already revoked" in twice.stdout
    assert nothing.exit_code == 1 and "no token 99" in nothing.output


async def test_token_create_takes_how_many_days_the_token_works(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await cli(
        database_url, monkeypatch, "token", "create", "--role", "admin", "--label", "ops", "--days", "7"
    )
    [(lasts,)] = await fetch(database_url, "SELECT expires_at - created_at FROM api_tokens")

    assert created.exit_code == 0 and created.stdout.startswith("co_") and len(created.stdout.splitlines()) == 1
    assert lasts == timedelta(days=7)


async def test_an_expired_token_ends_its_sessions_and_its_use_on_the_api(
    app: FastAPI, client: httpx.AsyncClient, supervisor: str, clock: FakeClock
) -> None:
    brief = await issued_token(app.state.db, role=Role.admin, label="temp", now=clock.now(), life=timedelta(minutes=40))
    session_id = session_of(await sign_in(client, brief))
    clock.advance(timedelta(minutes=25))
    while_valid = await dashboard(client, session_id)
    clock.advance(timedelta(minutes=20))
    after = await dashboard(client, session_id)
    bearer = await client.get("/v1/reports/summary", params=PERIOD, headers={"Authorization": f"Bearer {brief}"})

    assert (while_valid.status_code, after.status_code) == (200, 303)
    assert (bearer.status_code, bearer.json()["detail"]) == (401, "The bearer token expired.")
    assert "That token has expired." in (await sign_in(client, brief)).text


async def test_the_chain_covers_who_and_from_where_and_keeps_records_older_than_them(
    client: httpx.AsyncClient, supervisor: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A record as written before the audit named the token's holder and the client: hashed without them.
    at = MONDAY_NOON
    fields = [GENESIS, 1, at.isoformat(), "supervisor:agency-1", "view", "timeline of INC-OLD", {}]
    old_hash = hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    await fetch(database_url, "TRUNCATE audit_log")
    await fetch(
        database_url,
        "INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev_hash, hash) "
        "VALUES (1, $1, 'supervisor:agency-1', 'view', 'timeline of INC-OLD', '{}', $2, $3)",
        at,
        GENESIS,
        old_hash,
    )
    session_of(await sign_in(client, supervisor))  # record 2, with them
    intact = await cli(database_url, monkeypatch, "audit", "verify")
    await fetch(database_url, "UPDATE audit_log SET client = '203.0.113.9' WHERE seq = 2")
    moved = await cli(database_url, monkeypatch, "audit", "verify")
    await fetch(database_url, "UPDATE audit_log SET actor_label = NULL, client = NULL, user_agent = NULL WHERE seq = 2")
    erased = await cli(database_url, monkeypatch, "audit", "verify")

    assert intact.exit_code == 0 and "2 records, chain intact" in intact.output
    assert moved.exit_code == 1 and "record 2 was altered" in moved.output
    assert erased.exit_code == 1 and "record 2 was altered" in erased.output
