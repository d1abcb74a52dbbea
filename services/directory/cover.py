"""Cover requests: an advocate who cannot take a shift asks the others to cover it, from their own page (`/c/{token}`,
a link Callout texts them: with an offer, or in answer to COVER); the first of those asked to take it is put on call
in their place by an override. This module decides who is asked and who took it, under the request's row lock, and
marks the texts due; the alerts service sends them (services/alerts/cover.py).

Asked: the area's other active advocates on call there in no role at any moment of the shift — one person in two
roles of an area is one person in the escalation chain, so the role they held would be left empty — whose phone
Callout's texts can reach. A GET of the page changes nothing; every view and every step is in the audit trail."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from services.directory.models import Advocate, Area
from services.directory.roster import ROLE_ORDER, schedule_for
from services.directory.schedules import add_override
from services.directory.schemas import CoverRequestOut, OverrideIn
from shared.auth import hash_token
from shared.localtime import DAY_MINUTE, local_time, span
from shared.problems import Invalid, NotFound
from shared.security import csp_nonce
from shared.tables import Agency, CoverLink, CoverOffer, CoverRequest, CoverStatus, Unreachable, Wake, wake_alerts

COVER_AHEAD = timedelta(days=14)  # the shifts an advocate's page lists
UNFILLED_TOLD_AHEAD = timedelta(hours=24)  # an open request this close to its shift is texted to the supervisors
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")), autoescape=select_autoescape(["html"])
)
TEMPLATES.globals["csp_nonce"] = csp_nonce  # each page's <style> nonce (shared/security.py)
ACTIONS = ("ask", "take", "withdraw")


@dataclass(frozen=True)
class Shift:
    """One of an advocate's own stretches on call, as the schedule (every source, overrides applied) has it."""

    area: str
    role: str
    starts_at: datetime
    ends_at: datetime

    @property
    def ref(self) -> str:
        """What the page's form sends back to name it (area codes hold no "|")."""
        return f"{self.role}|{self.starts_at.isoformat()}|{self.ends_at.isoformat()}|{self.area}"


@dataclass(frozen=True)
class Acted:
    """What an action on the page came to: the words for the advocate, and for the audit trail."""

    note: str
    outcome: str
    cover_request: int | None = None
    changed: bool = False


async def link_owner(session: AsyncSession, token: str, now: datetime) -> tuple[CoverLink, Advocate]:
    link = await session.scalar(select(CoverLink).where(CoverLink.token_hash == hash_token(token)))
    advocate = None
    if link is not None and link.expires_at > now:
        advocate = await session.scalar(
            select(Advocate)
            .where(Advocate.id == link.advocate_id, Advocate.active)
            .options(selectinload(Advocate.areas))
        )
    if link is None or advocate is None:
        raise NotFound("This link is unknown or has expired.")
    return link, advocate


async def own_shifts(session: AsyncSession, agency: Agency, advocate: Advocate, now: datetime) -> list[Shift]:
    """The advocate's shifts from now to two weeks ahead, in every area they cover."""
    end, shifts = now + COVER_AHEAD, set()
    for area in advocate.areas:
        schedule = await schedule_for(session, agency, area, now, end)
        for slot in schedule.slots(now, end):
            if slot.advocate_id == advocate.id:
                shifts.add(Shift(area.code, slot.role, slot.starts_at, slot.ends_at))
    return sorted(shifts, key=lambda s: (s.starts_at, s.area, ROLE_ORDER.index(s.role)))


async def eligible(
    session: AsyncSession, agency: Agency, area: Area, asker_id: int, starts: datetime, ends: datetime
) -> list[CoverOffer]:
    """Who may be asked to cover `starts`..`ends` in `area`: the offers a request keeps."""
    schedule = await schedule_for(session, agency, area, starts, ends)
    on_call_then = {slot.advocate_id for slot in schedule.slots(starts, ends)}
    others = [a for a in schedule.advocates.values() if a.id != asker_id and a.id not in on_call_then]
    cut_off = set(
        await session.scalars(
            select(Unreachable.phone).where(
                Unreachable.channel == "sms", Unreachable.phone.in_([a.phone for a in others])
            )
        )
    )
    return [
        CoverOffer(advocate_id=a.id, key=a.key, phone=a.phone)
        for a in sorted(others, key=lambda a: a.key)
        if a.phone not in cut_off
    ]


def offered_ids(request: CoverRequest) -> set[int]:
    return {offer["advocate_id"] for offer in request.offers}


async def open_requests_of(session: AsyncSession, advocate: Advocate, now: datetime) -> list[CoverRequest]:
    return list(
        await session.scalars(
            select(CoverRequest).where(
                CoverRequest.advocate_id == advocate.id,
                CoverRequest.status == CoverStatus.open,
                CoverRequest.ends_at > now,
            )
        )
    )


