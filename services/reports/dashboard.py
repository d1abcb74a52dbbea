"""The supervisors' dashboard: one server-rendered page, usable on a phone, its charts drawn as SVG from the same
figures as the reports API; filters are a form. Signing in with an issued token opens a server-side session
(shared/sessions.py): the browser keeps only its random id, in an HttpOnly, SameSite=Strict cookie, never the token.
Sign-in and sign-out refuse a POST from another site.

Every time shown is in the agency's time zone. Wherever an advocate is named, a phone they have not proved, or
one a channel cannot reach, is marked: a supervisor should know before the call comes that a text may not land."""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import column, func, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from services.reports.figures import BINS, INTERVALS, Charts, calls, charts, summarise
from services.reports.filters import Bound, Filters, Tier, period_of
from services.reports.routes import export_csv, scope_of
from shared import audit
from shared.auth import Principal, Role, TokenRefused, principal_for
from shared.db import SessionDep
from shared.feeds import feed_state
from shared.incidents import timeline, visible_incident
from shared.localtime import SECOND, local_time
from shared.problems import Invalid
from shared.security import csp_nonce
from shared.sessions import COOKIE, Lifetime, cookie_is_secure, cross_site, end_session, open_session, resume
from shared.settings import Settings
from shared.tables import OPEN, AdvocatePhone, Agency, Callout, CalloutStatus, Incident
from shared.text import StorableStr

router = APIRouter(tags=["reports"], include_in_schema=False)
LEGACY_COOKIE = "callout_token"  # the raw token, as sign-in once kept it: cleared at the next sign-in
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
DAYS_SHOWN = 31  # a longer period's share within target is drawn by month
ROSTER_ROLES = ("primary", "backup", "supervisor")
CHANNEL_WORDS = {"sms": "texts", "voice": "calls"}

# Other services' tables, read as data (no code of theirs): the directory's advocates, and the phones the alerts
# service found a channel cannot reach.
ADVOCATES = table("advocates", column("id"), column("key"), column("name"), column("phone"))
UNREACHABLE = table("unreachable_contacts", column("phone"), column("channel"))


async def signed_in(request: Request, session: SessionDep) -> Principal | None:
    session_id = request.cookies.get(COOKIE)
    if not session_id:
        return None
    lifetime = Lifetime.of(request.app.state.settings)
    return await resume(request, session, session_id, lifetime, request.app.state.clock.now())


def to_sign_in(request: Request) -> Response:
    """Where a request without a session goes; one whose session has ended is told so, and its cookie dropped."""
    ended = COOKIE in request.cookies
    response = RedirectResponse("/dashboard/sign-in" + ("?ended=1" if ended else ""), status_code=303)
    if ended:
        response.delete_cookie(COOKIE, path=cookie_path(request))
    return response


def cookie_path(request: Request) -> str:
    settings: Settings = request.app.state.settings
    return urlsplit(settings.public_link("/dashboard")).path  # as the browser sees it


def page(title: str, body: str, principal: Principal | None = None, status: int = 200) -> HTMLResponse:
    account = (
        f'<form class=account method=post action="/dashboard/sign-out"><span>{html.escape(principal.label or "")}'
        "</span><button>Sign out</button></form>"
        if principal
        else ""
    )
    return HTMLResponse(
        PAGE.format(title=html.escape(title), account=account, body=body, nonce=csp_nonce()),
        status_code=status,
        headers=HEADERS,
    )


@dataclass(frozen=True)
class Asked:
    """The form as sent: its filters, or why they cannot be read (shown beside the form, nothing else)."""

    filters: Filters | None
    problem: str | None = None
    raw: tuple[tuple[str, str], ...] = ()


def asked(
    request: Request,
    start: Annotated[str | None, Query(alias="from", max_length=64)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=64)] = None,
    agency: Annotated[StorableStr | None, Query(max_length=64)] = None,
    area: Annotated[StorableStr | None, Query(max_length=64)] = None,
    tier: Annotated[StorableStr | None, Query(max_length=16)] = None,
    language: Annotated[StorableStr | None, Query(max_length=35)] = None,
) -> Asked:
    """The form's filters; by default the last thirty days (this minute's calls too)."""
    given = {"from": start, "to": end, "agency": agency, "area": area, "tier": tier, "language": language}
    raw = tuple((name, value or "") for name, value in given.items())
    try:
        period = period_of(start, end, request.app.state.clock.now())
    except Invalid as problem:
        return Asked(None, problem.detail, raw)
    chosen: Tier | None = tier if tier in ("immediate", "priority", "follow_up") else None  # type: ignore[assignment]
    return Asked(Filters(period, agency or None, area or None, chosen, None, language or None), None, raw)


