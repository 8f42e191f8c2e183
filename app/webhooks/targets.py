"""Where a webhook may be sent: the URL's shape, checked without network access when a
subscription is saved, and the addresses its host resolves to, checked again right
before each delivery (a name can point somewhere else by then: DNS rebinding).

Private, loopback, link-local, reserved, multicast and unspecified addresses are
refused unless `WEBHOOK_ALLOW_PRIVATE_TARGETS` is on (tests, on-premises receivers).
The delivery connects to the very address that was checked (`pinned`): the URL's host
is replaced by it, while the `Host` header and TLS (SNI and certificate check) keep the
name, so no second resolution can slip another address in.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import certifi
import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
RESOLVE_TIMEOUT_SECONDS = 5.0
# Shapes the C library reads as IPv4 besides dotted quads: 2130706433, 127.1, 0x7f.1.
_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.IGNORECASE)


@functools.cache
def tls_context(extra_ca_file: Path | None = None) -> ssl.SSLContext:
    """The certificate checks of every outgoing request: certifi's CA bundle (httpx's
    default), and `extra_ca_file`'s authorities too (`OUTBOUND_CA_FILE`). Built once per
    process: loading the bundle costs milliseconds of CPU, too much to pay per client."""
    context = ssl.create_default_context(cafile=certifi.where())
    if extra_ca_file is not None:
        context.load_verify_locations(cafile=extra_ca_file)
    return context


class TargetRefused(Exception):
    """The URL or the address it resolves to may not be called."""


def is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def literal_address(host: str) -> Address | None:
    """The address a host names literally, in any form a resolver would accept."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def url_problem(url: str, *, https_only: bool, allow_private: bool) -> str | None:
    """Why `url` cannot be a webhook target, or None."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        return "must be an absolute http(s) URL"
    if parsed.scheme not in ("http", "https") or not parsed.is_absolute_url or not parsed.host:
        return "must be an absolute http(s) URL"
    if https_only and parsed.scheme != "https":
        return "must be an https URL"
    if parsed.userinfo:
        return "must not carry a user name or password"
    if allow_private:
        return None
    host = parsed.host.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return "must not name this machine (localhost)"
    address = literal_address(host)
    if address is not None and not is_public(address):
        return f"must not be a private, loopback, link-local or reserved address ({address})"
    return None


@dataclass(frozen=True, slots=True)
class Pinned:
    """A request target with the address it connects to fixed."""

    url: httpx.URL
    host_header: str
    extensions: dict[str, str]


async def resolve(host: str, port: int) -> list[Address]:
    # An address is its own resolution: no trip to the resolver's thread for it.
    literal = literal_address(host) if "%" not in host else None
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
        found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # The scope of a link-local IPv6 address (`fe80::1%eth0`) is not part of it.
    return list(
        dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found)
    )


async def pinned(url: str, *, allow_private: bool) -> Pinned:
    """The request target for `url`, connecting to an address its host resolves to now;
    `TargetRefused` when one of them may not be called."""
    parsed = httpx.URL(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        addresses = await resolve(parsed.host, port)
    except (OSError, TimeoutError) as exc:
        raise TargetRefused(f"cannot resolve {parsed.host}: {exc or 'timed out'}") from None
    if not addresses:
        raise TargetRefused(f"{parsed.host} resolves to no address")
    refused = [address for address in addresses if not is_public(address)]
    if refused and not allow_private:
        raise TargetRefused(
            f"{parsed.host} resolves to {refused[0]}, a private, loopback, link-local or "
            "reserved address"
        )
    extensions = {"sni_hostname": parsed.host} if parsed.scheme == "https" else {}
    return Pinned(
        url=parsed.copy_with(host=str(addresses[0])),
        host_header=parsed.netloc.decode("ascii"),
        extensions=extensions,
    )
