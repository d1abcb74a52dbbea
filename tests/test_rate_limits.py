"""Failed attempts are limited per client address — wrong sign-ins, unknown link and feed tokens, CAD posts whose
signature fails — with a 429 problem and Retry-After; another address is not held up, and legitimate CAD traffic
from one address, however much, is never limited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import PUBLIC_URL
from tests.factories import dv_event, make_program, post_event

pytestmark = pytest.mark.usefixtures("program")


@pytest.fixture
async def program(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await make_program(client, admin)


@pytest.fixture
async def elsewhere(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The same Callout, reached from another address."""
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
        yield client


def assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["status"] == 429


async def test_unknown_link_tokens_are_limited_per_address(
    client: httpx.AsyncClient, elsewhere: httpx.AsyncClient
) -> None:
    guesses = [await client.get(f"/l/guess-{n:04d}-of-a-token") for n in range(30)]

    limited = await client.get("/l/guess-9999-of-a-token")
    pin_pages = await client.get("/p/another-guess-at-a-token")  # a limit of its own
    other = await elsewhere.get("/l/guess-0000-of-a-token")

    assert {g.status_code for g in guesses} == {404}
    assert_limited(limited)
    assert pin_pages.status_code == 404 and other.status_code == 404


async def test_cad_posts_failing_their_signature_are_limited_and_good_ones_from_elsewhere_go_through(
    client: httpx.AsyncClient, elsewhere: httpx.AsyncClient
) -> None:
    forged = [
        await post_event(client, dv_event(), secret="whsec_" + "Zm9yZ2VkLXNlY3JldC1vZi1lbm91Z2g=") for _ in range(60)
    ]

    limited = await post_event(client, dv_event(), secret="whsec_" + "Zm9yZ2VkLXNlY3JldC1vZi1lbm91Z2g=")
    signed_elsewhere = await post_event(elsewhere, dv_event())

    assert {f.status_code for f in forged} == {401}
    assert_limited(limited)
    assert signed_elsewhere.status_code == 202


async def test_signed_cad_traffic_from_one_address_is_never_limited(client: httpx.AsyncClient) -> None:
    answers = [(await post_event(client, dv_event())).status_code for _ in range(150)]

    assert set(answers) == {202}


async def test_wrong_sign_ins_are_limited(client: httpx.AsyncClient, elsewhere: httpx.AsyncClient) -> None:
    wrong = [await client.post("/dashboard/sign-in", data={"token": f"not-a-token-{n}"}) for n in range(10)]

    limited = await client.post("/dashboard/sign-in", data={"token": "not-a-token-either"})
    other = await elsewhere.post("/dashboard/sign-in", data={"token": "not-a-token"})

    assert all(w.status_code != 303 for w in wrong)
    assert_limited(limited)
    assert other.status_code != 429
