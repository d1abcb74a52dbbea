"""What Callout says. Texts and calls are not secure: a code, the tier, the area, how to answer, a link —
never a name, an address, a phone number or a screen answer."""

from __future__ import annotations

from dataclasses import dataclass

from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from shared.tables import Stage, Tier

TIER_WORDS = {Tier.immediate: "IMMEDIATE", Tier.priority: "PRIORITY", Tier.follow_up: "FOLLOW-UP"}
PROGRESS_WORDS = {
    Stage.en_route: "en route",
    Stage.on_scene: "on scene",
    Stage.survivor_contacted: "survivor contacted",
    Stage.survivor_declined: "survivor declined",
    Stage.closed: "closed",
}
PROGRESS_HELP = "As you go, reply ENROUTE, ONSCENE, CONTACTED, REFUSED (survivor declined) or CLOSED."
HELP = (
    "Callout: reply 1 to accept or 2 to decline, adding the code if you have several (1 K7Q2). "
    + PROGRESS_HELP
    + " Text COVER to ask for cover of a shift, or to take one."
)


def where(area: str | None) -> str:
    return f"area {area}" if area else "area not given"


def alert_sms(*, code: str, tier: Tier, area: str | None, link: str) -> str:
    return f"Callout {code}: {TIER_WORDS[tier]} DV call, {where(area)}. Reply 1 to accept, 2 to decline. {link}"


def alert_call(*, code: str, tier: Tier, area: str | None, gather_url: str) -> str:
    """TwiML for a voice alert: one key, 1 to accept and 2 to decline; silence accepts nothing."""
    spelled = ", ".join(code)
    script = (
        f"This is Callout. {TIER_WORDS[tier].lower().replace('-', ' ')} domestic violence call, {where(area)}. "
        f"Callout code {spelled}. Press 1 to accept. Press 2 to decline."
    )
    response = VoiceResponse()
    gather = response.gather(num_digits=1, action=gather_url, method="POST", timeout=10)
    gather.say(script)
    gather.say(script)
    response.say("No key was pressed. Goodbye.")
    return str(response)


def link_sms(*, code: str, link: str) -> str:
    return f"Callout {code}: you accepted. The details are behind this link: {link}"


def verify_sms(code: str) -> str:
    return (
        f"Callout: to confirm this phone for your on-call alerts, reply {code}. If you did not expect this, ignore it."
    )


def test_sms() -> str:
    return "Callout test: this phone gets your on-call texts. No reply needed."


def test_call(gather_url: str) -> str:
    """TwiML for a test call: a key pressed proves a person heard it (voicemail presses none)."""
    response = VoiceResponse()
    gather = response.gather(num_digits=1, action=gather_url, method="POST", timeout=10)
    script = "This is a Callout test call, to check that your on-call alerts reach you. Press any key."
    gather.say(script)
    gather.say(script)
    response.say("No key was pressed. Goodbye.")
    return str(response)


TESTED_CALL = "Thank you. Callout's calls reach you. Goodbye."


def at_risk_sms(*, key: str, role: str, area: str, when: str, verified: bool, unreachable: tuple[str, ...]) -> str:
    """To supervisors: someone on call soon whose phone may fail them (their key only: texts are not secure)."""
    problems = [] if verified else ["has not confirmed their phone (they reply to the code Callout texted them)"]
    problems += [f"Callout's {CHANNEL_WORDS.get(c, c)} cannot reach their phone" for c in unreachable]
    return f"Callout: advocate {key} is on call ({role}, area {area}) from {when} and {'; '.join(problems)}."


def feed_silent_sms(*, since: str, reason: str) -> str:
    return (
        f"Callout: your CAD feed has been silent since {since}: {reason}. DV calls may not be reaching Callout; "
        "check the CAD adapter and its filters."
    )


def feed_back_sms(*, since: str) -> str:
    return f"Callout: your CAD feed, silent since {since}, is sending again."


