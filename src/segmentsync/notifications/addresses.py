"""Where webhooks may go: http(s) only, and never to this machine or its private networks.

A webhook URL an admin types is fetched by the server, so without a guard it could reach the
server's own loopback services, the private network behind it or a cloud's metadata service
(169.254.169.254). Refused: any address that is not globally routable (loopback, private,
link-local, carrier-grade NAT, multicast, reserved, unspecified; IPv4-mapped IPv6 looked
through). ``SEGMENTSYNC_WEBHOOKS_ALLOW_PRIVATE=true`` lifts this for tests, the demo and
receivers on the same premises. The URL is checked when saved and its name is resolved again
before every attempt; redirects are not followed (a 3xx is a failed attempt).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from segmentsync.errors import N_, Invalid

SCHEMES = ("http", "https")
MAX_URL = 2000


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


def check_url(url: str, *, allow_private: bool) -> str:
    """The URL, trimmed, if a webhook may be sent there; Invalid (naming the problem) otherwise."""
    url = url.strip()
    if not url or len(url) > MAX_URL:
        raise Invalid("the URL must be 1 to %(max)s characters", params={"max": MAX_URL}, field="url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Invalid(
            "%(url)s is not a URL: %(exc)s", params={"url": repr(url), "exc": exc}, field="url"
        ) from None
    if parts.scheme.lower() not in SCHEMES:
        raise Invalid("only http:// and https:// URLs can receive webhooks", field="url")
    if not parts.hostname:
        raise Invalid("%(url)s has no host name", params={"url": repr(url)}, field="url")
    if parts.username or parts.password:
        raise Invalid(
            "a webhook URL cannot carry a user name or password (they would be stored in the clear); "
            "receivers verify the signature instead",
            field="url",
        )
    if port == 0:
        raise Invalid("port 0 cannot receive webhooks", field="url")
    if not allow_private:
        host = parts.hostname
        literal = _literal(host)
        if literal is not None and _refused(literal):
            raise Invalid(private_message(host), field="url")
        if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(".localhost"):
            raise Invalid(private_message(host), field="url")
    return url


def private_message(host: str) -> str:
    return N_(
        "%(host)s is a loopback, private, link-local or otherwise non-public address; webhooks go to "
        "public addresses only (set SEGMENTSYNC_WEBHOOKS_ALLOW_PRIVATE=true for receivers on your own network)"
    ) % {"host": host}


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def refused_address(url: str, *, allow_private: bool) -> str | None:
    """Before an attempt: the reason not to connect (a name resolving to a refused address), or None."""
    if allow_private:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = _literal(host)
    if literal is not None:
        return private_message(host) if _refused(literal) else None
    try:
        infos = socket.getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except OSError as exc:
        return f"cannot resolve {host}: {exc.strerror or exc}"
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if _refused(address):
            return f"{host} resolves to {address}: " + private_message(host)
    return None