AskedDep = Annotated[Asked, Depends(asked)]


SIGN_IN_NOTES = {
    "ended": "Your session ended. Sign in again.",
    "out": "You are signed out.",
}
REFUSALS = {
    "token revoked": "That token was revoked.",
    "token expired": "That token has expired.",
    "bootstrap admin token": "The bootstrap admin token is for the API and the command line, not the dashboard: "
    'sign in with an admin token issued to you (callout token create --role admin --label "Your name").',
}


def sign_in_page(note: str = "", status: int = 200) -> HTMLResponse:
    shown = f"<p class=note>{html.escape(note)}</p>" if note else ""
    return page("Sign in", SIGN_IN.format(note=shown), status=status)


@router.get("/dashboard/sign-in", response_class=HTMLResponse)
async def sign_in_form(ended: bool = False, out: bool = False) -> HTMLResponse:
    return sign_in_page(SIGN_IN_NOTES["ended"] if ended else SIGN_IN_NOTES["out"] if out else "")


@router.post("/dashboard/sign-in")
async def sign_in(
    request: Request, session: SessionDep, token: Annotated[StorableStr, Form(max_length=200)]
) -> Response:
    """A session for an issued token. Every sign-in, and every one refused, is in the audit trail."""
    now = request.app.state.clock.now()
    if (elsewhere := cross_site(request)) is not None:
        # Login CSRF: another site signing this browser in, as someone the attacker chose.
        await audit.record(
            session,
            actor=audit.Actor.at("unknown", request),
            action="sign-in-failed",
            subject="dashboard",
            at=now,
            reason="cross-site request",
            seen=elsewhere,
        )
        return sign_in_page("Sign-in refused: the form was sent from another site.", status=403)
    try:
        principal = await principal_for(request, session, token)
        if principal.bootstrap:  # one secret shared by whoever holds the settings: a session must name a person
            raise TokenRefused("bootstrap admin token", principal)
    except TokenRefused as refused:
        # The attempt names the token when it names one (revoked, expired, the bootstrap's), never what was typed.
        who = audit.Actor.of(refused.principal) if refused.principal else audit.Actor.at("unknown", request)
        await audit.record(
            session, actor=who, action="sign-in-failed", subject="dashboard", at=now, reason=refused.reason
        )
        return sign_in_page(REFUSALS.get(refused.reason, "That token is not valid."), status=401)
    assert principal.token_id is not None  # not the bootstrap token: refused above
    if COOKIE in request.cookies:  # a sign-in over another: the one before ends, not left to idle
        await end_session(session, request.cookies[COOKIE])
    session_id = await open_session(session, principal.token_id, Lifetime.of(request.app.state.settings), now)
    await audit.record(session, actor=principal, action="sign-in", subject="dashboard", at=now)
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(
        COOKIE,
        session_id,
        path=cookie_path(request),
        httponly=True,
        samesite="strict",
        secure=cookie_is_secure(request.app.state.settings),
    )
    response.delete_cookie(LEGACY_COOKIE)
    return response


