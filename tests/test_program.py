"""A whole program as one YAML file, as a program manager keeps it: imported, asked who is on call, imported
again unchanged, exported back; a bad file refused whole with every problem listed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner, Result

from callout.cli import main
from tests.factories import PHONES

PROGRAM = """\
agencies:
- slug: harbor
  name: Harbor 911
  hotline: '+12025550100'
  timezone: America/Chicago
  code_map:
    DOM: DVA
    '415 FAM': DVNA
  areas:
  - code: north
    name: North Harbor
    schedule:
    - advocate: ada
      role: supervisor
      day: mon
    rotations:
    - name: primaries
      role: primary
      participants: [dana, luis]
      unit: days
      handoff: '2026-11-16T08:00:00'
    policies:
      priority:
        steps:
        - notify: [primary]
          via: [sms]
          wait_seconds: 300
        - notify: [supervisor, hotline]
          via: [sms, voice]
          wait_seconds: 300
        repeat: 1
  advocates:
  - key: ada
    name: Ada
    phone: '+12025550104'
    areas: [north]
  - key: dana
    name: Dana
    phone: '+12025550101'
    areas: [north]
  - key: luis
    name: Luis
    phone: '+12025550102'
    languages: [es, en]
    areas: [north]
  overrides:
  - area: north
    role: primary
    advocate: luis
    replaces: dana
    starts_at: '2030-01-07T20:00:00Z'
    ends_at: '2030-01-08T02:00:00Z'
    note: swap
"""


@pytest.fixture(autouse=True)
def database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLOUT_DATABASE_URL", database_url)


async def callout(*args: str) -> Result:
    """The CLI, as an operator runs it: in a thread of its own, outside the test's event loop."""
    return await asyncio.to_thread(CliRunner().invoke, main, list(args))


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "program.yaml"
    path.write_text(text)
    return str(path)


async def test_a_program_file_imports_answers_who_is_on_call_and_imports_again_unchanged(
    client: httpx.AsyncClient, admin: dict[str, str], tmp_path: Path
) -> None:
    first = await callout("directory", "import", write(tmp_path, PROGRAM))
    again = await callout("directory", "import", write(tmp_path, PROGRAM))
    exported = await callout("directory", "export", "--agency", "harbor")

    assert first.exit_code == 0, first.output
    assert "imported harbor: changed" in first.output and "whsec_" in first.output  # the new agency's secret, once
    assert again.output.strip() == "imported harbor: no changes"
    assert yaml.safe_load(exported.output) == yaml.safe_load(PROGRAM)
    # Monday 16 November, 08:00 in Chicago is 14:00 UTC: dana's turn, ada supervising
    on_call = await client.get(
        "/v1/directory/agencies/harbor/on-call",
        params={"area": "north", "at": "2026-11-16T15:00:00Z", "tier": "priority"},
        headers=admin,
    )
    chain = [(e["role"], e["phone"]) for e in on_call.json()["chain"]]
    assert chain == [("primary", PHONES["dana"]), ("supervisor", PHONES["ada"])]
    assert on_call.json()["policy"]["repeat"] == 1


async def test_what_a_file_leaves_out_is_removed_and_people_are_kept_inactive(
    client: httpx.AsyncClient, admin: dict[str, str], tmp_path: Path
) -> None:
    await callout("directory", "import", write(tmp_path, PROGRAM))
    smaller = yaml.safe_load(PROGRAM)
    agency = smaller["agencies"][0]
    agency["advocates"] = [a for a in agency["advocates"] if a["key"] != "luis"]
    agency["areas"][0]["rotations"][0]["participants"] = ["dana"]
    del agency["areas"][0]["policies"], agency["overrides"]

    result = await callout("directory", "import", write(tmp_path, yaml.safe_dump(smaller)))
    exported = yaml.safe_load((await callout("directory", "export")).output)

    assert result.exit_code == 0, result.output
    assert exported == smaller
    luis = await client.put(  # still there, inactive: his past alerts still name him
        "/v1/directory/agencies/harbor/advocates/luis",
        json={"name": "Luis", "phone": PHONES["luis"], "areas": [], "active": False},
        headers=admin,
    )
    assert luis.status_code == 200


async def test_a_bad_file_is_refused_whole_with_every_problem_listed(tmp_path: Path) -> None:
    bad = yaml.safe_load(PROGRAM)
    agency = bad["agencies"][0]
    agency["advocates"][0]["phone"] = "911"
    agency["advocates"][1]["areas"] = ["south"]
    agency["areas"][0]["rotations"][0]["participants"] = ["dana", "nobody"]
    agency["areas"].append({"code": "north", "name": "Again"})

    result = await callout("directory", "import", write(tmp_path, yaml.safe_dump(bad)))
    exported = await callout("directory", "export")

    assert result.exit_code == 1
    assert "nothing changed" in result.output
    assert "agencies.0.advocates.0.phone" in result.output  # a schema problem...
    schema_only = await callout("directory", "import", write(tmp_path, yaml.safe_dump(bad)))
    assert schema_only.exit_code == 1
    agency["advocates"][0]["phone"] = "+12025550104"
    references = await callout("directory", "import", write(tmp_path, yaml.safe_dump(bad)))
    # ...and, once the schema holds, every reference problem at once
    assert "area 'north' appears twice" in references.output
    assert "advocate dana: unknown area 'south'" in references.output
    assert "rotation primaries: unknown advocate 'nobody'" in references.output
    assert "rotation primaries: 'dana' does not cover area north" in references.output
    assert yaml.safe_load(exported.output) == {"agencies": []}


async def test_a_program_whose_notify_url_callout_would_not_post_to_is_refused_whole(
    client: httpx.AsyncClient, admin: dict[str, str], tmp_path: Path
) -> None:
    metadata = PROGRAM.replace(
        "  timezone: America/Chicago\n", "  timezone: America/Chicago\n  notify_url: http://169.254.169.254/latest/\n"
    )

    result = await callout("directory", "import", write(tmp_path, metadata))

    assert result.exit_code == 1
    assert "was not imported; nothing changed" in result.output and "169.254.169.254 is a link-local" in result.output
    assert (await client.get("/v1/directory/agencies/harbor/on-call", headers=admin)).status_code == 404
