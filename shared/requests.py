"""Reading request bodies that a route takes raw (signed webhooks, calendars), never more than it allows."""

from __future__ import annotations

from fastapi import Request

from shared.problems import PayloadTooLarge


async def read_bounded_body(request: Request, limit: int) -> bytes:
    """Read at most `limit` bytes, refusing early on a declared or streamed excess."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body may be at most {limit} bytes.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body may be at most {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)
