"""How each tier escalates, agency-wide and in each area, with where that comes from (Callout's default, the
agency's own, the area's own), in words; a form to set a tier's policy for the agency or one area, and a button to
go back to what applies above. And the program's hotline and CAD feed watch. Both forms validate as the API's
PUTs do, save through the same functions, and every change is audited."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Annotated, Any, get_args

from annotated_types import Ge, Le, MaxLen
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from services.directory import service
from services.directory.models import Area
from services.directory.pages.common import (
    INTERNATIONAL,
    PREFIX,
    Refusal,
    Viewer,
    area_of,
    areas_of,
    audit_change,
    changer,
    done_note,
    field_problems,
    field_text,
    form_of,
    in_savepoint,
    not_found,
    phone_number,
    redirect,
    render,
    typed_form,
    viewer,
)
from services.directory.policies import delete_policy, policy_for, put_policy
from services.directory.schemas import PolicyIn, PolicyOut, ProgramIn, Step, Tier
from shared.db import SessionDep
from shared.problems import NotFound
from shared.tables import Agency

LIMITS = {Ge: "ge", Le: "le", MaxLen: "max_length"}


def bound(model: type[BaseModel], name: str, kind: type[Ge | Le | MaxLen]) -> Any:
    """A limit of the model's field, read from the model: the page says the API's own numbers. Were there two
    of a kind, the one that holds is the tighter."""
    limits = [getattr(m, LIMITS[kind]) for m in model.model_fields[name].metadata if isinstance(m, kind)]
    return max(limits) if kind is Ge else min(limits)


def choices(model: type[BaseModel], name: str) -> tuple[str, ...]:
    """The values a list-of-literals field takes, in the model's order."""
    return get_args(get_args(model.model_fields[name].annotation)[0])


TIERS: tuple[str, ...] = get_args(Tier)
NOTIFY, VIA = choices(Step, "notify"), choices(Step, "via")
MAX_STEPS = bound(PolicyIn, "steps", MaxLen)
WAIT_SECONDS = (bound(Step, "wait_seconds", Ge), bound(Step, "wait_seconds", Le))
ROWS_AT_FIRST = 3  # a short policy still shows a couple of empty rows to add steps in
HOW = {"sms": "text", "voice": "call"}
SOURCES = {"default": "Callout's default", "agency": "the agency's own, for every area", "area": "this area's own"}
POLICY_HELP = {
    "tier": "Choose a tier.",
    "scope": "Choose every area, or one area.",
    "steps": f"From 1 to {MAX_STEPS} steps: fill in at least one row.",
    "notify": "Choose whom to alert: one or more.",
    "via": "Choose how: a text, a call, or both.",
    "wait_seconds": f"Minutes to wait for an acceptance: more than 0, up to {WAIT_SECONDS[1] // 60}.",
    "repeat": f"How many times to run all the steps again: {bound(PolicyIn, 'repeat', Ge)} to "
    f"{bound(PolicyIn, 'repeat', Le)}.",
}

router = APIRouter(include_in_schema=False)


# -- in words -------------------------------------------------------------------------------------------------------


def duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    if not rest:
        return f"{days} day" + ("" if days == 1 else "s")
    for unit, size in (("h", 3600), ("min", 60)):
        if not seconds % size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def step_words(step: Step) -> str:
    """ "text and call the primary; wait 2 min" """
    how = " and ".join(HOW[v] for v in VIA if v in step.via)
    whom = " and ".join(f"the {n}" for n in step.notify)
    return f"{how} {whom}; wait {duration(step.wait_seconds)}"


def repeat_words(repeat: int) -> str:
    return {0: "not run again", 1: "then all once more", 2: "then all twice more"}.get(
        repeat, f"then all {repeat} more times"
    )


def tier_words(tier: str) -> str:
    return tier.replace("_", "-").capitalize()


def where_words(area: Area | None) -> str:
    return f"area {area.code}" if area else "every area"


