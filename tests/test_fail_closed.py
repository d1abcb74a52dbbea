"""Callout fails closed: outside production it listens on this machine alone unless told, and takes no public key
from a network; without Twilio, Twilio's routes accept only what `callout reply` signs on this machine with the
key of this start; production starts with no secret written in this repository and not without Twilio; and the
worker asks the directory with a credential of its own that opens nothing else."""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from pydantic import ValidationError
from twilio.request_validator import RequestValidator

from callout import console_key
from callout.cli import main
from callout.compose import Part, build
from services.alerts.settings import AlertsSettings
from services.alerts.worker import Worker
from shared.settings import DEVELOPMENT_DATA_KEY
from tests.conftest import ADMIN_TOKEN, PUBLIC_URL
from tests.factories import PHONES, dv_event, make_program, post_event
from tests.processes import Server, free_port, run

FIXED_KEY_OF_OLD = "console-development-only"  # what development once accepted from anyone: never again


def twilio_request(token: str, base: str = PUBLIC_URL, path: str = "/v1/twilio/sms") -> tuple[dict[str, str], str]:
    """An inbound text as Twilio posts it, signed with `token`: its form and its signature."""
    form = {"MessageSid": "SM" + uuid.uuid4().hex, "From": PHONES["luis"], "To": "+10000000000", "Body": "1"}
    return form, RequestValidator(token).compute_signature(base + path, form)


# -- production --------------------------------------------------------------------------------------------------

PRODUCTION: dict[str, Any] = {
    "environment": "production",
    "database_url": "postgresql://callout@db/callout",
    "admin_token": "an-admin-token-of-enough-length",
    "data_key": "a-data-key-of-enough-length-0123456789",
    "twilio_account_sid": "AC" + "0123456789abcdef" * 2,
    "twilio_auth_token": "0123456789abcdef0123456789abcdef",
    "twilio_from": "+12025550000",
}


def test_production_starts_with_secrets_of_its_own_and_twilio() -> None:
    assert AlertsSettings(**PRODUCTION).twilio_configured


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"twilio_account_sid": None}, "CALLOUT_TWILIO_ACCOUNT_SID, CALLOUT_TWILIO_AUTH_TOKEN and CALLOUT_TWILIO_FROM"),
        ({"twilio_auth_token": None}, "are required in production"),
        ({"twilio_from": None}, "are required in production"),
        ({"twilio_account_sid": "replace-me"}, "must be Twilio's own"),
        ({"twilio_auth_token": "replace-me"}, "must be Twilio's own"),
        ({"admin_token": "replace-me"}, "CALLOUT_ADMIN_TOKEN"),
        ({"data_keys_previous": f"an-older-key-of-enough-length-0123456789,{DEVELOPMENT_DATA_KEY}"}, "PREVIOUS"),
        ({"directory_token": "short"}, "CALLOUT_DIRECTORY_TOKEN"),
        ({"directory_token": PRODUCTION["admin_token"]}, "not the admin token"),
    ],
)
def test_production_refuses_to_start_with_a_public_secret_or_without_twilio(change: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        AlertsSettings(**{**PRODUCTION, **change})


def test_production_without_twilio_does_not_start_printing_texts_on_the_console(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in PRODUCTION.items():
        if not name.startswith("twilio") and name != "environment":
            monkeypatch.setenv(f"CALLOUT_{name.upper()}", value)
    monkeypatch.setenv("CALLOUT_ENVIRONMENT", "production")

    result = CliRunner().invoke(main, ["serve"])

    assert result.exit_code == 1
    assert "CALLOUT_TWILIO_AUTH_TOKEN" in result.output and "no text or call would reach anyone" in result.output


# -- where it listens ----------------------------------------------------------------------------------------------


def test_development_will_not_listen_beyond_this_machine_with_the_public_admin_token() -> None:
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0"])  # noqa: S104 - the refusal under test

    assert result.exit_code == 1
    assert "--host 0.0.0.0" in result.output and "CALLOUT_ADMIN_TOKEN" in result.output


@pytest.fixture
async def development_server(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Server, dict[str, str]]]:
    """`callout serve` as `make run` starts it: development, no Twilio, nothing but defaults (and a database)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLOUT_")}
    env |= {"CALLOUT_DATABASE_URL": database_url, "CALLOUT_PORT": str(port), "CALLOUT_DATA_DIR": str(tmp_path)}
    server = await Server.start(env)
    yield server, env
    await server.stop()


async def test_development_listens_on_this_machine_and_accepts_only_what_callout_reply_signs_here(
    development_server: tuple[Server, dict[str, str]], tmp_path: Path
) -> None:
    server, env = development_server
    port = env["CALLOUT_PORT"]
    base = f"http://127.0.0.1:{port}"
    key_file = tmp_path / console_key.FILE_NAME

    assert f"Uvicorn running on http://127.0.0.1:{port}" in server.log
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    code, output = await run(env, "reply", PHONES["luis"], "1")
    assert code == 0, output
    assert "No open callout of yours" in output  # signed with this start's key: answered
    async with httpx.AsyncClient(base_url=base) as http:
        # Twilio signs the public URL: by default, http://localhost:PORT.
        for path in ("/v1/twilio/sms", "/v1/twilio/sms-status"):
            form, signature = twilio_request(FIXED_KEY_OF_OLD, f"http://localhost:{port}", path)
            forged = await http.post(path, data=form, headers={"X-Twilio-Signature": signature})
            assert forged.status_code == 403, path
        form, signature = twilio_request(key_file.read_text(), f"http://localhost:{port}")
        signed_here = await http.post("/v1/twilio/sms", data=form, headers={"X-Twilio-Signature": signature})
    assert signed_here.status_code == 200


def test_each_start_makes_a_new_key_readable_by_this_user_alone(tmp_path: Path) -> None:
    settings = AlertsSettings(data_dir=tmp_path / "data")

    first, second = console_key.create(settings), console_key.create(settings)

    assert first != second and len(first) >= 40
    assert console_key.read(settings) == second
    assert stat.S_IMODE(console_key.path(settings).stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.data_dir.stat().st_mode) == 0o700


def test_callout_reply_without_a_running_server_says_what_it_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLOUT_DATA_DIR", str(tmp_path))

    result = CliRunner().invoke(main, ["reply", PHONES["luis"], "1"])

    assert result.exit_code == 1 and "callout serve" in result.output and console_key.FILE_NAME in result.output


@pytest.fixture
async def without_twilio(database_url: str) -> AsyncIterator[dict[str, FastAPI]]:
    """The alerts service in development without Twilio: once with this start's console key, once without."""
    settings = AlertsSettings(admin_token=ADMIN_TOKEN, public_url=PUBLIC_URL, database_pool_size=2)
    apps = {
        "keyed": build(Part.alerts, settings.with_console_signing_key("this-start-s-key"), database_url),
        "unkeyed": build(Part.alerts, settings, database_url),
    }
    keyed, unkeyed = apps["keyed"], apps["unkeyed"]
    async with keyed.router.lifespan_context(keyed), unkeyed.router.lifespan_context(unkeyed):
        yield apps


async def post_text(app: FastAPI, token: str) -> int:
    form, signature = twilio_request(token)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL) as http:
        response = await http.post("/v1/twilio/sms", data=form, headers={"X-Twilio-Signature": signature})
    return response.status_code


