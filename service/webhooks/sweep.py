"""The expiry sweep: a verification nobody looks at still ends, and says so, in time.

Expiry is lazy on the request path (a read or a check past the expiry ends it). For
``verification.expired`` to reach a webhook within a minute of the expiry even when no
one asks, reserve_send.lua enters each new verification in ``<stream>:exp`` scored by its
expiry, and the workers end the due ones with end_pending.lua, the script a lazy expiry
runs: whichever comes first ends it and writes the event, the other finds it ended, so the
event is written exactly once. A resend moves the expiry on; the sweep then re-enters the
verification under its new expiry instead of ending it.
"""

from __future__ import annotations

from service.verification.decisions import Ended
from service.verification.event_log import expiry_key
from service.verification.phones import mask_phone
from service.verification.store import VerificationStore

BATCH = 200


def sweep(store: VerificationStore, stream: str, now_ms: int, batch: int = BATCH) -> int:
    """End the verifications of ``stream``'s slot whose expiry has passed; how many."""
    key = expiry_key(stream)
    ended = 0
    for verification_id in store.redis.zrangebyscore(key, "-inf", now_ms, start=0, num=batch):
        data = store.read(verification_id)
        if data and data.get("status") == "pending" and int(data["expires"]) > now_ms:
            store.redis.zadd(key, {verification_id: int(data["expires"])})
            continue
        if data and data.get("status") == "pending":
            ending = store.end_pending(verification_id, client=data["client"], now_ms=now_ms,
                                       status="expired", masked_phone=mask_phone(data["phone"]))
            ended += ending.decision is Ended.ENDED
        store.redis.zrem(key, verification_id)
    return ended
