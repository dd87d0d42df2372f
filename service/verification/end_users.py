"""The end user a start or check is for, as the calling backend names it (issue 17).

This service is called by backends (a login flow, a signup form's server), so the TCP peer
is the backend, never the end user: limits on end users key on what the caller says,
``end_user_ip`` and ``end_user_id``. Neither is stored as given: both are HMACs with
OTP_SECRET (an IP address and an account id are personal data), the IP after normalising.

An IPv6 end user counts as its /64 network: one subscriber, one home or one phone gets a
whole /64 and picks addresses in it freely (privacy extensions rotate them), so counting
single addresses would let one device start without limit. IPv4 counts per address (and an
IPv4-mapped IPv6 address as the IPv4 address it maps). No Flask here.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass

from service.verification import errors
from service.verification.keys import hmac32

MAX_ID_LENGTH = 128


@functools.lru_cache(maxsize=4096)  # a start and its check name one address; parsing is slow
def normalise_ip(text: str) -> str:
    """``text`` as the unit the IP limits count: an IPv4 address, or an IPv6 /64 network
    in compressed form. ValueError for text that is no IP address."""
    if text != text.strip() or "%" in text:
        # surrounding space or an IPv6 zone (fe80::1%eth0: one link of the caller's own
        # host) is no end user's address, and a zone would name one address many ways
        raise ValueError("not a plain IP address")
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return f"{ipaddress.IPv6Address(int(address) >> 64 << 64)}/64"
    return str(address)


def ip_problem(text: object) -> str | None:
    """What is wrong with ``text`` as an end_user_ip, or None."""
    if not isinstance(text, str):
        return "must be text"
    try:
        normalise_ip(text)
    except ValueError:
        return "must be an IPv4 or IPv6 address"
    return None


@dataclass(frozen=True)
class EndUser:
    """HMACs of the normalised end-user IP and of the end-user id ('' where not given)."""

    ip: str = ""
    id: str = ""

    @classmethod
    def of(cls, secret: bytes, ip: str | None, user_id: str | None, *,
           require_ip: bool = False) -> EndUser:
        """The end user named by a request, or the 422 that says why not."""
        if ip is None and require_ip:
            raise errors.ValidationFailed("This service requires end_user_ip.",
                                          errors={"end_user_ip": ["Required by this service."]})
        problem = None if ip is None else ip_problem(ip)  # normalised, and kept, once
        if problem:
            raise errors.ValidationFailed(f"end_user_ip {problem}.",
                                          errors={"end_user_ip": [problem]})
        if user_id is not None and not (isinstance(user_id, str)
                                        and 1 <= len(user_id) <= MAX_ID_LENGTH):
            message = f"must be 1 to {MAX_ID_LENGTH} characters"
            raise errors.ValidationFailed(f"end_user_id {message}.",
                                          errors={"end_user_id": [message]})
        return cls(ip="" if ip is None else _hash(secret, "end-user-ip:" + normalise_ip(ip)),
                   id="" if user_id is None else _hash(secret, "end-user-id:" + user_id))


NO_END_USER = EndUser()


_hash = hmac32