# -- the policies ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyRow:
    tier: str
    scope: str  # "" for the agency; else the area's code
    where: str
    source: str
    said: str  # where it comes from, in words
    steps: list[str]
    repeat: str
    back_to: str | None  # when it is this scope's own: what applies once it is gone


@dataclass(frozen=True)
class StepRow:
    notify: list[str] = field(default_factory=list)
    via: list[str] = field(default_factory=list)
    wait: str = ""  # minutes, as typed

    @property
    def blank(self) -> bool:
        return not (self.notify or self.via or self.wait)

    @classmethod
    def of(cls, step: Step) -> StepRow:
        return cls(list(step.notify), list(step.via), f"{step.wait_seconds / 60:g}")


@dataclass(frozen=True)
class PolicyForm:
    """The form's values as typed (shown again as they were when something is wrong), and what is wrong. A row
    left empty is no step: emptying one drops it."""

    tier: str = TIERS[0]
    scope: str = ""
    steps: list[StepRow] = field(default_factory=list)
    repeat: str = "0"
    problems: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, policy: PolicyOut, scope: str) -> PolicyForm:
        return cls(policy.tier, scope, padded([StepRow.of(s) for s in policy.steps]), str(policy.repeat))

    @classmethod
    def sent(cls, form: FormData) -> PolicyForm:
        def listed(name: str) -> list[str]:
            return [v for v in form.getlist(name) if isinstance(v, str)]

        rows = [
            StepRow(listed(f"steps.{i}.notify"), listed(f"steps.{i}.via"), field_text(form, f"steps.{i}.wait"))
            for i in range(MAX_STEPS)
            if f"steps.{i}.wait" in form
        ]
        return cls(field_text(form, "tier"), field_text(form, "scope"), rows, field_text(form, "repeat"))

    def with_another_row(self) -> PolicyForm:
        return replace(self, steps=[*self.steps, StepRow()] if len(self.steps) < MAX_STEPS else self.steps)

    def spec(self) -> PolicyIn | dict[str, str]:
        """What the API would be sent, or what is wrong with it, field by field (each step's by its row)."""
        filled = [i for i, row in enumerate(self.steps) if not row.blank]
        problems: dict[str, str] = {}
        steps = []
        for i in filled:
            row = self.steps[i]
            seconds = minutes_as_seconds(row.wait)
            if seconds is None:
                problems[f"steps.{i}.wait_seconds"] = POLICY_HELP["wait_seconds"]
            steps.append({"notify": row.notify, "via": row.via, "wait_seconds": seconds})
        try:
            spec = PolicyIn.model_validate({"steps": steps, "repeat": self.repeat or "0"})
        except ValidationError as exc:
            return renumbered(field_problems(exc, POLICY_HELP, depth=3), filled) | problems
        return problems or spec


def padded(rows: list[StepRow]) -> list[StepRow]:
    """The policy's steps, then empty rows to add more in: at least one, while there is room."""
    blanks = max(ROWS_AT_FIRST - len(rows), 1)
    return rows + [StepRow()] * min(blanks, MAX_STEPS - len(rows))


def minutes_as_seconds(typed: str) -> int | None:
    """Minutes typed ("1.5") as the seconds a step waits, or None for what is no wait a step may have."""
    try:
        seconds = float(typed) * 60
    except ValueError:
        return None
    low, high = WAIT_SECONDS
    return round(seconds) if low <= seconds <= high else None  # neither NaN nor infinity is within


def renumbered(problems: dict[str, str], filled: list[int]) -> dict[str, str]:
    """The model numbers the steps it was sent; the form, its rows (empty ones are not sent)."""
    by_row = {}
    for name, text in problems.items():
        parts = name.split(".")
        if len(parts) > 1 and parts[0] == "steps" and parts[1].isdigit():
            parts[1] = str(filled[int(parts[1])])
        by_row[".".join(parts)] = text
    return by_row