def asked_for(shift: Shift, requests: list[CoverRequest]) -> CoverRequest | None:
    """The open request for this shift (it starts when it was asked, if the shift had begun)."""
    return next((r for r in requests if (r.area, r.role, r.ends_at) == (shift.area, shift.role, shift.ends_at)), None)


async def ask(
    session: AsyncSession, agency: Agency, advocate: Advocate, link: CoverLink, ref: str, now: datetime
) -> Acted:
    shift = next((s for s in await own_shifts(session, agency, advocate, now) if s.ref == ref), None)
    if shift is None:
        return Acted("That shift is not one of yours any more.", "not theirs")
    if (already := asked_for(shift, await open_requests_of(session, advocate, now))) is not None:
        return Acted("You have asked for cover for this shift already.", "asked already", already.id)
    area = await session.scalar(select(Area).where(Area.agency_id == agency.id, Area.code == shift.area))
    assert area is not None, "a shift is in one of the agency's areas"
    starts = max(shift.starts_at, now)  # a shift under way is covered from now
    offers = await eligible(session, agency, area, advocate.id, starts, shift.ends_at)
    request = CoverRequest(
        agency_id=agency.id,
        area=shift.area,
        role=shift.role,
        advocate_id=advocate.id,
        starts_at=starts,
        ends_at=shift.ends_at,
        status=CoverStatus.open,
        asked_at=now,
        asked_via="COVER text" if link.sent_as == "reply" else "page",
        offers=offers,
        offers_due_at=now if offers else None,
    )
    session.add(request)
    await session.flush()
    if offers:
        await wake_alerts(session, Wake.phones)
        people = "1 advocate" if len(offers) == 1 else f"{len(offers)} advocates"
        note = f"Cover asked. Callout is texting {people} who can take it; you will be texted when one does."
    else:
        note = (
            "Cover asked, but nobody else in the area is free then. Your supervisors see it, and are texted a day "
            "before the shift if it is still open."
        )
    return Acted(note, f"asked {len(offers)}", request.id, changed=True)