@router.post("/dashboard/sign-out")
async def sign_out(request: Request, session: SessionDep) -> Response:
    if cross_site(request) is not None:  # another site may not end a session either
        return sign_in_page("Sign-out refused: the form was sent from another site.", status=403)
    principal = await signed_in(request, session)
    if principal is not None:
        await end_session(session, request.cookies[COOKIE])
        await audit.record(
            session, actor=principal, action="sign-out", subject="dashboard", at=request.app.state.clock.now()
        )
    response = RedirectResponse("/dashboard/sign-in?out=1", status_code=303)
    response.delete_cookie(COOKIE, path=cookie_path(request))
    return response


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, session: SessionDep, form: AskedDep) -> Response:
    principal = await signed_in(request, session)
    if principal is None:
        return to_sign_in(request)
    if form.filters is None:
        note = f"<p class=note id=problem>{html.escape(form.problem or '')}</p>"
        return page("Callout dashboard", note + filter_form(dict(form.raw), None), principal, status=422)
    filters = form.filters
    scope = await scope_of(session, principal, filters.agency)
    # The form's times are shown on the agencies' clock, when they share one (each call's are its agency's).
    zone = next(iter(scope.zones)) if len(scope.zones) == 1 else "UTC"
    selected = calls(filters, scope)
    figures = (await summarise(session, selected)).overall
    drawn = await charts(session, selected)
    by_month = filters.period.length() > timedelta(days=DAYS_SHOWN)
    body = "".join(
        [
            filter_form(shown_filters(filters, zone), filters),
            headline(figures),
            chart_section("Time to acceptance", "acceptance-histogram", acceptance_histogram(drawn)),
            chart_section(
                f"Share within target, by {'month' if by_month else 'day'}",
                "target-by-day",
                target_by_period(drawn, by_month=by_month),
            ),
            chart_section("Calls by area and language", "coverage", coverage(drawn)),
            await cad_feeds(session, principal, request.app.state.clock.now()),
            await open_callouts(session, principal),
        ]
    )
    return page("Callout dashboard", body, principal)


@router.get("/dashboard/export.csv")
async def dashboard_export(request: Request, session: SessionDep, form: AskedDep) -> Response:
    """The de-identified CSV of what the dashboard shows (signed in by its cookie)."""
    principal = await signed_in(request, session)
    if principal is None:
        return to_sign_in(request)
    if form.filters is None:
        raise Invalid(form.problem)
    return await export_csv(session, principal, form.filters, request)


@router.get("/dashboard/incidents/{ref}", response_class=HTMLResponse)
async def incident_page(ref: str, request: Request, session: SessionDep) -> Response:
    principal = await signed_in(request, session)
    if principal is None:
        return to_sign_in(request)
    incident = await visible_incident(session, ref, principal)
    await audit.record(
        session,
        actor=principal,
        action="view",
        subject=f"timeline of {incident.ref}",
        at=request.app.state.clock.now(),
    )
    zone = (await session.scalar(select(Agency.timezone).where(Agency.id == incident.agency_id))) or "UTC"
    entries = await timeline(session, incident)
    named = await advocates(session, (i for e in entries for i in advocate_ids(e.data)))
    rows = "".join(
        f"<tr><td>{html.escape(local_time(e.observed_at, zone, SECOND))}</td><td>{html.escape(e.stage)}</td>"
        f"<td class=data>{html.escape(describe(e.data))}</td>"
        f"<td class=who>{', '.join(named[i].html() for i in advocate_ids(e.data) if i in named)}</td></tr>"
        for e in entries
    )
    body = (
        f'<p><a href="/dashboard">← dashboard</a></p><h2>{html.escape(incident.ref)} · {html.escape(incident.tier)}'
        f" · {html.escape(incident.status)}</h2><table class=timeline><tr><th>at ({html.escape(zone)})</th>"
        f"<th>stage</th><th>what</th><th>who</th></tr>{rows}</table>"
    )
    return page(f"Timeline {incident.ref}", body, principal)


def describe(data: dict[str, Any]) -> str:
    keep = ("tier", "reasons", "role", "reason", "channel", "via", "to", "status", "language_match", "screened_in")
    return "; ".join(f"{k}: {v}" for k, v in data.items() if k in keep and v not in (None, [], ""))


def advocate_ids(data: dict[str, Any]) -> list[int]:
    """The advocates a timeline row names (one who matched, accepted or declined; those a step alerted)."""
    named = [data.get("advocate_id"), *(data.get("advocate_ids") or [])]
    return [i for i in named if isinstance(i, int) and not isinstance(i, bool)]


# -- advocates, as the dashboard names them ---------------------------------------------------------------------