async def test_without_twilio_no_fixed_key_is_accepted(without_twilio: dict[str, FastAPI]) -> None:
    assert await post_text(without_twilio["keyed"], "this-start-s-key") == 200
    assert await post_text(without_twilio["keyed"], FIXED_KEY_OF_OLD) == 403
    assert await post_text(without_twilio["unkeyed"], FIXED_KEY_OF_OLD) == 403
    assert await post_text(without_twilio["unkeyed"], "") == 403


def test_a_console_key_is_refused_where_twilio_signs() -> None:
    with pytest.raises(ValueError, match="development without Twilio"):
        AlertsSettings(twilio_auth_token="a-real-twilio-auth-token").with_console_signing_key("k")


# -- the worker's credential ---------------------------------------------------------------------------------------


def test_the_worker_s_directory_credential_is_its_own() -> None:
    derived = AlertsSettings(admin_token=ADMIN_TOKEN).directory_credential
    chosen = AlertsSettings(
        admin_token=ADMIN_TOKEN, directory_token="a-directory-token-of-its-own"
    ).directory_credential

    assert ADMIN_TOKEN not in derived and derived.startswith("co_dir_")
    assert derived == AlertsSettings(admin_token=ADMIN_TOKEN).directory_credential  # every process derives the same
    assert derived != AlertsSettings(admin_token=ADMIN_TOKEN + "x").directory_credential
    assert chosen == "a-directory-token-of-its-own"


async def test_the_worker_asks_the_directory_with_its_credential_which_opens_only_what_it_reads(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    worker: Worker,
    settings: AlertsSettings,
) -> None:
    await make_program(client, admin)
    ref = (await post_event(client, dv_event())).json()["incident_ref"]
    await worker.run_once()  # routed: the directory answered the worker's question
    sent = worker.directory.http.headers["Authorization"]
    reader = {"Authorization": f"Bearer {settings.directory_credential}"}

    on_call = await client.get("/v1/directory/agencies/metro/on-call", params={"area": "1"}, headers=reader)
    watch = await client.get("/v1/directory/agencies/metro/contact-watch", headers=reader)
    refused = [
        await client.put("/v1/directory/agencies/metro", json={"name": "x", "hotline": "+12025550100"}, headers=reader),
        await client.get("/v1/directory/agencies/metro/overrides", headers=reader),
        await client.post("/v1/directory/agencies/metro/premise-flags/search", json={}, headers=reader),
        await client.get(f"/v1/incidents/{ref}/timeline", headers=reader),
        await client.get("/v1/reports/summary", headers=reader),
        await client.get("/v1/alerts/unreachable", headers=reader),
    ]

    assert sent == f"Bearer {settings.directory_credential}" and ADMIN_TOKEN not in sent
    assert "notification_sent" in [
        e["stage"] for e in (await client.get(f"/v1/incidents/{ref}/timeline", headers=admin)).json()["entries"]
    ]
    assert on_call.status_code == 200 and on_call.json()["chain"]
    assert watch.status_code == 200
    assert [r.status_code for r in refused] == [401] * len(refused)