async def policy_rows(session: AsyncSession, agency: Agency, areas: list[Area]) -> dict[str, list[PolicyRow]]:
    rows: dict[str, list[PolicyRow]] = {}
    for tier in TIERS:
        agency_wide = await policy_for(session, agency, None, tier)
        above = "the default" if agency_wide.source == "agency" else None
        rows[tier] = [row_of(agency_wide, None, above)]
        for area in areas:
            back_to = "the agency's" if agency_wide.source == "agency" else "the default"
            rows[tier].append(row_of(await policy_for(session, agency, area, tier), area, back_to))
    return rows


def row_of(policy: PolicyOut, area: Area | None, back_to: str | None) -> PolicyRow:
    own = policy.source == ("area" if area else "agency")
    return PolicyRow(
        tier=policy.tier,
        scope=area.code if area else "",
        where=f"Area {area.code}: {area.name}" if area else "Every area",
        source=policy.source,
        said=SOURCES[policy.source],
        steps=[step_words(s) for s in policy.steps],
        repeat=repeat_words(policy.repeat),
        back_to=back_to if own else None,
    )


async def policies_page(
    session: AsyncSession, found: Viewer, form: PolicyForm | None, status: int = 200, done: str | None = None
) -> HTMLResponse:
    areas = await areas_of(session, found.agency)
    if form is None:
        form = PolicyForm.of(await policy_for(session, found.agency, None, TIERS[0]), "")
    return render(
        "policies.html",
        status,
        found.principal,
        found.agency,
        tiers=[(tier, tier_words(tier)) for tier in TIERS],
        policies=await policy_rows(session, found.agency, areas),
        form=form,
        areas=areas,
        notify=NOTIFY,
        via=[(v, HOW[v]) for v in VIA],
        done=done,
    )


@router.get(PREFIX + "/{slug}/policies", response_class=HTMLResponse)
async def policies(
    slug: str,
    request: Request,
    session: SessionDep,
    tier: Annotated[str | None, Query(max_length=16)] = None,
    scope: Annotated[str, Query(max_length=64)] = "",
    done: str | None = None,
) -> Response:
    """?tier=&scope= opens the form on what applies there now."""
    found = await viewer(request, session, slug)
    if isinstance(found, Response):
        return found
    note = await done_note(session, found, done)
    area = await area_of(session, found.agency, scope) if scope else None  # none: every area
    if tier not in TIERS or (scope and area is None):
        return await policies_page(session, found, None, done=note)
    form = PolicyForm.of(await policy_for(session, found.agency, area, tier), scope)
    return await policies_page(session, found, form, done=note)


@router.post(PREFIX + "/{slug}/policies", response_class=HTMLResponse)
async def set_policy(slug: str, request: Request, session: SessionDep) -> Response:
    """Set a tier's policy for the agency or one area as the API's PUT does, or show what is wrong by each field
    with nothing changed. "Add a step row" shows the form again with one more row, and saves nothing."""
    found = await changer(request, session, slug)
    if isinstance(found, Response):
        return found
    sent = await form_of(request, session, found)
    if isinstance(sent, Response):
        return sent
    form = PolicyForm.sent(sent)
    if sent.get("action") == "add-row":
        return await policies_page(session, found, form.with_another_row())
    area = await area_of(session, found.agency, form.scope) if form.scope else None  # none: every area
    spec = form.spec()
    problems = spec if isinstance(spec, dict) else {}
    if form.tier not in TIERS:
        problems["tier"] = POLICY_HELP["tier"]
    if form.scope and area is None:
        problems["scope"] = POLICY_HELP["scope"]
    if problems or isinstance(spec, dict):
        return await policies_page(session, found, replace(form, problems=problems), status=422)
    refused = await in_savepoint(session, put_policy(session, found.agency, area, form.tier, spec))
    if isinstance(refused, Refusal):
        return await policies_page(session, found, replace(form, problems={"tier": refused.text}), status=409)
    note = f"Saved: {tier_words(form.tier)} in {where_words(area)}."
    done = await audit_change(session, found, request, note, tier=form.tier, **({"area": area.code} if area else {}))
    return redirect(found.agency, "policies", tier=form.tier, scope=form.scope, done=done)