@dataclass(frozen=True)
class Advocate:
    name: str
    key: str
    phone_verified: bool  # they texted back the code sent to the phone the directory has for them
    unreachable: tuple[str, ...]  # channels that cannot reach that phone (opted out, invalid, a landline)

    def html(self) -> str:
        marks = []
        if not self.phone_verified:
            marks.append(
                '<span class="mark unverified" title="They have not texted back the code sent to this phone">'
                "phone unverified</span>"
            )
        marks += [
            f'<span class="mark unreachable" data-channel="{html.escape(channel)}">'
            f"{CHANNEL_WORDS.get(channel, html.escape(channel))} cannot reach them</span>"
            for channel in self.unreachable
        ]
        name = f'<span class=advocate title="{html.escape(self.key)}">{html.escape(self.name)}</span>'
        return f'<span class=person data-advocate="{html.escape(self.key)}">{name}{"".join(marks)}</span>'


async def advocates(session: AsyncSession, ids: Iterable[int]) -> dict[int, Advocate]:
    """The advocates with these directory ids, each with what is known of their phone now."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    proven = AdvocatePhone.verified_at.is_not(None) & (AdvocatePhone.phone == ADVOCATES.c.phone)
    unreachable = (
        select(func.array_agg(UNREACHABLE.c.channel.distinct()))
        .where(UNREACHABLE.c.phone == ADVOCATES.c.phone)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(
            ADVOCATES.c.id,
            ADVOCATES.c.name,
            ADVOCATES.c.key,
            func.coalesce(proven, False).label("verified"),
            unreachable.label("unreachable"),
        )
        .select_from(ADVOCATES)
        .outerjoin(AdvocatePhone, AdvocatePhone.advocate_id == ADVOCATES.c.id)
        .where(ADVOCATES.c.id.in_(wanted))
    )
    return {r.id: Advocate(r.name, r.key, r.verified, tuple(sorted(r.unreachable or ()))) for r in rows}


# -- the form and the figures -----------------------------------------------------------------------------------


def shown(bound: Bound, zone: str) -> str:
    """An end of the period as the form shows it: as written, or an instant on the agency's clock."""
    return bound.at.astimezone(ZoneInfo(zone)).isoformat(timespec="minutes") if bound.is_instant else bound.shown


def shown_filters(f: Filters, zone: str) -> dict[str, str]:
    values = {"from": shown(f.period.start, zone), "to": shown(f.period.end, zone), "agency": f.agency, "area": f.area}
    values |= {"tier": f.tier, "language": f.language}
    return {k: v for k, v in values.items() if v}


def filter_form(values: dict[str, str], f: Filters | None) -> str:
    def field(name: str, label: str, kind: str = "text") -> str:
        value = html.escape(values.get(name, ""))
        return f'<label>{label}<input name="{name}" type="{kind}" value="{value}"></label>'

    tiers = "".join(
        f'<option value="{t}"{" selected" if values.get("tier", "") == t else ""}>{t or "any"}</option>'
        for t in ("", "immediate", "priority", "follow_up")
    )
    export = (
        f'<a class=export href="/dashboard/export.csv?{html.escape(urlencode(values))}">Export CSV</a>' if f else ""
    )
    return (
        '<form class=filters method=get action="/dashboard">'
        + field("from", "From (a date, or date and time)")
        + field("to", "To (a date includes the day)")
        + field("agency", "Agency")
        + field("area", "Area")
        + f'<label>Tier<select name="tier">{tiers}</select></label>'
        + field("language", "Language")
        + "<button>Show</button>"
        + export
        + "</form>"
    )


def minutes(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 60:.1f} min"


def headline(figures: dict[str, Any]) -> str:
    cells = [("Calls", str(figures["calls"]))]
    for interval in INTERVALS:
        values = figures["intervals"][interval]
        label = interval.replace("_", " ")
        cells.append(
            (f"To {label} (median / 90th)", f"{minutes(values['median_seconds'])} / {minutes(values['p90_seconds'])}")
        )
    cells += [
        ("Never accepted", str(figures["never_accepted"])),
        ("Hotline only", str(figures["hotline_only"])),
        ("Escalations", str(figures["escalations"])),
    ]
    return (
        '<section class=figures id="figures">'
        + "".join(f"<div><span>{html.escape(k)}</span><strong>{html.escape(v)}</strong></div>" for k, v in cells)
        + "</section>"
    )


