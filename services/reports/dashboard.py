"""The supervisors' dashboard: one server-rendered page, usable on a phone, its charts drawn as SVG from the same
figures as the reports API; filters are a form. Signing in with an issued token opens a server-side session
(shared/sessions.py): the browser keeps only its random id, in an HttpOnly, SameSite=Strict cookie, never the token.
Sign-in and sign-out refuse a POST from another site."""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from services.reports.figures import INTERVALS, Call, summary
from services.reports.routes import Filters, calls_for, export_csv
from shared import audit
from shared.auth import Principal, Role, TokenRefused, principal_for
from shared.db import SessionDep
from shared.incidents import timeline, visible_incident
from shared.security import csp_nonce
from shared.sessions import COOKIE, Lifetime, cookie_is_secure, cross_site, end_session, open_session, resume
from shared.settings import Settings
from shared.tables import OPEN, Agency, Callout, CalloutStatus, Incident
from shared.text import StorableStr

router = APIRouter(tags=["reports"], include_in_schema=False)
LEGACY_COOKIE = "callout_token"  # the raw token, as sign-in once kept it: cleared at the next sign-in
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
BINS = (60, 120, 300, 600, 1800, 3600)  # seconds: the edges of the acceptance-time histogram


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


def period(
    request: Request,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
    agency: Annotated[StorableStr | None, Query(max_length=64)] = None,
    area: Annotated[StorableStr | None, Query(max_length=64)] = None,
    tier: Annotated[StorableStr | None, Query(max_length=16)] = None,
    language: Annotated[StorableStr | None, Query(max_length=35)] = None,
) -> Filters:
    """The form's filters; by default the thirty days up to the next whole minute (this minute's calls too)."""
    upto = request.app.state.clock.now().replace(second=0, microsecond=0) + timedelta(minutes=1)
    end = (end or upto).replace(tzinfo=(end or upto).tzinfo or UTC)
    start = start.replace(tzinfo=start.tzinfo or UTC) if start else end - timedelta(days=30)
    return Filters(
        start=start,
        end=end,
        agency=agency or None,
        area=area or None,
        tier=tier if tier in ("immediate", "priority", "follow_up") else None,  # type: ignore[arg-type]
        language=language or None,
    )


PeriodDep = Annotated[Filters, Depends(period)]


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
async def dashboard(request: Request, session: SessionDep, filters: PeriodDep) -> Response:
    principal = await signed_in(request, session)
    if principal is None:
        return to_sign_in(request)
    calls = await calls_for(session, principal, filters)
    figures = summary(calls)
    body = "".join(
        [
            filter_form(filters),
            headline(figures),
            chart_section("Time to acceptance", "acceptance-histogram", acceptance_histogram(calls)),
            chart_section("Share within target, by day", "target-by-day", target_by_day(calls)),
            chart_section("Calls by area and language", "coverage", coverage(calls)),
            await open_callouts(session, principal),
        ]
    )
    return page("Callout dashboard", body, principal)


@router.get("/dashboard/export.csv")
async def dashboard_export(request: Request, session: SessionDep, filters: PeriodDep) -> Response:
    """The de-identified CSV of what the dashboard shows (signed in by its cookie)."""
    principal = await signed_in(request, session)
    if principal is None:
        return to_sign_in(request)
    return await export_csv(session, principal, filters, request)


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
    entries = await timeline(session, incident)
    rows = "".join(
        f"<tr><td>{e.observed_at:%Y-%m-%d %H:%M:%S}</td><td>{html.escape(e.stage)}</td>"
        f"<td class=data>{html.escape(describe(e.data))}</td></tr>"
        for e in entries
    )
    body = (
        f'<p><a href="/dashboard">← dashboard</a></p><h2>{html.escape(incident.ref)} · {html.escape(incident.tier)}'
        f" · {html.escape(incident.status)}</h2><table class=timeline><tr><th>at (UTC)</th><th>stage</th>"
        f"<th>what</th></tr>{rows}</table>"
    )
    return page(f"Timeline {incident.ref}", body, principal)


def describe(data: dict[str, Any]) -> str:
    keep = ("tier", "reasons", "role", "reason", "channel", "via", "to", "status", "language_match", "screened_in")
    return "; ".join(f"{k}: {v}" for k, v in data.items() if k in keep and v not in (None, [], ""))


