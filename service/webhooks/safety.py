"""Posting to a webhook URL without letting it reach what it must not (docs/security.md 17).

The URL is https (http only to a loopback host, in development: OTP_WEBHOOK_ALLOW_PRIVATE
or the sandbox); its host is resolved at each delivery and every address it resolves to
must be public unless OTP_WEBHOOK_ALLOW_PRIVATE=true: a name that once resolved to a public
address and now to 10.0.0.5 or 169.254.169.254 (DNS rebinding, cloud metadata) is refused.
The connection goes to the address checked, never through a second lookup: TLS still
verifies the certificate against the URL's host name (SNI). No redirect is followed (a 3xx
is an answer that is not 2xx), and at most READ_LIMIT bytes of the answer are read.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

READ_LIMIT = 4096
LOOPBACK_NAMES = ("localhost", "localhost.")


class Refused(Exception):
    """The URL or an address it resolves to is not one we deliver to (the reason is safe to
    log: it names no URL path or query, which may hold a token)."""


@dataclass(frozen=True)
class Answer:
    status: int
    head: bytes  # the first READ_LIMIT bytes of the body at most


def _is_loopback_host(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def target(url: str, *, allow_private: bool) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL we may post to, else Refused."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "http" and not (allow_private and _is_loopback_host(host)):
        raise Refused("http is only for loopback hosts in development; use https")
    if parts.scheme not in ("https", "http") or not host:
        raise Refused("the webhook URL must be an https URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise Refused("the webhook URL has an invalid port") from None
    return parts.scheme, host, port


# IPv6 ranges that carry an IPv4 address and reach it through a translator or tunnel
# (NAT64, local NAT64, IPv4-compatible, 6to4, Teredo): Python counts most of them global,
# whatever IPv4 address they wrap (10.0.0.5, 169.254.169.254…); no webhook needs them
_WRAPPING_IPV4 = [ipaddress.ip_network(net) for net in (
    "64:ff9b::/96", "64:ff9b:1::/48", "::/96", "2002::/16", "2001::/32")]


def _refused_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.version == 6 and any(ip in net for net in _WRAPPING_IPV4):
        return True
    # private, loopback, link-local (cloud metadata 169.254.169.254), shared, reserved…
    return not ip.is_global or ip.is_multicast


def resolve(host: str, port: int, *, allow_private: bool) -> list[str]:
    """Every address ``host`` resolves to, each allowed, else Refused (one refused address
    refuses the name: an attacker's DNS would answer with both)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise Refused("the webhook host does not resolve") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not allow_private and any(_refused_address(a) for a in addresses):
        raise Refused("the webhook host resolves to a private, loopback, link-local or "
                      "metadata address (OTP_WEBHOOK_ALLOW_PRIVATE=true allows it)")
    return addresses


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to ``address``, whatever ``host`` resolves to now."""

    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float,
         allow_private: bool) -> Answer:
    """POST ``body`` to ``url`` at a checked address; raises Refused or OSError (refused
    connection, timeout, TLS failure)."""
    scheme, host, port = target(url, allow_private=allow_private)
    addresses = resolve(host, port, allow_private=allow_private)
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection_class = _PinnedHTTPS if scheme == "https" else _PinnedHTTP
    error: OSError | None = None
    for address in addresses:
        connection = connection_class(host, port, address, timeout)
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            return Answer(response.status, response.read(READ_LIMIT))
        except (OSError, http.client.HTTPException) as e:
            error = e if isinstance(e, OSError) else OSError(type(e).__name__)
            if isinstance(e, TimeoutError):
                break  # one timeout per delivery, not one per address
        finally:
            connection.close()
    raise error or OSError("no address to connect to")
