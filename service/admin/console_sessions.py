"""Web console sign-ins, kept in the state store so that the server can end them.

The console's cookie carries only a random session id (signed by Flask); what it stands
for, the admin key's name, an HMAC fingerprint of the key, when it signed in and when it
was last seen, is one store entry. Every console request looks the entry up, so a sign-in
ends for good when any of these happens:

* signing out deletes the entry (an old copy of the cookie then names nothing);
* **idle expiry**: no request for ``IDLE_SECONDS`` (30 minutes);
* **absolute expiry**: ``ABSOLUTE_SECONDS`` (8 hours) after signing in, however busy;
* the key is removed from ``OTP_ADMIN_KEYS``, or changed (its fingerprint no longer matches).

The entry's key is the SHA-256 of the id, so the store never holds a usable cookie value;
each operation touches that one key, which makes it cluster-safe. No Flask here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping

from service.storage import store_call

IDLE_SECONDS = 30 * 60
ABSOLUTE_SECONDS = 8 * 3600
KEY_PREFIX = "otp:console:session:"


def cookie_key(secret: bytes) -> bytes:
    """The console's own key (Flask's cookie signatures, the entries' fingerprints), so that
    neither says anything about OTP_SECRET."""
    return hmac.new(secret, b"aspsms-verify console session", hashlib.sha256).digest()


class ConsoleSessions:
    def __init__(self, client, secret: bytes, *, clock: Callable[[], float] = time.time,
                 idle: int = IDLE_SECONDS, absolute: int = ABSOLUTE_SECONDS):
        self.redis = client
        self._secret = secret
        self.clock = clock
        self.idle = idle
        self.absolute = absolute

    @store_call
    def create(self, name: str, key: str) -> str:
        """A new sign-in of the admin key ``name``; its session id (for the cookie)."""
        session_id = secrets.token_urlsafe(32)
        now = int(self.clock())
        entry = {"admin": name, "key": self._fingerprint(key), "since": now, "seen": now}
        self.redis.set(self._key(session_id), json.dumps(entry), ex=self.idle)
        return session_id

    @store_call
    def admin(self, session_id: str, admin_keys: Mapping[str, str]) -> str | None:
        """The signed-in key's name while the sign-in is valid (renewing its idle time)."""
        key = self._key(session_id)
        raw = self.redis.get(key)
        entry = _parse(raw) if raw else None
        if entry is None:
            return None
        now = int(self.clock())
        configured = admin_keys.get(entry["admin"])
        if (configured is None
                or not hmac.compare_digest(entry["key"], self._fingerprint(configured))
                or now - entry["seen"] > self.idle or now - entry["since"] > self.absolute):
            self.redis.delete(key)
            return None
        entry["seen"] = now
        left = min(self.idle, self.absolute - (now - entry["since"]))
        # XX: a sign-out that deleted the entry meanwhile is not undone by this renewal
        self.redis.set(key, json.dumps(entry), ex=max(1, left), xx=True)
        return entry["admin"]

    @store_call
    def end(self, session_id: str) -> None:
        self.redis.delete(self._key(session_id))

    def _key(self, session_id: str) -> str:
        return KEY_PREFIX + hashlib.sha256(session_id.encode()).hexdigest()

    def _fingerprint(self, key: str) -> str:
        return hmac.new(self._secret, key.encode(), hashlib.sha256).hexdigest()


def _parse(raw: str) -> dict | None:
    try:
        entry = json.loads(raw)
    except ValueError:
        return None
    fields = {"admin": str, "key": str, "since": int, "seen": int}
    if not isinstance(entry, dict) or any(not isinstance(entry.get(name), kind)
                                          for name, kind in fields.items()):
        return None
    return entry
