"""Receiving a CAD event: idempotency, the incident, its triage, and the callout it queues — one transaction.

This is the hot path from a CAD to an advocate's phone, so it is a few SQL statements run by the driver itself
(asyncpg prepares each once per connection): a unit status update costs three round trips between BEGIN and
COMMIT."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from services.intake.schemas import CadEvent, EventReceipt, EventStatus
from services.intake.triage import Triage, assessment_record, triage
from shared.crypto import sealer
from shared.db import Sql
from shared.premises import premise_key
from shared.problems import Conflict
from shared.tables import OPEN, Agency, CalloutStatus, Stage, Tier, Wake, new_code

ENDED = {EventStatus.closed, EventStatus.cancelled}
# A callout still running (or accepted): a CAD close, cancel or reclassification ends it.
LIVE = (*OPEN, CalloutStatus.accepted)
LIVE_SQL = ", ".join(f"'{s.value}'" for s in LIVE)
INCIDENT_FIELDS = (
    "status",
    "type_code",
    "apco_code",
    "tier",
    "area",
    "language",
    "interpreter_needed",
    "details",
    "updated_at",
)

# Claim the webhook-id, then create the incident or bring it up to date — only if the claim succeeded. No row
# back means a repeat: a concurrent one blocks on the unique index until the first commits, then sees its answer.
# The upsert also locks the incident's row, so that events for one incident apply one at a time.
CLAIM_AND_UPSERT = Sql(f"""
WITH claim AS (
    INSERT INTO cad_events (agency_id, webhook_id, body_sha256, received_at)
    VALUES (:agency_id, :webhook_id, :body_sha256, :now)
    ON CONFLICT (agency_id, webhook_id) DO NOTHING
    RETURNING id
)
INSERT INTO incidents (id, ref, agency_id, cad_incident_id, created_at, {", ".join(INCIDENT_FIELDS)})
SELECT :id, :ref, :agency_id, :cad_incident_id, :now, {", ".join(f":{f}" for f in INCIDENT_FIELDS)} FROM claim
ON CONFLICT (agency_id, cad_incident_id) DO UPDATE
SET {", ".join(f"{f} = excluded.{f}" for f in INCIDENT_FIELDS)}
RETURNING id, ref, xmax = 0 AS new, premise_key, premise  -- xmax is 0 on a row this very statement inserted
""")  # noqa: S608 - names from constants

# What is known at an address when a call first comes from it (or from a new address): active flags, and the
# other DV calls there in the year before.
PREMISE = Sql("""
SELECT coalesce(
           (SELECT jsonb_agg(jsonb_build_object('kind', kind, 'source', source) ORDER BY kind, id)
            FROM premise_flags
            WHERE agency_id = :agency_id AND premise_key = :premise_key
              AND (expires_at IS NULL OR expires_at > CAST(:now AS timestamptz))),
           '[]') AS flags,
       (SELECT count(*) FROM incidents
        WHERE agency_id = :agency_id AND premise_key = :premise_key AND tier <> 'none'
          AND created_at > CAST(:now AS timestamptz) - interval '1 year'
          AND cad_incident_id <> :cad_incident_id) AS prior_dv_calls
""")

EARLIER_ANSWER = Sql(
    "SELECT body_sha256, response FROM cad_events WHERE agency_id = :agency_id AND webhook_id = :webhook_id"
)

# Its own statement, after the upsert took the incident's lock: a statement's snapshot is taken when it starts,
# and this one must see a callout that an event for the same incident committed meanwhile.
LIVE_CALLOUT = Sql(
    f"SELECT id, status, code, tier FROM callouts WHERE incident_id = :incident_id AND status IN ({LIVE_SQL})"  # noqa: S608
    " AND end_requested_at IS NULL"
)

NEW_CALLOUT = Sql("""
INSERT INTO callouts (id, incident_id, agency_id, code, tier, area, language, status, due_at, attempts, roster,
                      policy, step, round, step_seq, declined, created_at, updated_at)
VALUES (:id, :incident_id, :agency_id, :code, :tier, :area, :language, 'pending', :now, 0, '{}', '{}', -1, 0, 0,
        '[]', :now, :now)
