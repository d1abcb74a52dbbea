"""Reading an advocate's text: accept, decline or a progress word, and perhaps the callout's code."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.tables import CODE_ALPHABET, Stage

WORDS: dict[str, str] = {
    **dict.fromkeys(("1", "Y", "YES", "ACCEPT", "OK"), "accept"),
    **dict.fromkeys(("2", "N", "NO", "DECLINE"), "decline"),
    **dict.fromkeys(("ENROUTE", "EN ROUTE", "EN-ROUTE", "OMW"), Stage.en_route),
    **dict.fromkeys(("ONSCENE", "ON SCENE", "ARRIVED"), Stage.on_scene),
    **dict.fromkeys(("CONTACTED", "SPOKE"), Stage.survivor_contacted),
    **dict.fromkeys(("REFUSED", "SURVIVOR DECLINED", "NO CONTACT"), Stage.survivor_declined),
    **dict.fromkeys(("CLOSED", "CLOSE", "DONE"), Stage.closed),
}
CODE = re.compile(f"^[{CODE_ALPHABET}]{{4}}$")


@dataclass(frozen=True)
class Reply:
    action: str  # "accept", "decline", or a progress stage
    code: str | None


def parse(body: str) -> Reply | None:
    words = re.sub(r"[^\w\s-]", " ", body.upper()).split()
    code = words.pop() if len(words) > 1 and CODE.match(words[-1]) else None
    action = WORDS.get(" ".join(words))
    return Reply(action, code) if action else None
