"""Runtime API keys: made here, shown once, stored only as a hash. No Flask here.

A runtime key is 256 random bits (``sk_`` + 43 URL-safe characters). The store keeps
HMAC-SHA256(OTP_SECRET, key) and never the key, so a copy of Redis holds nothing a caller
could present, and without OTP_SECRET not even a way to test guesses offline. A slow
password hash is not needed: it protects low-entropy secrets against guessing, and there is
nothing to guess in 256 random bits. Because the hash is deterministic, a key is found by
its hash in a dict, not by comparing it with every stored key: the lookup's timing can only
tell an attacker about hashes of keys they already chose, which says nothing about any
real key (finding an input whose HMAC starts like a stored one is as hard as guessing it).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

KEY_PREFIX = "sk_"
KEY_ID = re.compile(r"\Akey_[0-9a-f]{16}\Z")
KEY_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")  # as OTP_API_KEYS' names


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


def key_hash(secret: bytes, key: str) -> str:
    return hmac.new(secret, b"aspsms-verify api key:" + key.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class KeyRecord:
    """What is stored of a runtime key: never the key."""

    key_id: str
    service: str
    name: str
    created: str  # RFC 3339
    hint: str  # the first characters, to tell keys apart in a list

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyRecord:
        return cls(data["key_id"], data["service"], data["name"], data["created"],
                   data.get("hint", ""))

    def public(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "name": self.name, "source": "api",
                "created": self.created, "hint": self.hint, "revocable": True}

    def record(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "service": self.service, "name": self.name,
                "created": self.created, "hint": self.hint}


def environment_key(name: str) -> dict[str, Any]:
    """An OTP_API_KEYS entry as listed under the default service: by name, not revocable
    here (it lives in the environment)."""
    return {"key_id": "env:" + name, "name": name, "source": "environment", "created": None,
            "hint": None, "revocable": False}