async def locked_request(session: AsyncSession, agency: Agency, request_id: int) -> CoverRequest | None:
    """The request, its row locked: the first of two advocates taking it at once wins, the second waits and sees."""
    found: CoverRequest | None = await session.scalar(
        select(CoverRequest)
        .where(CoverRequest.id == request_id, CoverRequest.agency_id == agency.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return found


async def take(session: AsyncSession, agency: Agency, advocate: Advocate, request_id: int, now: datetime) -> Acted:
    request = await locked_request(session, agency, request_id)
    if request is None or advocate.id not in offered_ids(request):
        raise NotFound("No such shift was offered to you.")
    if request.status == CoverStatus.filled:
        mine = request.filled_by == advocate.id
        note = "You took this shift." if mine else "Someone else took this shift first. Thank you."
        return Acted(note, "taken", request.id)
    if request.status == CoverStatus.withdrawn or request.ends_at <= now:
        return Acted("This shift no longer needs cover. Thank you.", "not needed", request.id)
    area = await session.scalar(select(Area).where(Area.agency_id == agency.id, Area.code == request.area))
    free = area is not None and advocate.id in {
        o["advocate_id"]
        for o in await eligible(
            session, agency, area, request.advocate_id, max(request.starts_at, now), request.ends_at
        )
    }
    if not free:  # on call there since it was asked (another cover taken, a schedule changed), or texts fail them
        note = "This one is not yours to take: you are on call in that area then already, or texts cannot reach you."
        return Acted(note, "busy", request.id)
    asker = await session.get_one(Advocate, request.advocate_id)
    spec = OverrideIn(
        area=request.area,
        role=request.role,
        advocate=advocate.key,
        replaces=asker.key,
        starts_at=max(request.starts_at, now),
        ends_at=request.ends_at,
        note=f"cover request {request.id}",
    )
    try:
        override = await add_override(session, agency, spec, now=now)
    except Invalid as exc:  # the asker no longer covers the area, say: nothing to cover them in
        return Acted(f"This shift cannot be covered here: {exc.detail} Ask your supervisor.", "refused", request.id)
    request.status, request.filled_by, request.filled_at = CoverStatus.filled, advocate.id, now
    request.override_id, request.outcome_due_at = override.id, now
    await wake_alerts(session, Wake.phones)
    when = span(spec.starts_at, request.ends_at, agency.timezone)
    note = f"Thank you: you are on call as {request.role} in area {request.area}, {when}, covering for {asker.key}."
    return Acted(note, "took", request.id, changed=True)


async def withdraw(session: AsyncSession, agency: Agency, advocate: Advocate, request_id: int, now: datetime) -> Acted:
    request = await locked_request(session, agency, request_id)
    if request is None or request.advocate_id != advocate.id:
        raise NotFound("No such cover request of yours.")
    if request.status != CoverStatus.open:
        return Acted("This request is no longer open.", "not open", request.id)
    request.status = CoverStatus.withdrawn
    if request.offers_due_at is None and request.offers:  # those texted are told it is no longer needed
        request.outcome_due_at = now
        await wake_alerts(session, Wake.phones)
    request.offers_due_at = None
    return Acted("Withdrawn: the shift is yours again.", "withdrew", request.id, changed=True)


async def cover_requests(session: AsyncSession, agency: Agency, now: datetime) -> list[CoverRequestOut]:
    """The agency's requests for shifts not yet over: open ones first, each kind soonest first."""
    requests = await session.scalars(
        select(CoverRequest)
        .where(CoverRequest.agency_id == agency.id, CoverRequest.ends_at > now)
        .order_by(CoverRequest.status != CoverStatus.open, CoverRequest.starts_at, CoverRequest.id)
    )
    return await described(session, agency, list(requests))


async def unfilled_soon(session: AsyncSession, agency: Agency, now: datetime) -> list[CoverRequestOut]:
    """Open requests for shifts starting within a day (or under way): what the supervisors are texted."""
    requests = await session.scalars(
        select(CoverRequest)
        .where(
            CoverRequest.agency_id == agency.id,
            CoverRequest.status == CoverStatus.open,
            CoverRequest.starts_at < now + UNFILLED_TOLD_AHEAD,
            CoverRequest.ends_at > now,
        )
        .order_by(CoverRequest.starts_at, CoverRequest.id)
    )
    return await described(session, agency, list(requests))


async def described(session: AsyncSession, agency: Agency, requests: list[CoverRequest]) -> list[CoverRequestOut]:
    keys = dict((await session.execute(select(Advocate.id, Advocate.key).where(Advocate.agency_id == agency.id))).all())
    return [
        CoverRequestOut(
            id=r.id,
            area=r.area,
            role=r.role,
            advocate_id=r.advocate_id,
            advocate=keys.get(r.advocate_id, "?"),
            starts_at=r.starts_at,
            ends_at=r.ends_at,
            status=r.status,
            asked_at=r.asked_at,
            asked_via=r.asked_via,
            offered=[o["key"] for o in r.offers],
            filled_by=keys.get(r.filled_by) if r.filled_by is not None else None,
            filled_at=r.filled_at,
        )
        for r in requests
    ]


# -- the page ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShiftRow:
    when: str
    role: str
    area: str
    ref: str
    asked: str | None = None  # what became of the open request for it, if any
    request_id: int | None = None


@dataclass(frozen=True)
class OfferRow:
    request_id: int
    when: str
    role: str
    area: str
    asker: str
    state: str | None = None  # None: open, theirs to take


@dataclass(frozen=True)
class CoverPage:
    key: str
    expires: str
    note: str | None = None
    shifts: list[ShiftRow] = field(default_factory=list)
    offers: list[OfferRow] = field(default_factory=list)

    def html(self) -> str:
        return TEMPLATES.get_template("cover.html").render(page=self)


async def page_for(
    session: AsyncSession, agency: Agency, advocate: Advocate, link: CoverLink, now: datetime, note: str | None
) -> CoverPage:
    """What the advocate's page shows now: the shifts offered to them that are not over, and their own."""
    zone = agency.timezone
    mine = await open_requests_of(session, advocate, now)
    shifts = []
    for shift in await own_shifts(session, agency, advocate, now):
        request = asked_for(shift, mine)
        asked = None
        if request is not None:
            others = len(request.offers)
            asked = f"Cover asked of {others} {'other' if others == 1 else 'others'}; nobody has taken it yet."
            if not others:
                asked = "Cover asked; nobody else in the area is free then."
        shifts.append(
            ShiftRow(
                when=span(shift.starts_at, shift.ends_at, zone),
                role=shift.role,
                area=shift.area,
                ref=shift.ref,
                asked=asked,
                request_id=request.id if request else None,
            )
        )
    offered = await session.scalars(
        select(CoverRequest)
        .where(
            CoverRequest.agency_id == agency.id,
            CoverRequest.ends_at > now,
            CoverRequest.offers.contains([{"advocate_id": advocate.id}]),
        )
        .order_by(CoverRequest.starts_at, CoverRequest.id)
    )
    keys = dict((await session.execute(select(Advocate.id, Advocate.key).where(Advocate.agency_id == agency.id))).all())
    offers = [
        OfferRow(
            request_id=r.id,
            when=span(r.starts_at, r.ends_at, zone),
            role=r.role,
            area=r.area,
            asker=keys.get(r.advocate_id, "?"),
            state=offer_state(r, advocate.id),
        )
        for r in offered
    ]
    expires = local_time(link.expires_at, zone, DAY_MINUTE)
    return CoverPage(key=advocate.key, expires=expires, note=note, shifts=shifts, offers=offers)


def offer_state(request: CoverRequest, advocate_id: int) -> str | None:
    if request.status == CoverStatus.open:
        return None
    if request.status == CoverStatus.withdrawn:
        return "No longer needed."
    return "You took this shift." if request.filled_by == advocate_id else "Taken by someone else. Thank you."