def chart_section(title: str, chart_id: str, svg: str) -> str:
    return f'<section class=chart><h2>{html.escape(title)}</h2><div id="{chart_id}">{svg}</div></section>'


def bars(values: Sequence[tuple[str, float]], *, unit: str = "", scale_max: float | None = None) -> str:
    """A bar chart as SVG (300 by 100 units, scaled to the width it gets); each bar carries its value for readers
    and tests."""
    if not values:
        return '<p class="empty">Nothing to show for this period.</p>'
    top = scale_max or max(v for _, v in values) or 1
    step, drawn = 300 / len(values), []
    for i, (label, value) in enumerate(values):
        height, x = 72 * value / top, i * step
        shown_value = f"{value:g}{unit}"
        drawn.append(
            f'<g><rect class="bar" data-label="{html.escape(label)}" data-value="{value:g}" x="{x + step * 0.15:.1f}" '
            f'y="{86 - height:.1f}" width="{step * 0.7:.1f}" height="{height:.1f}"><title>{html.escape(label)}: '
            f'{shown_value}</title></rect><text x="{x + step / 2:.1f}" y="97" text-anchor="middle">'
            f'{html.escape(label)}</text><text x="{x + step / 2:.1f}" y="{82 - height:.1f}" text-anchor="middle">'
            f"{shown_value}</text></g>"
        )
    return f'<svg viewBox="0 0 300 100" role="img">{"".join(drawn)}</svg>'


def acceptance_histogram(drawn: Charts) -> str:
    counts = drawn.acceptance_bins
    labels = [f"≤{edge // 60}m" for edge in BINS] + [f">{BINS[-1] // 60}m"]
    return bars(list(zip(labels, counts, strict=True)) if any(counts) else [])


def target_by_period(drawn: Charts, *, by_month: bool) -> str:
    """Each day's share of calls within target (each month's, over a long period), in the agency's days."""
    periods: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for day, count, within in drawn.days:
        totals = periods[day.strftime("%Y-%m" if by_month else "%m-%d")]
        totals[0] += count
        totals[1] += within
    return bars(
        [(label, round(100 * within / count)) for label, (count, within) in periods.items()], unit="%", scale_max=100
    )


def coverage(drawn: Charts) -> str:
    return bars(drawn.coverage)


async def cad_feeds(session: AsyncSession, principal: Principal, now: datetime) -> str:
    """Each CAD feed in view: when it last spoke, and a silence the watch found (a call that never reaches
    Callout alerts nobody, so a silent feed is shown to those who can chase it)."""
    query = select(Agency).order_by(Agency.slug)
    if principal.role is not Role.admin:
        query = query.where(Agency.id == principal.agency_id)
    rows = []
    for agency in await session.scalars(query):
        state = await feed_state(session, agency, now)
        silence = state.silence(agency.timezone)
        said = f"<p class=silent>{html.escape(silence)}</p>" if silence else ""
        rows.append(
            f'<tr data-agency="{html.escape(agency.slug)}"><td>{html.escape(agency.slug)}</td>'
            f"<td>{'silent' if silence else 'speaking' if state.feed.last_sign else 'nothing yet'}</td>"
            f"<td>{said}{html.escape(state.heard(agency.timezone))}</td></tr>"
        )
    return (
        '<section class=feeds id="cad-feeds"><h2>CAD feeds</h2><table><tr><th>agency</th><th>state</th>'
        f"<th>what came</th></tr>{''.join(rows) or '<tr><td colspan=3>No agencies.</td></tr>'}</table></section>"
    )


