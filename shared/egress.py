"""Where Callout may post on an agency's word: its `notify_url` must be HTTPS (plain HTTP only to this machine, in
development) and reach a public address, never a private, loopback or link-local one (a cloud's metadata service,
the cluster's own services, this machine). The directory checks a URL when an admin sets it; the worker checks it
again at every send, and connects to the very addresses it checked (so a name that resolves to a public address for
the check and a private one an instant later is no way in), with the name kept for the Host header, TLS's SNI and
the certificate's check. Redirects are never followed: each would be a destination nobody checked."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from shared.settings import Environment, Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# Every address a host name resolves to (an IP literal resolves to itself without asking).
Resolver = Callable[[str], Awaitable[Sequence[Address]]]

# Where IPv6 carries an IPv4 address that a gateway reaches for it (NAT64, RFC 6052).
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class Refused(Exception):
    """The destination is not one Callout posts to; the message says why, for an admin."""


async def system_resolver(host: str) -> Sequence[Address]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64), which is where a packet ends up."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


def kind_refused(address: Address, *, loopback_allowed: bool) -> str | None:
    """What kind of address this is, if it is one Callout must not post to; None for a public one."""
    if isinstance(address, ipaddress.IPv6Address) and (inner := embedded_ipv4(address)) is not None:
        return kind_refused(inner, loopback_allowed=loopback_allowed)
    if address.is_loopback:
        return None if loopback_allowed else "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_unspecified:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if address.is_private or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local):
        return "private"
    if address.is_reserved or not address.is_global:
        return "reserved"  # shared (carrier-grade NAT) space and the like: nobody's public address
    return None


@dataclass(frozen=True)
class Egress:
    """The rule for one process: `development` lets it post to this machine (a CAD simulator beside it)."""

    resolver: Resolver
    development: bool

    async def check(self, url: str) -> Sequence[Address]:
        """The addresses to post `url` to, in the resolver's order, or Refused saying why."""
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            raise Refused(f"{url} is not a URL") from None
        host = parsed.host
        if parsed.scheme not in ("https", "http") or not host:
            raise Refused(f"{url} is not an https:// URL")
        try:
            addresses: Sequence[Address] = [ipaddress.ip_address(host)]
            literal = True
        except ValueError:
            literal = False
            try:
                addresses = await self.resolver(host)
            except OSError:
                raise Refused(f"{host} does not resolve") from None
        if not addresses:
            raise Refused(f"{host} does not resolve")
        for address in addresses:  # every one: which of them a connection would use is not ours to choose
            if kind := kind_refused(address, loopback_allowed=self.development):
                named = f"{host} is" if literal else f"{host} resolves to {address},"
                article = "an" if kind[0] in "aeiou" else "a"
                raise Refused(f"{named} {article} {kind} address: Callout posts only to public addresses")
        if parsed.scheme == "http" and not (self.development and all(a.is_loopback for a in addresses)):
            raise Refused(f"{url} is not https://; plain http:// is only for this machine, in development")
        return addresses

    def client(self, *, timeout: float, verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
        """An HTTP client that posts only where `check` allows, to the address it checked, following no
        redirect and no proxy from the environment. `verify`: the certificates trusted (tests bring their own)."""
        # No connection is kept for the next request: connections are pooled by address, so a second name at the
        # same address would reuse a connection whose certificate was checked for the first.
        inner = httpx.AsyncHTTPTransport(verify=verify, limits=httpx.Limits(max_keepalive_connections=0))
        return httpx.AsyncClient(
            transport=CheckedTransport(self, inner), timeout=timeout, follow_redirects=False, trust_env=False
        )


def egress_for(settings: Settings, resolver: Resolver | None = None) -> Egress:
    return Egress(resolver or system_resolver, development=settings.environment is Environment.development)


class CheckedTransport(httpx.AsyncBaseTransport):
    """Checks each request's destination, then sends it to the checked address itself."""

    def __init__(self, egress: Egress, inner: httpx.AsyncBaseTransport) -> None:
        self.egress, self.inner = egress, inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        addresses = await self.egress.check(str(request.url))
        named = request.url
        # The Host header was set from the name when the request was built; SNI and the certificate's check
        # follow `sni_hostname` (httpcore), so only the TCP connection goes to the number.
        extensions: dict[str, Any] = dict(request.extensions)
        if named.scheme == "https":
            extensions["sni_hostname"] = named.host
        request.extensions = extensions
        for address in addresses[:-1]:  # as a client given the name would: the next address if one is unreachable
            request.url = named.copy_with(host=str(address))
            try:
                return await self.inner.handle_async_request(request)
            except httpx.ConnectError:
                continue
        request.url = named.copy_with(host=str(addresses[-1]))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
