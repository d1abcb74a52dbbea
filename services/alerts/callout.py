"""A callout's state, the events that move it, and what each event makes Callout do — decided here, in pure code.

`decide(state, event, now)` returns the next state and the effects to carry out (alert someone, tell the others,
write the timeline, post to the CAD). It reads nothing and writes nothing: `escalation.py` loads the state with the
row locked, asks, writes the new state and applies the effects in the same transaction, and is the only writer of a
callout's status. The rules it keeps (tests/test_callout_properties.py checks them for any order of events):
every callout ends accepted, heard by the hotline or ended by CAD; nobody who declined is alerted again for that
callout; the first acceptance wins, and whoever it is holds a link to the details; each step alerts each of its
people at most once on each channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from shared.tables import OPEN, CalloutStatus, Stage

Role = Literal["primary", "backup", "supervisor", "hotline"]
ChannelName = Literal["sms", "voice"]
ROLES: tuple[Role, ...] = ("primary", "backup", "supervisor")
HOTLINE_CHANNELS: tuple[ChannelName, ...] = ("sms", "voice")
# What the acceptor reports as they go (`Progressed`).
PROGRESS = (Stage.en_route, Stage.on_scene, Stage.survivor_contacted, Stage.survivor_declined, Stage.closed)
NOTIFY_BACK = (Stage.acknowledged, Stage.en_route, Stage.on_scene)  # what the dispatcher is told


class Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Person(Value):
    """Someone a step can alert: an advocate on call in a role, or the program's hotline."""

    role: Role
    phone: str
    advocate_id: int | None = None
    key: str | None = None
    language_match: bool | None = None
    reason: str | None = None

    @property
    def recipient(self) -> str:
        """Who answers, whatever role they were alerted in: an advocate who declined as primary has declined."""
        return "hotline" if self.role == "hotline" else f"advocate:{self.advocate_id}"


class RosterSource(Value):
    """Where the roster came from: the directory just now, its last known answer while it cannot be reached, or
    nothing at all."""

    kind: Literal["directory", "last known", "none"]
    fetched_at: str | None = None
    age_seconds: float | None = None


class Roster(Value):
    """Who is on call for this callout, in order within each role, as the directory answered when it was routed."""

    primary: tuple[Person, ...] = ()
    backup: tuple[Person, ...] = ()
    supervisor: tuple[Person, ...] = ()
    hotline: str
    source: RosterSource = RosterSource(kind="directory")

    def candidates(self, role: Role) -> tuple[Person, ...]:
        if role == "hotline":
            return (self.hotline_person,)
        people: tuple[Person, ...] = getattr(self, role)
        return people

    @property
    def hotline_person(self) -> Person:
        return Person(role="hotline", phone=self.hotline)


class Step(Value):
    notify: tuple[Role, ...]
    via: tuple[ChannelName, ...]
    wait_seconds: int


class Policy(Value):
    steps: tuple[Step, ...] = ()
    repeat: int = 0


class Acceptance(Value):
    recipient: str
    role: Role
    advocate_id: int | None
    via: str


@dataclass(frozen=True)
class Alert:
    """One alert of the current step, as it stands: `alive` while it may still reach its person."""

    recipient: str
    channel: ChannelName
    alive: bool


@dataclass(frozen=True)
class State:
    status: CalloutStatus
    due_at: datetime
    roster: Roster | None = None
    policy: Policy | None = None
    step: int = -1  # index into the policy's steps; -1 before the first
    round: int = 0  # 0, then 1.. for each repeat of the steps
    step_seq: int = 0  # counts every step started; alerts carry it
    declined: frozenset[str] = frozenset()
    accepted_by: Acceptance | None = None
    ending: bool = False  # CAD ended the call (or it stopped being DV): the callout must end
    alerts: tuple[Alert, ...] = ()  # the current step's alerts
    unreachable: frozenset[tuple[str, ChannelName]] = frozenset()  # (phone, channel) that cannot be reached
    linked: frozenset[str] = frozenset()  # who holds a text with a link to this callout's page


# -- events ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Routed:
    """The directory answered (or its last known answer stands in): start the first step."""

    roster: Roster
    policy: Policy


@dataclass(frozen=True)
class Unroutable:
    """The directory stayed out of reach and nothing is known of this area: only the hotline is left."""

    hotline: str


@dataclass(frozen=True)
class Due:
    """The callout's timer fired: the step's wait is over, nothing in it can still reach anyone, or it must end."""


@dataclass(frozen=True)
class AlertFailed:
    """An alert of step `step_seq` will not reach its person (`State.alerts` already shows it dead)."""

    step_seq: int | None


@dataclass(frozen=True)
class Answered:
    person: Person
    accept: bool
    via: str


@dataclass(frozen=True)
class Progressed:
    person: Person
    stage: Stage
    via: str  # sms, link, or (survivor contacted) the masked call itself
    detail: dict[str, Any] = field(default_factory=dict)


Event = Routed | Unroutable | Due | AlertFailed | Answered | Progressed