def gap_sms(*, area: str, role: str, starts: str, ends: str) -> str:
    return (
        f"Callout: nobody is on call as {role} in area {area} from {starts} to {ends}. "
        "Add cover (an override, on the program's Overrides page): until then its calls skip that role."
    )


def unreachable_sms(*, key: str, channel: str, code: int | None, reason: str) -> str:
    if code == OPTED_OUT:
        return (
            f"Callout: advocate {key} texted STOP, so Callout's texts no longer reach them; calls still do where "
            "the escalation calls. Ask them to text START to Callout's number."
        )
    return f"Callout: Callout's {CHANNEL_WORDS.get(channel, channel)} cannot reach advocate {key}'s phone: {reason}."


@dataclass(frozen=True)
class CoverShift:
    """A shift cover is asked for, as texts say it: its role, area and time (the agency's)."""

    role: str
    area: str
    when: str


def cover_offer_sms(shift: CoverShift, link: str) -> str:
    return (
        f"Callout: cover is asked for as {shift.role}, area {shift.area}, {shift.when}. The first to take it has it: "
        + link
    )


def covered_sms(shift: CoverShift, key: str) -> str:
    return f"Callout: {key} covers your {shift.role} shift, area {shift.area}, {shift.when}. You are not on call then."


def cover_yours_sms(shift: CoverShift) -> str:
    return f"Callout: thank you. You are on call as {shift.role}, area {shift.area}, {shift.when}."


def cover_taken_sms(shift: CoverShift) -> str:
    return (
        f"Callout: the {shift.role} shift, area {shift.area}, {shift.when}, you were asked to cover is taken. "
        "Thank you."
    )


def cover_withdrawn_sms(shift: CoverShift) -> str:
    return (
        f"Callout: the {shift.role} shift, area {shift.area}, {shift.when}, you were asked to cover no longer "
        "needs it. Thank you."
    )


def cover_link_sms(links: list[str]) -> str:
    return "Callout: your cover page, to ask for cover of a shift or take one: " + " ".join(links)


NOT_AN_ADVOCATE = "Callout: this phone is not an advocate's in Callout's directory, so it has no cover page."


def unfilled_cover_sms(shift: CoverShift, key: str) -> str:
    return (
        f"Callout: advocate {key} asked for cover as {shift.role}, area {shift.area}, {shift.when}, and nobody has "
        "taken it. They stay on call then unless you arrange cover (an override, on the program's Overrides page)."
    )


CHANNEL_WORDS = {"sms": "texts", "voice": "calls"}
OPTED_OUT = 21610  # the provider's code for a phone that texted STOP


def proven_sms(link: str) -> str:
    return f"Callout: this phone is confirmed. Choose the PIN that will guard callout details: {link}"


def pin_locked_sms(code: str) -> str:
    return f"Callout {code}: the details link was locked after five wrong PINs. Check with the advocate who accepted."


def taken_sms(code: str) -> str:
    return f"Callout {code} has been accepted by someone else. No action needed. Thank you."


def cancelled_sms(code: str) -> str:
    return f"Callout {code} was cancelled by dispatch. No action needed."


def twiml_message(text: str) -> str:
    response = MessagingResponse()
    response.message(text)
    return str(response)


def twiml_silence() -> str:
    return str(MessagingResponse())


def twiml_say(text: str) -> str:
    response = VoiceResponse()
    response.say(text)
    return str(response)


def bridge_call(*, code: str, party: str, number: str, caller_id: str, action_url: str) -> str:
    """TwiML for a masked call: the advocate answers, hears whom they are being connected to, and is bridged to
    `number` with the program's number shown — neither side sees the other's. Nothing is recorded."""
    response = VoiceResponse()
    response.say(f"This is Callout, callout {', '.join(code)}. Connecting you to {party}. Please hold.")
    dial = response.dial(caller_id=caller_id, action=action_url, method="POST", timeout=30, record="do-not-record")
    dial.number(number)
    return str(response)