""")

# Intake only asks for the end; the alerts worker carries it out (services/alerts/callout.py owns the status),
# telling whoever was alerted.
END_CALLOUT = Sql(f"""
UPDATE callouts SET end_reason = :reason, end_requested_at = :now, due_at = :now
WHERE id = :id AND status IN ({LIVE_SQL}) AND end_requested_at IS NULL
""")  # noqa: S608 - statuses from constants

# The tier as the premise leaves it; the timeline entries, in order; the danger screen as an assessment, unless
# the same one was sent before; and the answer kept for repeats of this webhook-id.
RECORD = Sql("""
WITH incident AS (
    UPDATE incidents SET tier = :tier, premise_key = :premise_key, premise = :premise
    WHERE id = :incident_id AND (tier <> :tier OR premise_key IS DISTINCT FROM :premise_key)
), stages AS (
    INSERT INTO timeline_entries (incident_id, stage, observed_at, source_at, data)
    SELECT :incident_id, entry ->> 'stage', :now, (entry ->> 'source_at')::timestamptz, entry -> 'data'
    FROM jsonb_array_elements(:stages) WITH ORDINALITY AS stages (entry, n)
    ORDER BY n
), assessment AS (
    INSERT INTO assessments (incident_id, instrument, instrument_version, rule, rule_version, answers,
                             officer_belief, level, screened_in, reasons, fingerprint, created_at)
    SELECT :incident_id, a ->> 'instrument', a ->> 'instrument_version', a ->> 'rule', a ->> 'rule_version',
           a ->> 'answers', (a ->> 'officer_belief')::boolean, a ->> 'level', (a ->> 'screened_in')::boolean,
           a -> 'reasons', a ->> 'fingerprint', :now
    FROM jsonb_array_elements(:assessments) AS a
    ON CONFLICT (incident_id, fingerprint) DO NOTHING
)
UPDATE cad_events SET incident_id = :incident_id, event_status = :event_status, occurred_at = :occurred_at,
    response = :response
