"""The rules of a callout's state, for any roster, any policy and any order of failures, answers and timers:
every callout ends accepted, heard by the hotline or ended by CAD; nobody who declined is alerted again; the first
acceptance wins; each step alerts each of its people at most once on each channel."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.alerts.callout import (
    PROGRESS,
    AlertFailed,
    Answered,
    ChannelName,
    Decision,
    Due,
    Event,
    Person,
    Policy,
    Progressed,
    Roster,
    Routed,
    SendAlert,
    State,
    Step,
    StopAlerting,
    Tell,
    Unroutable,
    WakeWorker,
    decide,
)
from shared.tables import CalloutStatus, Stage

T0 = datetime(2026, 11, 16, 12, 0, tzinfo=UTC)
HOTLINE = "+12025550100"
ENDED = (CalloutStatus.accepted, CalloutStatus.cancelled, CalloutStatus.closed, CalloutStatus.exhausted)


@st.composite
def rosters(draw: st.DrawFn) -> Roster:
    """Up to five advocates, each on call in one or two roles (someone can be primary and supervisor)."""
    advocates = draw(st.integers(0, 5))
    roles: dict[str, list[Person]] = {"primary": [], "backup": [], "supervisor": []}
    for advocate_id in range(1, advocates + 1):
        for role in draw(st.sets(st.sampled_from(sorted(roles)), min_size=1, max_size=2)):
            roles[role].append(Person(role=role, phone=f"+1202555{advocate_id:04d}", advocate_id=advocate_id))
    return Roster(**{role: tuple(people) for role, people in roles.items()}, hotline=HOTLINE)


steps = st.builds(
    Step,
    notify=st.lists(st.sampled_from(["primary", "backup", "supervisor", "hotline"]), min_size=1, max_size=3).map(tuple),
    via=st.lists(st.sampled_from(["sms", "voice"]), min_size=1, max_size=2, unique=True).map(tuple),
    wait_seconds=st.integers(1, 600),
)
policies = st.builds(Policy, steps=st.lists(steps, min_size=0, max_size=4).map(tuple), repeat=st.integers(0, 2))
actions = st.lists(
    st.one_of(
        st.tuples(st.just("timer")),
        st.tuples(st.just("fail"), st.integers(0, 9)),
        st.tuples(st.sampled_from(["accept", "decline"]), st.integers(0, 6), st.sampled_from(["sms", "voice"])),
        st.tuples(st.just("progress"), st.integers(0, 6), st.sampled_from(sorted(Stage))),
        st.tuples(st.just("cad_ends")),
    ),
    max_size=40,
)


@dataclass
class Run:
    """A callout driven through `decide` as escalation.py and the worker drive it, keeping what it did."""

    state: State
    now: datetime = T0
    sent: list[tuple[int, str, ChannelName]] = field(default_factory=list)
    acceptances: list[str] = field(default_factory=list)
    hotline_heard: bool = False

    def step(self, event: Event) -> Decision:
        decision = decide(self.state, event, self.now)
        for effect in decision.effects:
            if isinstance(effect, SendAlert):
                assert effect.person.recipient not in decision.state.declined, "alerted after declining"
                self.sent.append((decision.state.step_seq, effect.person.recipient, effect.channel))
                self.hotline_heard |= effect.person.role == "hotline"
        if decision.outcome == "accepted":
            self.acceptances.append(decision.state.accepted_by.recipient if decision.state.accepted_by else "")
        self.state = decision.state
        if any(isinstance(e, WakeWorker) for e in decision.effects):
            self.step(Due())  # the worker takes a callout due now up at once
        return decision

    def people(self) -> list[Person]:
        roster = self.state.roster
        assert roster is not None
        return [*roster.primary, *roster.backup, *roster.supervisor, roster.hotline_person]


def play(run: Run, action: tuple[object, ...]) -> None:
    kind = action[0]
    if kind == "timer" and run.state.status == CalloutStatus.alerting:
        run.now = max(run.now, run.state.due_at)
        run.step(Due())
    elif kind == "fail":
        alive = [i for i, a in enumerate(run.state.alerts) if a.alive]
        if alive:  # as escalation.py loads it: the failed alert shows dead, then the event
            index = alive[int(action[1]) % len(alive)]  # type: ignore[call-overload]
            alerts = list(run.state.alerts)
            alerts[index] = replace(alerts[index], alive=False)
            run.state = replace(run.state, alerts=tuple(alerts))
            run.step(AlertFailed(run.state.step_seq))
    elif kind in ("accept", "decline"):
        people = run.people()
        person = people[int(action[1]) % len(people)]  # type: ignore[call-overload]
        before = run.state.accepted_by
        decision = run.step(Answered(person, kind == "accept", str(action[2])))
        if before is not None:
            assert decision.state.accepted_by == before, "a later acceptance replaced the first"
    elif kind == "progress":
        people = run.people()
        person = people[int(action[1]) % len(people)]  # type: ignore[call-overload]
        stage = Stage(str(action[2]))
        if stage in PROGRESS:
            run.step(Progressed(person, stage, "sms"))
    elif kind == "cad_ends":
        run.state = replace(run.state, ending=True)  # intake asks; the worker carries it out
        run.step(Due())
    run.now += timedelta(seconds=1)


def finish(run: Run) -> None:
    """Nobody answers any more: the timers run out, one step after another."""
    for _ in range(100):
        if run.state.status != CalloutStatus.alerting:
            return
        run.now = max(run.now, run.state.due_at)
        run.step(Due())
    raise AssertionError("the escalation never ended")


@settings(max_examples=400, deadline=None)
@given(roster=rosters(), policy=policies, script=actions)
def test_every_callout_ends_accepted_heard_by_the_hotline_or_ended_by_cad(
    roster: Roster, policy: Policy, script: list[tuple[object, ...]]
) -> None:
    run = Run(State(status=CalloutStatus.pending, due_at=T0))
    run.step(Routed(roster, policy))
    for action in script:
        play(run, action)
    finish(run)

    assert run.state.status in ENDED
    if run.state.status == CalloutStatus.exhausted:  # nobody accepted: the hotline heard it, or answered no
        assert run.hotline_heard or "hotline" in run.state.declined
    if run.state.status == CalloutStatus.cancelled:
        assert run.state.ending
    assert len(run.acceptances) <= 1, "more than one acceptance won"
    assert len(run.sent) == len(set(run.sent)), "a step alerted someone twice on one channel"


@settings(max_examples=200, deadline=None)
@given(roster=rosters(), policy=policies, script=actions)
def test_nothing_is_sent_once_a_callout_is_accepted_or_ended(
    roster: Roster, policy: Policy, script: list[tuple[object, ...]]
) -> None:
    run = Run(State(status=CalloutStatus.pending, due_at=T0))
    run.step(Routed(roster, policy))
    for action in script:
        settled = run.state.status in (CalloutStatus.accepted, CalloutStatus.cancelled, CalloutStatus.closed)
        before = len(run.sent)
        play(run, action)
        if settled:
            assert len(run.sent) == before


def test_the_first_acceptance_stops_the_others_and_tells_them() -> None:
    roster = Roster(
        primary=(Person(role="primary", phone="+12025550101", advocate_id=1),),
        backup=(Person(role="backup", phone="+12025550102", advocate_id=2),),
        hotline=HOTLINE,
    )
    policy = Policy(steps=(Step(notify=("primary", "backup"), via=("sms",), wait_seconds=60),))
    started = decide(State(status=CalloutStatus.pending, due_at=T0), Routed(roster, policy), T0).state

    first = decide(started, Answered(roster.backup[0], True, "sms"), T0)
    second = decide(first.state, Answered(roster.primary[0], True, "voice"), T0)

    assert first.outcome == "accepted" and second.outcome == "taken"
    assert second.state.accepted_by == first.state.accepted_by
    assert StopAlerting() in first.effects and Tell("taken", but="advocate:2") in first.effects
    assert second.effects == ()


def test_a_decline_frees_the_step_at_once_only_when_nobody_else_in_it_can_answer() -> None:
    luis = Person(role="primary", phone="+12025550102", advocate_id=2)
    mei = Person(role="backup", phone="+12025550103", advocate_id=3)
    roster = Roster(primary=(luis,), backup=(mei,), hotline=HOTLINE)
    policy = Policy(steps=(Step(notify=("primary",), via=("sms", "voice"), wait_seconds=120),) * 2)
    started = decide(State(status=CalloutStatus.pending, due_at=T0), Routed(roster, policy), T0).state

    declined = decide(started, Answered(luis, False, "sms"), T0 + timedelta(seconds=5))
    moved_on = decide(declined.state, Due(), T0 + timedelta(seconds=5))

    assert declined.state.due_at == T0 + timedelta(seconds=5)  # not the two minutes' wait
    assert WakeWorker() in declined.effects
    # The second step names the primary again: luis declined, and there is no other primary.
    assert [e.person.recipient for e in moved_on.effects if isinstance(e, SendAlert)] == ["hotline", "hotline"]


def test_with_the_directory_unreachable_and_nothing_known_only_the_hotline_is_alerted() -> None:
    decision = decide(State(status=CalloutStatus.pending, due_at=T0), Unroutable(HOTLINE), T0)

    assert decision.state.status == CalloutStatus.exhausted
    assert [(e.person.role, e.channel) for e in decision.effects if isinstance(e, SendAlert)] == [
        ("hotline", "sms"),
        ("hotline", "voice"),
    ]
    assert all(e.retry_until is None for e in decision.effects if isinstance(e, SendAlert))  # tried until it goes
