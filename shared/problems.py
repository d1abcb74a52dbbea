"""Domain errors carrying their HTTP status; shared/app.py renders them as RFC 9457 problem details."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class Problem(Exception):
    status = 400
    title = "Bad request"
    type = "about:blank"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.extensions = extensions


class Unauthorized(Problem):
    status, title = 401, "Unauthorized"


class Forbidden(Problem):
    status, title = 403, "Forbidden"


class NotFound(Problem):
    status, title = 404, "Not found"


class Conflict(Problem):
    status, title = 409, "Conflict"


class PayloadTooLarge(Problem):
    status, title = 413, "Payload too large"


class UnsupportedMediaType(Problem):
    status, title = 415, "Unsupported media type"


class Invalid(Problem):
    """The payload is well-formed but breaks the contract (a field, a value)."""

    status, title = 422, "Invalid request"


def invalid_payload(errors: Iterable[Any]) -> Invalid:
    """A 422 naming each offending field by its path, never echoing the rejected value (it may be personal)."""
    fields = [
        {"field": ".".join(str(part) for part in error["loc"] if part != "body"), "message": error["msg"]}
        for error in errors
    ]
    names = ", ".join(sorted({f["field"] or "body" for f in fields}))
    return Invalid(f"Invalid field(s): {names}", errors=fields)
