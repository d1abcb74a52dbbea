"""A fake CAD receiver for notify-back: a real HTTP server that checks the Standard Webhooks signature and can
refuse on demand, the way a dispatch centre's integration engine would."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class FakeCad:
    secret: str
    received: list[dict[str, Any]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    refuse_next: int = 0  # answer this many requests with 503
    redirect_to: str | None = None  # answer every request with a redirect here
    hosts: list[str] = field(default_factory=list)  # each request's Host header
    url: str = ""
    _runner: web.AppRunner | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/callout-events", self._receive)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/callout-events"

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.hosts.append(request.host)
        if self.redirect_to:
            raise web.HTTPTemporaryRedirect(self.redirect_to)
        try:
            Webhook(self.secret).verify(body, dict(request.headers), json_parse=False)
        except WebhookVerificationError:
            return web.Response(status=401)
        if self.refuse_next:
            self.refuse_next -= 1
            return web.Response(status=503)
        async with self._changed:
            self.received.append(json.loads(body))
            self.ids.append(request.headers["webhook-id"])
            self._changed.notify_all()
        return web.Response(status=204)

    @property
    def types(self) -> list[str]:
        return [event["type"] for event in self.received]
