"""Twilio Verify's verification sids (``VE`` + 32 hex) for our verification ids (issue 19).

A ``vf_`` id holds 144 bits (a 4-hex slot tag and 128 random bits), a ``VE`` sid 128, so one
cannot be decoded from the other. The sid is derived instead, and a mapping key leads back:

    VE<tag><28 hex of HMAC(secret, vf_ id)>   the tag is the vf_ id's, so the sid alone
                                              names the verification's Redis slot
    otp:{tag}:ve:<28 hex>  ->  vf_ id         written in that slot by /v2 only: its start,
                                              and an answer that found the verification by
                                              phone number (it may have started on /otp)

Any process derives the sid from the id without Redis; only resolving a sid costs a read
(and a phone-addressed /v2 answer a write). The /otp routes never write or read the mapping,
so their round trips are unchanged. The mapping lives as long as a verification record can
(its validity plus the retention). No Flask here.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from service.storage import store_call
from service.verification import keys

SID_PATTERN = re.compile(r"\AVE([0-9a-f]{4})([0-9a-f]{28})\Z")


def verification_sid(secret: bytes, verification_id: str) -> str:
    """The verification's sid; ``verification_id`` must be a vf_ id (its tag is kept)."""
    tag = verification_id[3:7]
    digest = hmac.new(secret, ("twilio-verification:" + verification_id).encode(),
                      hashlib.sha256).hexdigest()
    return f"VE{tag}{digest[:28]}"


def mapping_key(sid: str) -> str | None:
    """The key that names the sid's verification; None for a string that is no VE sid."""
    match = SID_PATTERN.match(sid)
    return f"otp:{{{match.group(1)}}}:ve:{match.group(2)}" if match else None


class VerificationSids:
    def __init__(self, client, secret: bytes):
        self.redis = client
        self._secret = secret

    def sid(self, verification_id: str) -> str:
        return verification_sid(self._secret, verification_id)

    @store_call
    def remember(self, verification_id: str) -> str:
        """Write the sid's mapping (again, on a resend: the same value) and return the sid."""
        sid = self.sid(verification_id)
        self.redis.set(mapping_key(sid), verification_id, px=keys.PENDING_HORIZON_MS)
        return sid

    @store_call
    def resolve(self, sid: str) -> str | None:
        """The vf_ id behind ``sid``, or None (malformed, never issued, or long gone)."""
        key = mapping_key(sid)
        verification_id = self.redis.get(key) if key else None
        if verification_id is None or not hmac.compare_digest(self.sid(verification_id), sid):
            return None
        return verification_id