# -- effects --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendAlert:
    """Alert `person` on `channel` for the step just started; `retry_until` bounds retries of provider faults
    (None: the hotline's last alerts, retried until they go)."""

    person: Person
    channel: ChannelName
    retry_until: datetime | None


@dataclass(frozen=True)
class SendLink:
    """A text with a link to the callout's page for whoever accepted without holding one (by a call, say)."""

    person: Person


@dataclass(frozen=True)
class Tell:
    """A courtesy text to everyone an alert reached, except `but`."""

    message: Literal["taken", "cancelled"]
    but: str | None = None


@dataclass(frozen=True)
class StopAlerting:
    """Cancel what may still reach `recipient` (None: everything not yet sent, to everyone)."""

    recipient: str | None = None


@dataclass(frozen=True)
class Record:
    stage: Stage
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NotifyCad:
    stage: Stage
    role: Role


@dataclass(frozen=True)
class WakeWorker:
    """The callout is due now: a worker should take it up at once."""


@dataclass(frozen=True)
class Unheard:
    """The hotline's last alerts failed too: nobody at all could be reached. The loudest log line there is."""


Effect = SendAlert | SendLink | Tell | StopAlerting | Record | NotifyCad | WakeWorker | Unheard
Outcome = Literal["accepted", "yours", "taken", "ended", "declined", "not accepted", "recorded", "unchanged"]


@dataclass(frozen=True)
class Decision:
    state: State
    effects: tuple[Effect, ...] = ()
    outcome: Outcome = "unchanged"


# -- the transition function ---------------------------------------------------------------------------------------


def decide(state: State, event: Event, now: datetime) -> Decision:
    """What `event` does to a callout in `state` at `now`."""
    if isinstance(event, Routed):
        if state.status != CalloutStatus.pending or state.ending:
            return Decision(state)
        routed = replace(state, roster=event.roster, policy=event.policy)
        return start_next_step(routed, now)
    if isinstance(event, Unroutable):
        if state.status != CalloutStatus.pending or state.ending:
            return Decision(state)
        nobody = Roster(hotline=event.hotline, source=RosterSource(kind="none"))
        unrouted = replace(state, roster=nobody, policy=Policy())
        return exhaust(unrouted, now, ["directory unreachable"])
    if isinstance(event, Due):
        if state.ending:
            return end(state, now)
        if state.status == CalloutStatus.alerting and state.due_at <= now:
            return start_next_step(state, now)
        return Decision(state)
    if isinstance(event, AlertFailed):
        return alert_failed(state, event, now)
    if isinstance(event, Answered):
        return answered(state, event, now)
    return progressed(state, event, now)


def settled(state: State, person: Person) -> Outcome | None:
    """Why an answer comes too late, if it does: accepted (by this person or another), or ended."""
    if state.status == CalloutStatus.accepted:
        return "yours" if state.accepted_by and state.accepted_by.recipient == person.recipient else "taken"
    if state.status not in OPEN or state.ending:
        return "ended"
    return None


def step_recipients(state: State, step: Step) -> list[Person]:
    """One person for each role the step names: the first on call who has not declined, each person once."""
    assert state.roster is not None
    chosen: list[Person] = []
    for role in step.notify:
        for person in state.roster.candidates(role):
            taken = {p.recipient for p in chosen}
            if person.recipient not in state.declined and person.recipient not in taken:
                chosen.append(person)
                break
    return chosen


def start_next_step(state: State, now: datetime) -> Decision:
    """Start the policy's next step that has someone to alert; past the last (and its repeats), the hotline."""
    assert state.policy is not None and state.roster is not None
    steps, repeat = state.policy.steps, state.policy.repeat
    index, round_ = state.step + 1, state.round
    skipped: list[str] = []
    recipients: list[Person] = []
    for _ in range(len(steps) * (repeat + 1) if steps else 0):
        if index >= len(steps):
            if round_ >= repeat:
                break
            round_, index = round_ + 1, 0
        recipients = step_recipients(state, steps[index])
        if recipients:
            break
        skipped.append(f"nobody on call for step {index + 1} ({'/'.join(steps[index].notify)})")
        index += 1
    if not recipients:
        return exhaust(state, now, skipped)

    step = steps[index]
    first = state.step_seq == 0
    due_at = now + timedelta(seconds=step.wait_seconds)
    sends = [
        SendAlert(person, channel, due_at)
        for person in recipients
        for channel in step.via
        if (person.phone, channel) not in state.unreachable
    ]
    effects: list[Effect] = []
    if first:
        effects += [
            Record(
                Stage.advocate_matched,
                {
                    "advocate_id": p.advocate_id,
                    "role": p.role,
                    "reason": p.reason,
                    "language_match": p.language_match,
                    "roster": state.roster.source.model_dump(exclude_none=True),
                },
            )
            for p in recipients
            if p.role != "hotline"
        ]
    if not sends:
        skipped.append(f"step {index + 1}: every channel unreachable for {'/'.join(p.role for p in recipients)}")
    if not first or skipped or any(p.role == "hotline" for p in recipients):
        effects.append(
            Record(
                Stage.escalated,
                {
                    "step": index + 1,
                    "round": round_,
                    "to": [p.role for p in recipients],
                    "advocate_ids": [p.advocate_id for p in recipients],
                    "via": list(step.via),
                    "reason": "; ".join(skipped) or None,
                    "roster": state.roster.source.model_dump(exclude_none=True) if first else None,
                },
            )
        )
    effects += sends
    if not sends:  # everyone this step names is unreachable on its channels: no point waiting
        due_at = now
        effects.append(WakeWorker())
    started = replace(
        state,
        status=CalloutStatus.alerting,
        step=index,
        round=round_,
        step_seq=state.step_seq + 1,
        due_at=due_at,
        alerts=tuple(Alert(s.person.recipient, s.channel, alive=True) for s in sends),
    )
    return Decision(started, tuple(effects))


