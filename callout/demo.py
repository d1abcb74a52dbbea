"""`callout demo`: a demo program loaded through the API, one DV call played end to end, its timeline printed."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import click
import httpx

from callout.config import load_settings, local_url
from shared import webhooks
from shared.apco import DEFAULT_CODE_MAP
from shared.settings import Settings

AGENCY = "demo"
CODE_MAP = {**DEFAULT_CODE_MAP, "10-16": "DVA", "415 FAM": "DVNA"}  # the APCO codes and two local ones
ADVOCATES = {
    "dana": {"name": "Dana Reyes", "phone": "+12025550101", "languages": ["en"]},
    "luis": {"name": "Luis Ortega", "phone": "+12025550102", "languages": ["es", "en"]},
    "mei": {"name": "Mei Chen", "phone": "+12025550103", "languages": ["zh", "en"]},
    "sam": {"name": "Sam Okafor", "phone": "+12025550104", "languages": ["en"]},
    "ada": {"name": "Ada Brooks", "phone": "+12025550105", "languages": ["en"]},
}
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Area 1 is covered all week: Dana and Luis primary around the clock, Mei the backup by day and Sam by night, Ada
# the supervisor. Removing one backup night on the program's pages opens a gap the supervisor is texted about.
SCHEDULE = [
    *({"advocate": key, "role": "primary", "day": day} for day in DAYS for key in ("dana", "luis")),
    *({"advocate": "mei", "role": "backup", "day": day, "start": "08:00", "end": "20:00"} for day in DAYS),
    *({"advocate": "sam", "role": "backup", "day": day, "start": "20:00", "end": "08:00"} for day in DAYS),
    *({"advocate": "ada", "role": "supervisor", "day": day} for day in DAYS),
]
# A demo CAD silent for 15 minutes (no event, no heartbeat) is reported to Ada: stop posting and watch.
FEED_SILENCE_MINUTES = 15


def demo_event(incident_id: str) -> dict[str, Any]:
    """A screened-in call with strangulation: the immediate tier, a Spanish-speaking victim."""
    return {
        "incident_id": incident_id,
        "status": "new",
        "occurred_at": datetime.now(UTC).isoformat(),
        "type_code": "10-16",
        "type_text": "Domestic disturbance",
        "area": "1",
        "location": {"address": "100 Example St", "city": "Springfield", "state": "IL"},
        "persons": [
            {
                "role": "victim",
                "language": "es",
                "consents_to_contact": True,
                "safe_contact": {"phone": "+12025550199", "window": "after 6pm"},
            },
            {"role": "suspect"},
        ],
        "screen": {"instrument": "LAP", "version": "2.0", "answers": {"q1": "no", "q2": "no", "q3": "no", "q5": "yes"}},
        "units": [{"unit": "A12", "status": "on_scene"}],
    }


async def load_program(http: httpx.AsyncClient, secret: str) -> None:
    agency = {
        "name": "Demo County 911",
        "hotline": "+12025550100",
        "timezone": "America/Chicago",
        "code_map": CODE_MAP,
        "webhook_secret": secret,
        "feed_silence_minutes": FEED_SILENCE_MINUTES,
    }
    for path, body in [
        (f"/v1/directory/agencies/{AGENCY}", agency),
        (f"/v1/directory/agencies/{AGENCY}/areas/1", {"name": "Downtown"}),
        *[(f"/v1/directory/agencies/{AGENCY}/advocates/{k}", {**a, "areas": ["1"]}) for k, a in ADVOCATES.items()],
        (f"/v1/directory/agencies/{AGENCY}/areas/1/schedule", {"shifts": SCHEDULE}),
    ]:
        response = await http.put(path, json=body)
        if response.is_error:
            raise click.ClickException(f"PUT {path}: {response.status_code} {response.text}")


async def wait_for_stage(http: httpx.AsyncClient, ref: str, stage: str) -> dict[str, Any]:
    """Poll the timeline until `stage` shows (or 15 s pass): this is a person watching, not a test."""
    deadline = time.monotonic() + 15
    while True:
        timeline: dict[str, Any] = (await http.get(f"/v1/incidents/{ref}/timeline")).raise_for_status().json()
        if any(e["stage"] == stage for e in timeline["entries"]) or time.monotonic() > deadline:
            return timeline
        await asyncio.sleep(0.1)


def print_timeline(timeline: dict[str, Any]) -> None:
    click.echo(f"\nTimeline of {timeline['incident_ref']} ({timeline['tier']}, {timeline['status']}):")
    start = datetime.fromisoformat(timeline["entries"][0]["observed_at"])
    for entry in timeline["entries"]:
        at = datetime.fromisoformat(entry["observed_at"])
        offset = (at - start).total_seconds() * 1000
        data = json.dumps({k: v for k, v in entry["data"].items() if v not in (None, [], {})})
        click.echo(f"  {at:%H:%M:%S.%f}"[:-3] + f"  +{offset:7.1f} ms  {entry['stage']:<22} {data}")


async def run_demo(base_url: str, settings: Settings) -> None:
    secret = os.environ.get("CALLOUT_DEMO_SECRET") or webhooks.new_secret()
    auth = {"Authorization": f"Bearer {settings.admin_token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=auth, timeout=10) as http:
        try:
            await load_program(http, secret)
        except httpx.ConnectError:
            raise click.ClickException(f"Callout is not answering at {base_url}: start it with `make run`.") from None
        click.echo(
            f"Loaded agency '{AGENCY}' (America/Chicago): area 1, advocates {', '.join(ADVOCATES)}, on call 24/7."
        )
        click.echo(f"Its webhook secret (send your own events with `callout cad send`):\n  {secret}")

        body = json.dumps(demo_event(f"DEMO-{uuid.uuid4().hex[:8].upper()}")).encode()
        headers = webhooks.signed_headers(secret, f"msg_{uuid.uuid4().hex}", datetime.now(UTC), body)
        response = await http.post(f"/v1/cad/{AGENCY}/events", content=body, headers=headers)
        if response.status_code != 202:
            raise click.ClickException(f"the event was refused: {response.status_code} {response.text}")
        receipt = response.json()
        click.echo(f"\nCAD event accepted: incident {receipt['incident_ref']}, tier {receipt['tier']}.")
        print_timeline(await wait_for_stage(http, receipt["incident_ref"], "notification_sent"))
        phone = ADVOCATES["luis"]["phone"]
        click.echo(
            f"\nAnswer as the advocate would: callout reply {phone} 1   (2 declines; then ENROUTE, ONSCENE, "
            f"CONTACTED, CLOSED). Nobody answering, the backup is alerted after 2 minutes."
        )
        click.echo(
            "Each advocate was also texted a code to prove their phone: `callout reply <phone> <code>` answers it,"
            " and the answer links to choosing the PIN that guards a callout's details."
        )
        click.echo(
            f"\nRun the program in the browser: `callout token create --role supervisor --agency {AGENCY} --label "
            f'"Your name"` prints a token to sign in with at {base_url}/dashboard/program/{AGENCY} (the board, week, '
            "month, advocates, schedules, rotations, overrides, escalation, hotline). An advocate texts COVER to ask"
            f" for cover; a CAD silent {FEED_SILENCE_MINUTES} minutes is reported to the supervisor."
        )


@click.command()
@click.option("--url", default=None, help="Callout's base URL (default: this machine, CALLOUT_PORT).")
def demo(url: str | None) -> None:
    """Load a demo program into the running Callout, play one DV call end to end, print its timeline."""
    settings = load_settings()
    asyncio.run(run_demo(url or local_url(settings), settings))
