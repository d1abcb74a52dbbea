"""Phone numbers, always stored and compared in E.164."""

from __future__ import annotations

from typing import Annotated

import phonenumbers
from pydantic import AfterValidator


def to_e164(value: str) -> str:
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValueError("must be a phone number in E.164 form, such as +15551234567") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def masked(phone: str) -> str:
    """Enough to tell two phones apart on a console, not enough to call one."""
    return f"{phone[:2]}•••{phone[-2:]}"


E164 = Annotated[str, AfterValidator(to_e164)]
