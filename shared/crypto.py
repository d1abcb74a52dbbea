"""Personal data sealed at rest: addresses, safe contacts, notes, screen answers and the words of overrides are
stored as Fernet tokens (AES-128-CBC with HMAC-SHA256), under keys derived from CALLOUT_DATA_KEY. The key rotates:
the new one goes in CALLOUT_DATA_KEY, the old ones in CALLOUT_DATA_KEYS_PREVIOUS until `callout data rekey` has
sealed everything again under the new one."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


def fernet_key(secret: str) -> bytes:
    """A Fernet key of its own for sealing, derived from the secret (which also keys premise hashes)."""
    return base64.urlsafe_b64encode(hmac.new(secret.encode(), b"callout sealing v1", hashlib.sha256).digest())


class Sealer:
    def __init__(self, keys: Sequence[str]) -> None:
        self._fernet = MultiFernet([Fernet(fernet_key(k)) for k in keys])

    def seal(self, value: Any) -> str:
        return self._fernet.encrypt(json.dumps(value, separators=(",", ":")).encode()).decode()

    def open(self, token: str) -> Any:
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise SealError("sealed under a key this process does not hold") from None

    def reseal(self, token: str) -> str:
        """The same value, sealed under the current key."""
        return self._fernet.rotate(token.encode()).decode()


class SealError(Exception):
    pass


_sealer: Sealer | None = None


def configure(keys: Sequence[str]) -> Sealer:
    """Set the keys this process seals and opens with (the first seals); done by each app and command at start."""
    global _sealer
    _sealer = Sealer(keys)
    return _sealer


def sealer() -> Sealer:
    if _sealer is None:
        raise SealError("no data key configured")
    return _sealer


class Sealed(TypeDecorator[Any]):
    """A column holding any JSON-able value, stored sealed; the ORM seals and opens it."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else sealer().seal(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else sealer().open(value)