async def open_callouts(session: AsyncSession, principal: Principal) -> str:
    query = (
        select(Callout, Incident.ref, Agency.slug, Agency.timezone)
        .join(Incident, Incident.id == Callout.incident_id)
        .join(Agency, Agency.id == Callout.agency_id)
        .where(Callout.status.in_((*OPEN, CalloutStatus.accepted)))
        .order_by(Callout.created_at)
        .limit(200)
    )
    if principal.role is not Role.admin:
        query = query.where(Callout.agency_id == principal.agency_id)
    found = (await session.execute(query)).all()
    named = await advocates(session, (i for c, *_ in found for i in people_of(c)))
    rows = "".join(
        f'<tr><td><a href="/dashboard/incidents/{html.escape(ref)}">{html.escape(ref)}</a></td>'
        f"<td>{html.escape(slug)}</td><td>{html.escape(c.code)}</td><td>{html.escape(c.tier)}</td>"
        f"<td>{html.escape(c.area or '')}</td><td>{html.escape(c.status)}</td><td>{c.step + 1 if c.step >= 0 else '—'}"
        f"</td><td>{html.escape(local_time(c.due_at, zone, '%m-%d %H:%M:%S %Z'))}</td>"
        f"<td class=people>{people_cell(c, named)}</td></tr>"
        for c, ref, slug, zone in found
    )
    return (
        '<section class=open id="open-callouts"><h2>Open callouts</h2><table><tr><th>incident</th><th>agency</th>'
        "<th>code</th><th>tier</th><th>area</th><th>state</th><th>step</th><th>next</th><th>on call</th></tr>"
        f"{rows or '<tr><td colspan=9>None open.</td></tr>'}</table></section>"
    )


def people_of(callout: Callout) -> dict[int, str]:
    """The advocates of a callout, by directory id, with their part in it: who accepted, else who is on call for
    it in each role (as the directory answered when it was routed)."""
    accepted = callout.accepted_by or {}
    if isinstance(accepted.get("advocate_id"), int):
        return {accepted["advocate_id"]: "accepted"}
    roles: dict[int, str] = {}
    for role in ROSTER_ROLES:
        for person in (callout.roster or {}).get(role) or ():
            if isinstance(person, dict) and isinstance(person.get("advocate_id"), int):
                roles.setdefault(person["advocate_id"], role)
    return roles


def people_cell(callout: Callout, named: dict[int, Advocate]) -> str:
    if (callout.accepted_by or {}).get("role") == "hotline":
        return "accepted: the hotline"
    parts = [f"{role}: {named[i].html()}" for i, role in people_of(callout).items() if i in named]
    return "; ".join(parts) or "—"


SIGN_IN = """<form class=signin method=post action="/dashboard/sign-in"><h2>Sign in</h2>{note}
<label>Your supervisor or admin token<input name="token" type="password" autocomplete="current-password"></label>
<button>Sign in</button></form>"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style nonce="{nonce}">
body{{font:15px/1.4 system-ui,sans-serif;margin:0;padding:1rem;background:#f6f6f4;color:#222;max-width:1100px}}
h1{{font-size:1.3rem;margin:0 0 1rem}} h2{{font-size:1.05rem;margin:.2rem 0 .6rem}}
form.filters,.figures{{display:flex;flex-wrap:wrap;gap:.6rem;margin-bottom:1rem}}
label{{display:flex;flex-direction:column;font-size:.8rem;gap:.2rem}}
input,select,button{{font:inherit;padding:.35rem;min-width:0}} button,a.export{{align-self:flex-end}}
.figures div{{background:#fff;border-radius:6px;padding:.5rem .7rem;flex:1 1 9rem}}
.figures span{{display:block;font-size:.75rem;color:#555}} .figures strong{{font-size:1.1rem}}
section.chart,section.open{{background:#fff;border-radius:6px;padding:.7rem;margin-bottom:1rem}}
svg{{width:100%;height:auto;max-height:260px}} rect.bar{{fill:#3b6ea8}} svg text{{font-size:7px;fill:#333}}
table{{width:100%;border-collapse:collapse;font-size:.85rem;display:block;overflow-x:auto}}
td,th{{text-align:left;padding:.25rem .4rem;border-bottom:1px solid #eee;white-space:nowrap}}
td.data{{white-space:normal}}
.mark{{display:inline-block;margin-left:.3rem;padding:0 .3rem;border-radius:3px;font-size:.75rem}}
.mark.unverified{{background:#fff3cd;color:#664d03}} .mark.unreachable{{background:#f8d7da;color:#842029}}
.empty,.note{{color:#777}} #problem{{color:#842029}}
.silent{{background:#f8d7da;color:#842029;font-weight:600;padding:.3rem;margin:0 0 .3rem}}
form.account{{display:flex;gap:.5rem;align-items:center;float:right;font-size:.8rem}}
</style></head><body>{account}<h1>Callout · supervisors</h1>{body}</body></html>"""