@router.post(PREFIX + "/{slug}/policies/reset", response_class=HTMLResponse)
async def reset_policy(slug: str, request: Request, session: SessionDep) -> Response:
    """Drop the agency's or an area's own policy for a tier, as the API's DELETE does."""
    found = await changer(request, session, slug)
    if isinstance(found, Response):
        return found
    sent = await form_of(request, session, found)
    if isinstance(sent, Response):
        return sent
    form = PolicyForm.sent(sent)
    area = await area_of(session, found.agency, form.scope) if form.scope else None  # none: every area
    try:
        if form.tier not in TIERS or (form.scope and area is None):
            raise NotFound("No such policy.")
        await delete_policy(session, found.agency, area, form.tier)
    except NotFound as exc:
        return not_found(found, str(exc))
    note = f"{tier_words(form.tier)} in {where_words(area)} follows what applies above it again."
    done = await audit_change(session, found, request, note, tier=form.tier, **({"area": area.code} if area else {}))
    return redirect(found.agency, "policies", tier=form.tier, scope=form.scope, done=done)


# -- the hotline and the feed watch ---------------------------------------------------------------------------------

PROGRAM_HELP = {
    "hotline": f"The hotline's number, {INTERNATIONAL}.",
    "it_contact": f"A mobile number {INTERNATIONAL}, or nothing.",
    "feed_silence_minutes": (
        f"Minutes, from {bound(ProgramIn, 'feed_silence_minutes', Ge)} to "
        f"{bound(ProgramIn, 'feed_silence_minutes', Le)}, or nothing."
    ),
}


@dataclass(frozen=True)
class ProgramForm:
    hotline: str = ""
    feed_silence_minutes: str = ""
    it_contact: str = ""
    problems: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, agency: Agency) -> ProgramForm:
        minutes = agency.feed_silence_minutes
        return cls(agency.hotline, "" if minutes is None else str(minutes), agency.it_contact or "")

    @classmethod
    def sent(cls, form: FormData) -> ProgramForm:
        return typed_form(cls, form)

    def spec(self) -> ProgramIn | dict[str, str]:
        try:
            return ProgramIn.model_validate(
                {
                    "hotline": phone_number(self.hotline) or None,
                    "feed_silence_minutes": self.feed_silence_minutes or None,
                    "it_contact": phone_number(self.it_contact) or None,
                }
            )
        except ValidationError as exc:
            return field_problems(exc, PROGRAM_HELP)


def hotline_page(found: Viewer, form: ProgramForm, status: int = 200, done: str | None = None) -> HTMLResponse:
    return render("hotline.html", status, found.principal, found.agency, form=form, done=done)


@router.get(PREFIX + "/{slug}/hotline", response_class=HTMLResponse)
async def hotline(slug: str, request: Request, session: SessionDep, done: str | None = None) -> Response:
    found = await viewer(request, session, slug)
    if isinstance(found, Response):
        return found
    return hotline_page(found, ProgramForm.of(found.agency), done=await done_note(session, found, done))


@router.post(PREFIX + "/{slug}/hotline", response_class=HTMLResponse)
async def set_hotline(slug: str, request: Request, session: SessionDep) -> Response:
    """Set the hotline and the feed watch as the API's PUT …/program does, or show what is wrong by each field with
    nothing changed."""
    found = await changer(request, session, slug)
    if isinstance(found, Response):
        return found
    sent = await form_of(request, session, found)
    if isinstance(sent, Response):
        return sent
    form = ProgramForm.sent(sent)
    spec = form.spec()
    if isinstance(spec, dict):
        return hotline_page(found, replace(form, problems=spec), status=422)
    service.put_program(found.agency, spec)
    await session.flush()
    done = await audit_change(session, found, request, "Saved the hotline and the feed watch.")
    return redirect(found.agency, "hotline", done=done)
