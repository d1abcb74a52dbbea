"""The alerts side of the directory's HTTP API: who is on call, and how a tier escalates there."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import datetime, timedelta

import httpx
from pydantic import ValidationError

from services.alerts.callout import Person, Policy, Value
from shared.clock import Clock


class DirectoryUnavailable(Exception):
    pass


class OnCallAnswer(Value):
    """What the directory answers: who is on call, in order (primaries, backups, supervisors), and how the tier
    escalates there."""

    chain: tuple[Person, ...]
    policy: Policy


class ShiftAhead(Value):
    """Someone on call soon whose phone may fail them: not proven, or a channel that cannot reach it."""

    advocate_id: int
    key: str
    role: str
    area: str
    starts_at: datetime
    ends_at: datetime
    phone_verified: bool
    unreachable: tuple[str, ...]


class CoverageGap(Value):
    """Nobody on call in a role in an area, from `starts_at` to `ends_at` (as far as the directory looked)."""

    area: str
    role: str
    starts_at: datetime
    ends_at: datetime


class UnfilledCover(Value):
    """Cover an advocate asked for and nobody has taken, for a shift starting within a day."""

    id: int
    area: str
    role: str
    advocate_id: int
    advocate: str  # their key
    starts_at: datetime
    ends_at: datetime


class ContactWatch(Value):
    """The directory's answer about an agency's people's phones: who is at risk soon, and whom to tell."""

    agency: str
    timezone: str
    hotline: str
    at_risk: tuple[ShiftAhead, ...]
    supervisors: dict[str, tuple[Person, ...]]  # each area's supervisors on call now
    areas_of: dict[int, tuple[str, ...]]  # each active advocate's areas
    keys: dict[int, str]  # each active advocate's key
    gaps: tuple[CoverageGap, ...]  # starting within two days
    unfilled_cover: tuple[UnfilledCover, ...] = ()  # a directory of the release before sends none


Question = tuple[str, str | None, str | None, str]


class DirectoryClient:
    """Answers are kept for `fresh_for`: on-call state is read every few seconds, as GoAlert's engine does, not
    once per callout — a burst of calls in one area asks once. A shift change shows within that time. For as long
    again an older answer is still used while a fresh one is fetched beside it: a callout never waits on the
    refresh of an answer seconds old."""

    def __init__(self, http: httpx.AsyncClient, *, clock: Clock, fresh_for: timedelta) -> None:
        self.http, self.clock, self.fresh_for = http, clock, fresh_for
        self._answers: dict[Question, tuple[datetime, OnCallAnswer]] = {}
        self._asking: defaultdict[Question, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._refreshing: dict[Question, asyncio.Task[None]] = {}
        self._unsaved: set[Question] = set()  # refreshed beside a callout: the next caller is told it is new

    async def on_call(
        self, agency: str, *, area: str | None, at: datetime, language: str | None, tier: str
    ) -> tuple[OnCallAnswer, bool]:
        """Who is on call, in order, and how `tier` escalates there; and whether the directory was asked just now
        (False: a kept answer)."""
        key = (agency, area, language, tier)
        kept = self._answers.get(key)
        if kept is not None and at - kept[0] < 2 * self.fresh_for:
            if at - kept[0] >= self.fresh_for and key not in self._refreshing:
                self._refreshing[key] = asyncio.create_task(self._refresh(key, at))
            new = key in self._unsaved
            self._unsaved.discard(key)
            return kept[1], new
        async with self._asking[key]:  # a burst for one area waits for the one question already asked
            kept = self._answers.get(key)
            if kept is not None and at - kept[0] < self.fresh_for:
                return kept[1], False
            answer = await self._ask(agency, area=area, at=at, language=language, tier=tier)
            self._answers[key] = (at, answer)
            return answer, True

    async def _refresh(self, key: Question, at: datetime) -> None:
        agency, area, language, tier = key
        try:
            async with self._asking[key]:
                self._answers[key] = (at, await self._ask(agency, area=area, at=at, language=language, tier=tier))
                self._unsaved.add(key)
        except DirectoryUnavailable:
            pass  # the kept answer ages out; the next callout then asks itself, and learns of the outage
        finally:
            del self._refreshing[key]

    async def _ask(
        self, agency: str, *, area: str | None, at: datetime, language: str | None, tier: str
    ) -> OnCallAnswer:
        params = {"at": at.isoformat(), "tier": tier}
        if area:
            params["area"] = area
        if language:
            params["language"] = language
        try:
            response = await self.http.get(f"/v1/directory/agencies/{agency}/on-call", params=params)
            response.raise_for_status()
            return OnCallAnswer.model_validate_json(response.content)
        except (httpx.HTTPError, ValidationError) as exc:  # an answer that is not one is no answer
            raise DirectoryUnavailable(type(exc).__name__) from exc

    async def contact_watch(self, agency: str, *, hours: int) -> ContactWatch:
        """Asked every few minutes by the watch, never kept: it is about what changes (phones, schedules)."""
        try:
            response = await self.http.get(
                f"/v1/directory/agencies/{agency}/contact-watch", params={"hours": str(hours)}
            )
            response.raise_for_status()
            return ContactWatch.model_validate_json(response.content)
        except (httpx.HTTPError, ValidationError) as exc:
            raise DirectoryUnavailable(type(exc).__name__) from exc
