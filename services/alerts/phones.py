"""Proving an advocate's phone, and the PIN that guards a callout's details.

A new or changed phone (the directory asks: `advocate_phones.check_due_at`) gets a text with a six-digit code;
texting the code back proves it, and the answer holds a link to choose a PIN. The PIN — kept as an argon2 hash —
is the second factor of the callout page: after accepting, the details show only in the browser that gave it.
Five wrong PINs lock that link and tell the supervisors. An advocate who has not set one yet is still alerted, and
shown unverified; their page shows the details after acceptance, saying a PIN would guard them. A supervisor can
also have a test text and a test call sent to the phone at any time; what each came to is written to the test.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from datetime import datetime, timedelta

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts import messages
from services.alerts.models import Notification
from services.alerts.settings import AlertsSettings
from shared.auth import hash_token
from shared.tables import AdvocatePhone, ContactTest, Wake, wake_alerts

log = structlog.get_logger()
CODE = re.compile(r"^\s*(\d{6})\s*$")
PIN = re.compile(r"^\d{4,8}$")
CODE_LIFE = timedelta(hours=24)
PIN_TOKEN_LIFE = timedelta(hours=24)
VIEWER_LIFE = timedelta(minutes=30)  # how long a browser that gave the PIN sees the details before asking again
MAX_PIN_FAILURES = 5
HASHER = PasswordHasher()


def keyed(value: str, settings: AlertsSettings) -> str:
    return hmac.new(settings.premise_secret.encode(), value.encode(), hashlib.sha256).hexdigest()


async def send_codes(session: AsyncSession, *, now: datetime, settings: AlertsSettings, limit: int) -> int:
    """Text a code to each phone the directory asked to prove. Returns how many."""
    due = list(
        await session.scalars(
            select(AdvocatePhone)
            .where(AdvocatePhone.check_due_at <= now)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    for phone in due:
        code = f"{secrets.randbelow(10**6):06d}"
        phone.code_hmac, phone.code_expires_at, phone.check_due_at = keyed(code, settings), now + CODE_LIFE, None
        session.add(
            Notification(
                kind="verify",
                recipient=f"advocate:{phone.advocate_id}",
                role="advocate",
                advocate_id=phone.advocate_id,
                channel="sms",
                to=phone.phone,
                body=messages.verify_sms(code),
                due_at=now,
                retry_until=now + CODE_LIFE,
                created_at=now,
                updated_at=now,
            )
        )
        log.info("phone.code_sent", advocate_id=phone.advocate_id)
    if due:
        await wake_alerts(session, Wake.sends)
    return len(due)


TEST_RETRY = timedelta(minutes=10)  # a test the provider cannot take within this is recorded as failed


async def send_tests(session: AsyncSession, *, now: datetime, settings: AlertsSettings, limit: int) -> int:
    """Queue the test text and test call of each test a supervisor asked for. Returns how many tests."""
    due = list(
        await session.scalars(
            select(ContactTest)
            .where(ContactTest.due_at <= now)
            .order_by(ContactTest.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    for test in due:
        text, call = (test_notification(test, channel, now) for channel in ("sms", "voice"))
        text.body = messages.test_sms()
        call.body = messages.test_call(settings.public_link(f"/v1/twilio/voice/gather?n={call.id}"))
        session.add_all([text, call])
        test.due_at, test.text_id, test.call_id = None, text.id, call.id
        log.info("phone.test_queued", advocate_id=test.advocate_id, test_id=test.id)
    if due:
        await wake_alerts(session, Wake.sends)
    return len(due)


def test_notification(test: ContactTest, channel: str, now: datetime) -> Notification:
    return Notification(
        id=uuid.uuid4(),
        kind="test",
        recipient=f"advocate:{test.advocate_id}",
        role="advocate",
        advocate_id=test.advocate_id,
        channel=channel,
        to=test.phone,
        due_at=now,
        retry_until=now + TEST_RETRY,
        created_at=now,
        updated_at=now,
    )


async def tested(session: AsyncSession, notification: Notification, result: str, now: datetime) -> None:
    """What became of a test text or call, as the provider (or the advocate's key) said."""
    by_text = notification.channel == "sms"
    column = ContactTest.text_id if by_text else ContactTest.call_id
    test = await session.scalar(select(ContactTest).where(column == notification.id).with_for_update())
    if test is None:
        return
    if by_text:
        test.text_result, test.text_at = result[:100], now
    else:
        test.call_result, test.call_at = result[:100], now
    log.info("phone.tested", advocate_id=test.advocate_id, channel=notification.channel, result=result)


async def prove(session: AsyncSession, phone: str, text: str, *, now: datetime, settings: AlertsSettings) -> str | None:
    """If `text` is a six-digit code: the answer to it (None: not a code, so it is an answer to a callout)."""
    found = CODE.match(text)
    if found is None:
        return None
    candidates = await session.scalars(
        select(AdvocatePhone).where(AdvocatePhone.phone == phone, AdvocatePhone.code_expires_at > now).with_for_update()
    )
    for candidate in candidates:
        if candidate.code_hmac and hmac.compare_digest(candidate.code_hmac, keyed(found.group(1), settings)):
            candidate.verified_at, candidate.code_hmac, candidate.code_expires_at = now, None, None
            token = secrets.token_urlsafe(16)
            candidate.pin_token_hash, candidate.pin_token_expires_at = hash_token(token), now + PIN_TOKEN_LIFE
            log.info("phone.proven", advocate_id=candidate.advocate_id)
            return messages.proven_sms(settings.public_link(f"/p/{token}"))
    return "That code is not right, or it has expired."


async def pin_setter(session: AsyncSession, token: str, now: datetime) -> AdvocatePhone | None:
    phone = await session.scalar(
        select(AdvocatePhone).where(AdvocatePhone.pin_token_hash == hash_token(token)).with_for_update()
    )
    if phone is None or phone.pin_token_expires_at is None or phone.pin_token_expires_at <= now:
        return None
    return phone


def set_pin(phone: AdvocatePhone, pin: str) -> None:
    phone.pin_hash, phone.pin_token_hash, phone.pin_token_expires_at = HASHER.hash(pin), None, None


def pin_matches(phone: AdvocatePhone, pin: str) -> bool:
    if phone.pin_hash is None or not PIN.match(pin):
        return False
    try:
        return HASHER.verify(phone.pin_hash, pin)
    except (VerificationError, InvalidHashError):
        return False


async def phone_of(session: AsyncSession, advocate_id: int | None) -> AdvocatePhone | None:
    return None if advocate_id is None else await session.get(AdvocatePhone, advocate_id)


def open_viewer(notification: Notification, now: datetime) -> str:
    """A browser that gave the right PIN: its cookie, of which the link keeps only the hash."""
    cookie = secrets.token_urlsafe(24)
    notification.viewer_hash = hash_token(cookie)
    notification.viewer_expires_at = min(now + VIEWER_LIFE, notification.link_expires_at or now + VIEWER_LIFE)
    notification.pin_failures = 0
    return cookie


def is_viewer(notification: Notification, cookie: str | None, now: datetime) -> bool:
    return bool(
        cookie
        and notification.viewer_hash
        and notification.viewer_expires_at
        and notification.viewer_expires_at > now
        and hmac.compare_digest(notification.viewer_hash, hash_token(cookie))
    )
