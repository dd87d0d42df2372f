"""The services' signing secrets and the Standard Webhooks signature (``standardwebhooks``).

A secret is never stored: it is derived from OTP_SECRET and a random nonce kept per service
(``otp:{otp-webhooks}:secret:<service id>``, fields ``current``, ``previous``,
``previous_until``), so a copy of Redis signs nothing. ``POST …/webhook-secret`` makes a new
nonce and shows its secret once; the previous one keeps signing beside it for
OVERLAP_MS, so a receiver can switch without dropping an event: each delivery carries one
``v1,`` signature per secret in force, space separated, as the format allows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime

from standardwebhooks import Webhook

from service.storage import store_call

OVERLAP_MS = 24 * 3600 * 1000
PREFIX = "whsec_"
CACHE_SECONDS = 1.0  # a rotation reaches every worker within this
_ROTATE = """
local current = redis.call('HGET', KEYS[1], 'current')
if current then
  redis.call('HSET', KEYS[1], 'previous', current, 'previous_until', ARGV[2])
end
redis.call('HSET', KEYS[1], 'current', ARGV[1])
"""


def secret_key(service_id: str) -> str:
    return f"otp:{{otp-webhooks}}:secret:{service_id}"


class Secrets:
    def __init__(self, redis, secret: bytes, clock: Callable[[], float] = time.time):
        self.redis = redis
        self._key = hmac.new(secret, b"aspsms-verify webhook secrets", hashlib.sha256).digest()
        self._clock = clock
        self._rotate = redis.register_script(_ROTATE)
        self._cache: dict[str, tuple[float, list[str]]] = {}

    def _derive(self, service_id: str, nonce: str) -> str:
        mac = hmac.new(self._key, f"{service_id}/{nonce}".encode(), hashlib.sha256).digest()
        return PREFIX + base64.b64encode(mac).decode()

    @store_call
    def rotate(self, service_id: str) -> str:
        """A new secret for the service (the one before it signs on for OVERLAP_MS)."""
        nonce = secrets.token_hex(16)
        until = int(self._clock() * 1000) + OVERLAP_MS
        self._rotate(keys=[secret_key(service_id)], args=[nonce, until])
        self._cache.pop(service_id, None)
        return self._derive(service_id, nonce)

    @store_call
    def signing(self, service_id: str) -> list[str]:
        """The secrets in force, newest first; none before the first rotation."""
        now = self._clock()
        cached = self._cache.get(service_id)
        if cached and cached[0] > now:
            return cached[1]
        stored = self.redis.hgetall(secret_key(service_id))
        in_force = [self._derive(service_id, stored["current"])] if "current" in stored else []
        if stored.get("previous") and int(stored.get("previous_until", 0)) > now * 1000:
            in_force.append(self._derive(service_id, stored["previous"]))
        self._cache[service_id] = (now + CACHE_SECONDS, in_force)
        return in_force


def signature(in_force: list[str], webhook_id: str, timestamp: datetime, body: str) -> str:
    """The webhook-signature header: one ``v1,<base64>`` per secret in force."""
    return " ".join(Webhook(secret).sign(webhook_id, timestamp, body) for secret in in_force)


def headers(in_force: list[str], webhook_id: str, body: str,
            now: Callable[[], float] = time.time) -> dict[str, str]:
    timestamp = datetime.fromtimestamp(int(now()), tz=UTC)
    return {"webhook-id": webhook_id, "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": signature(in_force, webhook_id, timestamp, body),
            "content-type": "application/json", "user-agent": "aspsms-verify-webhooks"}
