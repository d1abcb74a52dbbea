"""DNS for the tests: the names a test gives, each to the addresses it gives, and no other; no test asks the real
DNS. It counts the questions, and its answers can change between them (a name rebound to another address)."""

from __future__ import annotations

import ipaddress
import socket
from collections import Counter
from collections.abc import Sequence

from shared.egress import Address


class FakeDns:
    def __init__(self) -> None:
        self.names: dict[str, list[Address]] = {}
        self.asked: Counter[str] = Counter()

    def set(self, name: str, *addresses: str) -> None:
        self.names[name] = [ipaddress.ip_address(a) for a in addresses]

    async def resolve(self, host: str) -> Sequence[Address]:
        self.asked[host] += 1
        if host not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.names[host]
