"""The alerts side of the directory's HTTP API: who is on call."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx


class DirectoryUnavailable(Exception):
    pass


class DirectoryClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def on_call(
        self, agency: str, *, area: str | None, at: datetime, language: str | None, tier: str
    ) -> dict[str, Any]:
        """Who is on call, in order, and how `tier` escalates there."""
        params = {"at": at.isoformat(), "tier": tier}
        if area:
            params["area"] = area
        if language:
            params["language"] = language
        try:
            response = await self.http.get(f"/v1/directory/agencies/{agency}/on-call", params=params)
            response.raise_for_status()
            answer: dict[str, Any] = response.json()
            if not isinstance(answer.get("chain"), list) or not isinstance(answer.get("policy"), dict):
                raise ValueError("an answer without a chain or a policy")
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise DirectoryUnavailable(type(exc).__name__) from exc
        return answer
