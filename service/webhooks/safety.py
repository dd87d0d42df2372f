"""Posting to a webhook URL without letting it reach what it must not (docs/security.md 17).

The URL is https (http only to a loopback host, in development: OTP_WEBHOOK_ALLOW_PRIVATE
or the sandbox); its host is resolved at each delivery and every address it resolves to
must be public unless OTP_WEBHOOK_ALLOW_PRIVATE=true: a name that once resolved to a public
address and now to 10.0.0.5 or 169.254.169.254 (DNS rebinding, cloud metadata) is refused.
The connection goes to the address checked, never through a second lookup: TLS still
verifies the certificate against the URL's host name (SNI). No redirect is followed (a 3xx
is an answer that is not 2xx), and at most READ_LIMIT bytes of the answer are read.
The timeout bounds the whole delivery (lookup, connect, TLS, send, status, headers, body),
not each socket operation: a receiver trickling its answer a byte at a time is cut off
when the delivery's time is up, so it cannot hold a worker's slot for hours.
"""

from __future__ import annotations

import functools
import http.client
import io
import ipaddress
import socket
import ssl
import threading
import time
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


def _left(deadline: float) -> float:
    """Seconds until ``deadline`` (time.monotonic()), else TimeoutError."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the delivery's time is up")
    return left


def _lookup(host: str, port: int, deadline: float) -> list:
    """getaddrinfo within the deadline: it has no timeout of its own, so it runs in a
    thread of its own that is abandoned when time is up (the resolver ends it later)."""
    done, answer = threading.Event(), {}

    def run() -> None:
        try:
            answer["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:
            answer["error"] = e
        done.set()

    threading.Thread(target=run, daemon=True, name="webhook-lookup").start()
    if not done.wait(_left(deadline)):
        raise TimeoutError("the webhook host did not resolve in time")
    if "error" in answer:
        raise answer["error"]
    return answer["infos"]


def resolve(host: str, port: int, *, allow_private: bool,
            deadline: float | None = None) -> list[str]:
    """Every address ``host`` resolves to, each allowed, else Refused (one refused address
    refuses the name: an attacker's DNS would answer with both)."""
    try:
        infos = _lookup(host, port, deadline if deadline is not None
                        else time.monotonic() + 30.0)
    except socket.gaierror:
        raise Refused("the webhook host does not resolve") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not allow_private and any(_refused_address(a) for a in addresses):
        raise Refused("the webhook host resolves to a private, loopback, link-local or "
                      "metadata address (OTP_WEBHOOK_ALLOW_PRIVATE=true allows it)")
    return addresses


class _DeadlineReader(io.RawIOBase):
    """The answer's bytes, each read given only the time the delivery has left (through
    the socket's own file, which keeps it open until the answer is closed)."""

    def __init__(self, sock: socket.socket, file: io.RawIOBase, deadline: float):
        self._sock, self._file, self._deadline = sock, file, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self._sock.settimeout(_left(self._deadline))
        return self._file.readinto(buffer)

    def close(self) -> None:
        super().close()
        self._file.close()


class _DeadlineResponse(http.client.HTTPResponse):
    def __init__(self, sock, *args, deadline: float, **kwargs):
        super().__init__(sock, *args, **kwargs)
        self.fp = io.BufferedReader(_DeadlineReader(sock, self.fp.detach(), deadline))


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to ``address``, whatever ``host`` resolves to now; every step (connect,
    TLS handshake, send, each read of the answer) gets only the time left before
    ``deadline``."""

    def __init__(self, host: str, port: int, address: str, deadline: float, **kwargs):
        super().__init__(host, port, timeout=_left(deadline), **kwargs)
        self._address, self._deadline = address, deadline
        self.response_class = functools.partial(_DeadlineResponse, deadline=deadline)

    def _open(self) -> socket.socket:
        return socket.create_connection((self._address, self.port), _left(self._deadline))

    def connect(self) -> None:
        self.sock = self._open()

    def send(self, data) -> None:
        if self.sock is not None:  # sendall's timeout bounds all of it (Python ≥ 3.5)
            self.sock.settimeout(_left(self._deadline))
        super().send(data)


class _PinnedHTTPS(_PinnedHTTP):
    def __init__(self, host: str, port: int, address: str, deadline: float):
        super().__init__(host, port, address, deadline)
        self._context = ssl.create_default_context()

    def connect(self) -> None:
        sock = self._open()
        sock.settimeout(_left(self._deadline))  # the handshake's timeout is for all of it
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float,
         allow_private: bool) -> Answer:
    """POST ``body`` to ``url`` at a checked address, all of it within ``timeout``
    seconds; raises Refused or OSError (refused connection, timeout, TLS failure)."""
    deadline = time.monotonic() + timeout
    scheme, host, port = target(url, allow_private=allow_private)
    addresses = resolve(host, port, allow_private=allow_private, deadline=deadline)
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection_class = _PinnedHTTPS if scheme == "https" else _PinnedHTTP
    error: OSError | None = None
    for address in addresses:
        connection = connection_class(host, port, address, deadline)
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
