"""Where verification state lives in Redis: the key layout, the ids, and how long it stays.

Key design (cluster-ready, issue 9): every key that one script touches carries the same
hash tag, derived from the phone number's HMAC, so each script runs unchanged on a Redis
Cluster. The tag is also embedded in the verification id, so an id alone names its slot.

    otp:{tag}:v:<id>              hash: one verification
    otp:{tag}:cur:<client>:<ph>   string: that client's latest verification for the phone
    otp:{tag}:fail:<ph>           hash: the phone's consecutive failures and lock (for
                                  a service other than the default: fail:<service>:<ph>)
    otp:{tag}:dlv                 sorted set: the slot's sends awaiting a final delivery
                                  status, by TRN, scored by send time (delivery.py)
    otp:{tag}:seen:<ph>           sorted set: the phone's verifications of the last 30 days,
                                  by id, scored by creation time (the support lookup)
    otp:{tag}:tl:<id>             list: one verification's timeline for the support lookup,
                                  kept 30 days after its creation (lookup.py)

No key holds a raw phone number; the verification hash holds it while pending and a masked
form once it has ended. Codes are never stored: the gateway generates and checks them.
The support lookup's record outlives the verification's hash (deleted a day after it ends)
and holds neither: what happened, when, and under which client and service.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from service.verification.tenant import DEFAULT

RETENTION_MS = 24 * 3600 * 1000
# a verification's record is gone by then: validity (≤ 60 min) plus retention
PENDING_HORIZON_MS = RETENTION_MS + 3600 * 1000
FAILURE_MEMORY_MS = 24 * 3600 * 1000
ID_PATTERN = re.compile(r"\Avf_([0-9a-f]{4})[A-Za-z0-9_-]{22}\Z")
# the support lookup's record (lua/_history.lua): how long it is kept, and its caps
HISTORY_MS = 30 * 24 * 3600 * 1000
HISTORY_PER_PHONE = 50  # verifications a phone's index names: the newest
HISTORY_PER_VERIFICATION = 48  # timeline entries: the creation and the newest others
TAGS = [f"{tag:04x}" for tag in range(16**4)]  # every slot a phone hash can name


def hmac32(secret: bytes, value: str) -> str:
    """32 hex digits of HMAC-SHA256(secret, value): how this service names what it must not
    keep in clear (phones, prefixes, end users) and derives its sids."""
    return hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()[:32]


def phone_hash(secret: bytes, e164: str) -> str:
    return hmac32(secret, e164)


def new_id(phone_hash: str) -> str:
    return f"vf_{phone_hash[:4]}{secrets.token_urlsafe(16)}"


def verification_key(verification_id: str) -> str | None:
    """None for a string that is no verification id."""
    match = ID_PATTERN.match(verification_id)
    return _verification_key(match.group(1), verification_id) if match else None


def _verification_key(tag: str, verification_id: str) -> str:
    return f"otp:{{{tag}}}:v:{verification_id}"


ANY_VERIFICATION = _verification_key("*", "*")  # a SCAN pattern: every verification's key


def pointer_key(client: str, phone_hash: str) -> str:
    return f"otp:{{{phone_hash[:4]}}}:cur:{client}:{phone_hash}"


def failure_key(phone_hash: str, service: str = DEFAULT) -> str:
    """A service's lockout of one phone: the default service keeps its key names (an
    upgraded deployment keeps its locks); another's are its own."""
    scope = phone_hash if service == DEFAULT else f"{service}:{phone_hash}"
    return f"otp:{{{phone_hash[:4]}}}:fail:{scope}"


def history_key(phone_hash: str) -> str:
    """The phone's index of its verifications, for the support lookup."""
    return f"otp:{{{phone_hash[:4]}}}:seen:{phone_hash}"


def timeline_key(verification_id: str) -> str:
    """A verification's timeline (in its slot: the id's tag is the phone's)."""
    return f"otp:{{{verification_id[3:7]}}}:tl:{verification_id}"


def awaiting_delivery_key(tag: str) -> str:
    """The sends of one slot (a verification id's tag) that await a delivery status; "*"
    for a pattern of every slot's (so too for the other key functions' arguments)."""
    return f"otp:{{{tag}}}:dlv"
