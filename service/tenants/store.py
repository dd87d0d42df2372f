"""Where services and their keys live: three Redis keys under the one hash tag
``{otp-services}``, so every script runs unchanged on a cluster (one slot) and a whole
snapshot is one atomic read. No Flask here.

* ``otp:{otp-services}:docs``: a hash, service id -> its record (JSON: the overrides, when
  it was created and changed);
* ``otp:{otp-services}:keys``: a hash, key hash -> the key's record (JSON: its id, its
  service, its name, when it was made, a hint), never the key itself;
* ``otp:{otp-services}:version``: a random token, replaced by every change; the caches of
  every process poll it (:mod:`.registry`). A token rather than a counter: a Redis that
  lost its data and counted again from 1 could not make a cache miss a change.

Writes are compare-and-set scripts: an update names the record it read, so two admins'
changes never silently overwrite each other (the loser reads again). Services change at an
admin's pace, so one hash each is plenty.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from service.storage import store_call

TAG = "{otp-services}"
DOCS = f"otp:{TAG}:docs"
KEYS = f"otp:{TAG}:keys"
VERSION = f"otp:{TAG}:version"

_SNAPSHOT = """
return {redis.call('GET', KEYS[3]) or '', redis.call('HGETALL', KEYS[1]),
        redis.call('HGETALL', KEYS[2])}
"""
# ARGV: id, the record read ('' = none), the new record ('' = delete), token, key hashes…
_PUT = """
local current = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if current ~= ARGV[2] then return 0 end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  for i = 5, #ARGV do redis.call('HDEL', KEYS[2], ARGV[i]) end
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
end
redis.call('SET', KEYS[3], ARGV[4])
return 1
"""
# ARGV: service id, key hash, record, token, '1' when the service must exist
_ADD_KEY = """
if ARGV[5] == '1' and redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[3]) == 0 then return -1 end
redis.call('SET', KEYS[3], ARGV[4])
return 1
"""
_REVOKE = """
local removed = redis.call('HDEL', KEYS[2], ARGV[1])
if removed == 1 then redis.call('SET', KEYS[3], ARGV[2]) end
return removed
"""


@dataclass(frozen=True)
class Snapshot:
    """Everything stored, read at one moment; raw records (JSON text) by id and by hash."""

    version: str
    docs: dict[str, str]
    keys: dict[str, str]


class ServiceStore:
    def __init__(self, client):
        self.redis = client
        self._snapshot = client.register_script(_SNAPSHOT)
        self._put = client.register_script(_PUT)
        self._add_key = client.register_script(_ADD_KEY)
        self._revoke = client.register_script(_REVOKE)

    # -- reads (the caches call these raw: they judge failures themselves) ----------------
    def version(self) -> str:
        return self.redis.get(VERSION) or ""

    def snapshot(self) -> Snapshot:
        version, docs, keys = self._snapshot(keys=[DOCS, KEYS, VERSION])
        return Snapshot(version, _pairs(docs), _pairs(keys))

    @store_call
    def read(self) -> Snapshot:
        """A snapshot for an admin operation (503 when the store is unavailable)."""
        return self.snapshot()

    # -- writes ---------------------------------------------------------------------------
    @store_call
    def put(self, service_id: str, read: str | None, record: dict[str, Any] | None,
            key_hashes: list[str] = ()) -> bool:
        """Store (or with None delete, with ``key_hashes``) the record if it is still the
        one ``read`` (None: there was none); False when someone changed it meanwhile."""
        new = "" if record is None else json.dumps(record, sort_keys=True)
        return bool(self._put(keys=[DOCS, KEYS, VERSION],
                              args=[service_id, read or "", new, _token(), *key_hashes]))

    @store_call
    def add_key(self, service_id: str, key_hash: str, record: dict[str, Any], *,
                service_must_exist: bool) -> bool:
        """False when the service is gone (a key is never stored without its service)."""
        added = self._add_key(keys=[DOCS, KEYS, VERSION],
                              args=[service_id, key_hash, json.dumps(record, sort_keys=True),
                                    _token(), "1" if service_must_exist else "0"])
        if added == -1:  # 256 random bits met an existing key: never, but never stored twice
            raise RuntimeError("key hash collision")
        return bool(added)

    @store_call
    def revoke(self, key_hash: str) -> bool:
        return bool(self._revoke(keys=[DOCS, KEYS, VERSION], args=[key_hash, _token()]))


def _pairs(flat) -> dict[str, str]:
    """HGETALL through a script comes back flat: name, value, name, value…"""
    if isinstance(flat, dict):
        return flat
    return dict(zip(flat[0::2], flat[1::2], strict=True))


def _token() -> str:
    return secrets.token_hex(8)