WHERE agency_id = :agency_id AND webhook_id = :webhook_id
""")


def incident_fields(event: CadEvent, result: Triage, now: datetime) -> dict[str, Any]:
    """What the latest event says of the incident. Personal data is only what the details page will need."""
    victim = event.victim
    return {
        "status": event.status.value if event.status in ENDED else "open",
        "type_code": event.type_code,
        "apco_code": result.apco_code,
        "tier": result.tier.value,
        "area": event.area,
        "language": victim.language if victim else None,
        "interpreter_needed": bool(victim and victim.interpreter_needed),
        "details": event.model_dump(
            mode="json",
            include={"location", "persons", "screen", "cautions", "priority", "type_text"},
            exclude_none=True,
        ),
        "updated_at": now,
    }


def sealed_assessments(event: CadEvent, result: Triage, data_key: str) -> list[dict[str, Any]]:
    """The screen as an assessment record, its answers sealed. Its fingerprint (to know a screen sent again) is
    keyed: a plain hash of eleven yes/no answers could be reversed by trying them all."""
    if event.screen is None or result.screen is None:
        return []
    record = assessment_record(event.screen, result.screen)
    fingerprint = hmac.new(data_key.encode(), json.dumps(record, sort_keys=True).encode(), hashlib.sha256)
    return [{**record, "answers": sealer().seal(record["answers"]), "fingerprint": fingerprint.hexdigest()}]


def stage(name: Stage, *, source_at: datetime | None = None, **data: Any) -> dict[str, Any]:
    return {"stage": name.value, "source_at": source_at.isoformat() if source_at else None, "data": data}


async def receive_event(
    conn: asyncpg.Connection,
    *,
    agency: Agency,
    webhook_id: str,
    body_sha256: str,
    event: CadEvent,
    now: datetime,
    data_key: str,
) -> EventReceipt:
    """Apply one event within the caller's transaction, and return the answer for the CAD. `data_key` keys the
    address (shared/premises.py) and fingerprints screens: the oldest data key held, stable across rotations."""
    result = triage(event, agency.code_map)
    fields = incident_fields(event, result, now)  # the premise may raise the tier below
    keys = {"agency_id": agency.id, "webhook_id": webhook_id}
    upserted = await CLAIM_AND_UPSERT.fetchrow(
        conn,
        {
            **keys,
            **fields,
            "details": sealer().seal(fields["details"]),
            "body_sha256": body_sha256,
            "now": now,
            "id": uuid.uuid4(),
            "ref": f"INC-{new_code(8)}",
            "cad_incident_id": event.incident_id,
        },
    )
    if upserted is None:
        earlier = await EARLIER_ANSWER.fetchrow(conn, keys)
        assert earlier is not None  # claimed by a transaction that has committed
        if earlier["body_sha256"] != body_sha256:
            raise Conflict("This webhook-id was already used for a different body.", webhook_id=webhook_id)
        return EventReceipt.model_validate(earlier["response"])  # committed with its response, or not at all
    incident_id, ref, new = upserted["id"], upserted["ref"], upserted["new"]
    key = premise_key(fields["details"].get("location"), data_key)
    premise = upserted["premise"]
    if new or key != upserted["premise_key"]:
        premise = await known_at(conn, agency.id, key, event.incident_id, now) if key else None
    if premise:
        result = triage(event, agency.code_map, premise)

    stages = [
        stage(
            Stage.cad_received,
            source_at=event.occurred_at,
            status=event.status.value,
            type_code=event.type_code,
            units=[u.model_dump(mode="json", exclude_none=True) for u in event.units],
        ),
        stage(
            Stage.triaged,
            dv=result.dv,
            tier=result.tier.value,
            reasons=list(result.reasons),
            rule=result.screen.rule if result.screen else None,
            screened_in=result.screen.screened_in if result.screen else None,
            language=fields["language"],
            interpreter_needed=fields["interpreter_needed"],
        ),
    ]
    # A new incident has no callout yet: spare the query.
    live = None if new else await LIVE_CALLOUT.fetchrow(conn, {"incident_id": incident_id})
    callout: dict[str, str] | None = {"code": live["code"], "tier": live["tier"]} if live else None
    if event.status in ENDED:
        stages.append(stage(Stage.closed, source_at=event.occurred_at, by="cad", status=event.status.value))
        if live is not None:
            await end_callout(conn, live["id"], f"CAD {event.status.value} the call", now)
        callout = None
    elif live is not None and result.tier is Tier.none:
        await end_callout(conn, live["id"], "reclassified: no longer a DV call", now)
        callout = None
    elif live is None and result.tier is not Tier.none:
        callout = {"code": new_code(4), "tier": result.tier.value}
        await NEW_CALLOUT.execute(
            conn,
            {
                "id": uuid.uuid4(),
                "incident_id": incident_id,
                "agency_id": agency.id,
                "area": event.area,
                "language": fields["language"],
                "now": now,
                **callout,
            },
        )
        await conn.execute(f"NOTIFY {Wake.callouts.value}")

    receipt = EventReceipt(
        incident_ref=ref,
        status=fields["status"],
        dv=result.dv,
        tier=result.tier.value,
        reasons=list(result.reasons),
        callout=callout,
        received_at=now,
    )
    await RECORD.execute(
        conn,
        {
            **keys,
            "incident_id": incident_id,
            "tier": result.tier.value,
            "premise_key": key,
            "premise": premise,
            "now": now,
            "stages": stages,
            "assessments": sealed_assessments(event, result, data_key),
            "event_status": event.status.value,
            "occurred_at": event.occurred_at,
            "response": receipt.model_dump(mode="json"),
        },
    )
    return receipt


async def known_at(
    conn: asyncpg.Connection, agency_id: int, key: str, cad_incident_id: str, now: datetime
) -> dict[str, Any]:
    row = await PREMISE.fetchrow(
        conn, {"agency_id": agency_id, "premise_key": key, "now": now, "cad_incident_id": cad_incident_id}
    )
    assert row is not None  # one row, always
    flags: list[dict[str, str]] = row["flags"]
    return {"kinds": sorted({f["kind"] for f in flags}), "flags": flags, "prior_dv_calls": row["prior_dv_calls"]}


async def end_callout(conn: asyncpg.Connection, callout_id: uuid.UUID, reason: str, now: datetime) -> None:
    """Ask for a callout's end, and wake the alerts worker to carry it out."""
    await END_CALLOUT.execute(conn, {"id": callout_id, "reason": reason, "now": now})
    await conn.execute(f"NOTIFY {Wake.callouts.value}")
