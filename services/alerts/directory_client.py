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
        self, agency: str, *, area: str | None, at: datetime, language: str | None
    ) -> list[dict[str, Any]]:
        params = {"at": at.isoformat()}
        if area:
            params["area"] = area
        if language:
            params["language"] = language
        try:
            response = await self.http.get(f"/v1/directory/agencies/{agency}/on-call", params=params)
            response.raise_for_status()
            chain: list[dict[str, Any]] = response.json()["chain"]
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise DirectoryUnavailable(type(exc).__name__) from exc
        return chain