def filter_form(f: Filters) -> str:
    def field(name: str, label: str, value: str | None, kind: str = "text") -> str:
        return f'<label>{label}<input name="{name}" type="{kind}" value="{html.escape(value or "")}"></label>'

    tiers = "".join(
        f'<option value="{t}"{" selected" if f.tier == t else ""}>{t or "any"}</option>'
        for t in ("", "immediate", "priority", "follow_up")
    )
    return (
        '<form class=filters method=get action="/dashboard">'
        + field("from", "From", f.start.isoformat())
        + field("to", "To", f.end.isoformat())
        + field("agency", "Agency", f.agency)
        + field("area", "Area", f.area)
        + f'<label>Tier<select name="tier">{tiers}</select></label>'
        + field("language", "Language", f.language)
        + "<button>Show</button>"
        + f'<a class=export href="/dashboard/export.csv?{html.escape(urlencode(query_of(f)))}">Export CSV</a></form>'
    )


def query_of(f: Filters) -> dict[str, str]:
    values = {"from": f.start.isoformat(), "to": f.end.isoformat(), "agency": f.agency, "area": f.area}
    values |= {"tier": f.tier, "language": f.language}
    return {k: v for k, v in values.items() if v}


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
        shown = f"{value:g}{unit}"
        drawn.append(
            f'<g><rect class="bar" data-label="{html.escape(label)}" data-value="{value:g}" x="{x + step * 0.15:.1f}" '
            f'y="{86 - height:.1f}" width="{step * 0.7:.1f}" height="{height:.1f}"><title>{html.escape(label)}: '
            f'{shown}</title></rect><text x="{x + step / 2:.1f}" y="97" text-anchor="middle">{html.escape(label)}'
            f'</text><text x="{x + step / 2:.1f}" y="{82 - height:.1f}" text-anchor="middle">{shown}</text></g>'
        )
    return f'<svg viewBox="0 0 300 100" role="img">{"".join(drawn)}</svg>'


def acceptance_histogram(calls: list[Call]) -> str:
    counts = [0] * (len(BINS) + 1)
    for call in calls:
        if (seconds := call.seconds.get("acceptance")) is not None:
            counts[next((i for i, edge in enumerate(BINS) if seconds <= edge), len(BINS))] += 1
    labels = [f"≤{edge // 60}m" for edge in BINS] + [f">{BINS[-1] // 60}m"]
    return bars(list(zip(labels, counts, strict=True)) if any(counts) else [])


def target_by_day(calls: list[Call]) -> str:
    days: dict[str, list[Call]] = defaultdict(list)
    for call in calls:
        days[call.received_at.strftime("%m-%d")].append(call)
    shares = [
        (day, round(100 * sum(c.within_target for c in group) / len(group))) for day, group in sorted(days.items())
    ]
    return bars(shares, unit="%", scale_max=100)


def coverage(calls: list[Call]) -> str:
    groups: dict[str, int] = defaultdict(int)
    for call in calls:
        groups[f"{call.area or '?'} · {(call.language or '?').split('-')[0]}"] += 1
    return bars(sorted(groups.items()))


async def open_callouts(session: SessionDep, principal: Principal) -> str:
    query = (
        select(Callout, Incident.ref, Agency.slug)
        .join(Incident, Incident.id == Callout.incident_id)
        .join(Agency, Agency.id == Callout.agency_id)
        .where(Callout.status.in_((*OPEN, CalloutStatus.accepted)))
        .order_by(Callout.created_at)
        .limit(200)
    )
    if principal.role is not Role.admin:
        query = query.where(Callout.agency_id == principal.agency_id)
    rows = "".join(
        f'<tr><td><a href="/dashboard/incidents/{html.escape(ref)}">{html.escape(ref)}</a></td>'
        f"<td>{html.escape(slug)}</td><td>{html.escape(c.code)}</td><td>{html.escape(c.tier)}</td>"
        f"<td>{html.escape(c.area or '')}</td><td>{html.escape(c.status)}</td><td>{c.step + 1 if c.step >= 0 else '—'}"
        f"</td><td>{c.due_at:%H:%M:%S}</td></tr>"
        for c, ref, slug in await session.execute(query)
    )
    return (
        '<section class=open id="open-callouts"><h2>Open callouts</h2><table><tr><th>incident</th><th>agency</th>'
        "<th>code</th><th>tier</th><th>area</th><th>state</th><th>step</th><th>next (UTC)</th></tr>"
        f"{rows or '<tr><td colspan=8>None open.</td></tr>'}</table></section>"
    )


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
.empty,.note{{color:#777}}
form.account{{display:flex;gap:.5rem;align-items:center;float:right;font-size:.8rem}}
</style></head><body>{account}<h1>Callout · supervisors</h1>{body}</body></html>"""