def exhaust(state: State, now: datetime, skipped: list[str]) -> Decision:
    """Every step is spent: alert the 24/7 hotline by text and call. A callout never ends unheard — unless the
    hotline itself has already answered no, which is a human's answer."""
    assert state.roster is not None
    reason = "; ".join(["every step spent" if state.step >= 0 else "nobody on call", *skipped])
    hotline = state.roster.hotline_person
    sends = [] if hotline.recipient in state.declined else [SendAlert(hotline, c, None) for c in HOTLINE_CHANNELS]
    exhausted = replace(
        state,
        status=CalloutStatus.exhausted,
        step_seq=state.step_seq + 1,
        due_at=now,
        alerts=tuple(Alert(hotline.recipient, s.channel, alive=True) for s in sends),
    )
    escalated = Record(Stage.escalated, {"to": ["hotline"] if sends else [], "reason": reason})
    return Decision(exhausted, (escalated, *sends))


def alert_failed(state: State, event: AlertFailed, now: datetime) -> Decision:
    """When nothing of the current step can still reach anyone, the next step starts now."""
    if event.step_seq != state.step_seq or any(a.alive for a in state.alerts) or state.ending:
        return Decision(state)
    if state.status == CalloutStatus.alerting:
        return Decision(replace(state, due_at=now), (WakeWorker(),))
    if state.status == CalloutStatus.exhausted:
        return Decision(state, (Unheard(),))
    return Decision(state)


def answered(state: State, event: Answered, now: datetime) -> Decision:
    person = event.person
    if (too_late := settled(state, person)) is not None:
        return Decision(state, outcome=too_late)
    if event.accept:  # the first acceptance wins: escalation stops, the others are told
        acceptance = Acceptance(
            recipient=person.recipient, role=person.role, advocate_id=person.advocate_id, via=event.via
        )
        accepted = replace(state, status=CalloutStatus.accepted, accepted_by=acceptance, due_at=now)
        effects: tuple[Effect, ...] = (
            Record(Stage.acknowledged, {"via": event.via, "role": person.role, "advocate_id": person.advocate_id}),
            *(() if person.recipient in state.linked else (SendLink(person),)),
            StopAlerting(),
            Tell("taken", but=person.recipient),
            NotifyCad(Stage.acknowledged, person.role),
        )
        return Decision(accepted, effects, "accepted")
    if person.recipient in state.declined:
        return Decision(state, outcome="declined")
    # A no is an answer: stop alerting that person, and move on at once if nobody else in the step is left.
    alerts = tuple(replace(a, alive=False) if a.recipient == person.recipient else a for a in state.alerts)
    declined = replace(state, declined=state.declined | {person.recipient}, alerts=alerts)
    effects = (
        Record(Stage.declined, {"via": event.via, "role": person.role, "advocate_id": person.advocate_id}),
        StopAlerting(person.recipient),
    )
    moved = alert_failed(declined, AlertFailed(state.step_seq), now)
    return Decision(moved.state, effects + moved.effects, "declined")


def progressed(state: State, event: Progressed, now: datetime) -> Decision:
    """En route, on scene, survivor contacted or declined, closed: only from the person who accepted."""
    if state.status != CalloutStatus.accepted or state.accepted_by is None or state.ending:
        return Decision(state, outcome="not accepted" if state.status in OPEN and not state.ending else "ended")
    if state.accepted_by.recipient != event.person.recipient:
        return Decision(state, outcome="taken")
    data = {"role": event.person.role, "advocate_id": event.person.advocate_id, "via": event.via, **event.detail}
    effects: list[Effect] = [Record(event.stage, data)]
    if event.stage in NOTIFY_BACK:
        effects.append(NotifyCad(event.stage, event.person.role))
    after = replace(state, status=CalloutStatus.closed) if event.stage == Stage.closed else state
    return Decision(after, tuple(effects), "recorded")


def end(state: State, now: datetime) -> Decision:
    """CAD ended the call (or it stopped being DV): stop alerting and tell whoever was alerted."""
    if state.status not in (*OPEN, CalloutStatus.accepted):
        return Decision(state)
    effects: tuple[Effect, ...] = () if state.status == CalloutStatus.pending else (StopAlerting(), Tell("cancelled"))
    return Decision(replace(state, status=CalloutStatus.cancelled, due_at=now), effects)
