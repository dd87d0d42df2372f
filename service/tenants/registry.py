"""The services of this deployment, as this process sees them: a cache that answers every
request without a Redis round trip, and follows every change within a second.

A background thread reads the store's version token every ``POLL_SECONDS`` (0.2 s: one
GET per process, five a second, whatever the traffic) and, when it changed, the whole
snapshot in one script. A change made in this process is loaded at once (:meth:`refresh`);
one made elsewhere is seen here within a poll and a load, well within 1 s.

Fail closed: when the cache could not confirm it is current for ``STALE_SECONDS`` (3 s:
Redis unreachable), a runtime key (``sk_…``) is refused with 503 ``store_unavailable``
rather than judged on data that may miss its revocation (or its creation). The environment's keys
(OTP_API_KEYS) need no store and keep working. Lookups of services (:meth:`get`,
:meth:`by_twilio_sid`) keep answering from the last snapshot.

The thread starts with the first use in each process (so a gunicorn worker, forked after
the app was built, starts its own: a forked thread does not survive the fork), holds the
registry only weakly (an app that is dropped takes its thread with it), and stops with
:meth:`close`. No Flask here.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from service.errors import StoreUnavailable
from service.storage import STORE_ERRORS
from service.tenants import document
from service.tenants.keys import KEY_PREFIX, KeyRecord, key_hash
from service.tenants.store import ServiceStore, Snapshot
from service.verification.errors import ValidationFailed
from service.verification.tenant import DEFAULT, Tenant

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
STALE_SECONDS = 3.0


@dataclass(frozen=True)
class Authenticated:
    """Who presented a key: the key's service, the verification owner, the key."""

    tenant: Tenant
    owner: str
    key_name: str
    key_id: str


@dataclass(frozen=True)
class View:
    """One snapshot, built into tenants; replaced whole, never changed."""

    version: str | None  # None: never loaded
    tenants: dict[str, Tenant]  # the default service first, then by creation
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # stored, by id
    by_sid: dict[str, Tenant] = field(default_factory=dict)
    keys: dict[str, KeyRecord] = field(default_factory=dict)  # by key hash


class Registry:
    def __init__(self, store: ServiceStore, secret: bytes, base: Tenant,
                 env_keys: Mapping[str, str], *, poll_seconds: float = POLL_SECONDS,
                 stale_seconds: float = STALE_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.store = store
        self.secret = secret
        self.base = base  # the environment's configuration, without stored overrides
        self.env_keys = dict(env_keys)
        self.poll_seconds, self.stale_seconds, self.clock = poll_seconds, stale_seconds, clock
        self._view = build_view(Snapshot(None, {}, {}), base, secret)
        self._fresh_at = float("-inf")
        self._failing = False
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()
        self._closed = False

    # -- the interface the HTTP layer and the other branches use --------------------------
    @property
    def default(self) -> Tenant:
        return self._current().tenants[DEFAULT]

    def get(self, service_id: str) -> Tenant | None:
        return self._current().tenants.get(service_id)

    def by_twilio_sid(self, sid: str) -> Tenant | None:
        return self._current().by_sid.get(sid)

    def all(self) -> list[Tenant]:
        return list(self._current().tenants.values())

    def authenticate(self, presented: str) -> Authenticated | None:
        """The key's service and owner, or None. The environment's keys are each compared
        in constant time; a runtime key is found by its hash (see :mod:`.keys`)."""
        view = self._current()
        found = None
        for name, key in self.env_keys.items():
            if hmac.compare_digest(presented.encode(), key.encode()):
                found = name
        if found is not None:
            return Authenticated(view.tenants[DEFAULT], found, found, "env:" + found)
        if not presented.startswith(KEY_PREFIX):
            return None
        if self.stale:  # its revocation, or its creation, may be what the cache misses
            raise StoreUnavailable("The state store is unavailable: runtime API keys cannot "
                                   "be checked now.")
        record = view.keys.get(key_hash(self.secret, presented))
        if record is None:
            return None
        tenant = view.tenants[record.service]
        return Authenticated(tenant, tenant.owner(record.name), record.name, record.key_id)

    # -- for the admin side ---------------------------------------------------------------
    def record(self, service_id: str) -> dict[str, Any] | None:
        """What is stored for a service (overrides, times), as last loaded."""
        return self._current().records.get(service_id)

    def keys_of(self, service_id: str) -> list[KeyRecord]:
        return sorted((r for r in self._current().keys.values() if r.service == service_id),
                      key=lambda r: (r.created, r.key_id))

    @property
    def stale(self) -> bool:
        return self.clock() - self._fresh_at > self.stale_seconds

    def refresh(self) -> bool:
        """Load the snapshot now (after a change made here); False if the store failed."""
        try:
            snapshot = self.store.snapshot()
        except STORE_ERRORS as e:
            self._note_failure(e)
            return False
        self._view = build_view(snapshot, self.base, self.secret)
        self._fresh_at = self.clock()
        self._note_recovery()
        return True

    def poll(self) -> None:
        """One pass of the thread: a version read, and a load when it changed."""
        try:
            version = self.store.version()
        except STORE_ERRORS as e:
            self._note_failure(e)
            return
        if version != self._view.version:
            self.refresh()
        else:
            self._fresh_at = self.clock()
            self._note_recovery()

    def close(self) -> None:
        self._closed = True

    # -- the thread -----------------------------------------------------------------------
    def _current(self) -> View:
        thread = self._thread
        if thread is None or not thread.is_alive():
            self._start()
        return self._view

    def _start(self) -> None:
        with self._starting:
            if self._closed or (self._thread is not None and self._thread.is_alive()):
                return
            if self.stale:
                self.refresh()  # once per process: the first request sees current data
            self._thread = threading.Thread(target=_poll, args=(weakref.ref(self),),
                                            name="services-cache", daemon=True)
            self._thread.start()

    def _note_failure(self, error: BaseException) -> None:
        if not self._failing:
            log.warning("the services cache cannot refresh (%s): runtime API keys are "
                        "refused after %g s without the store", type(error).__name__,
                        self.stale_seconds)
        self._failing = True

    def _note_recovery(self) -> None:
        if self._failing:
            log.warning("the services cache is current again")
        self._failing = False


def _poll(ref: weakref.ref) -> None:
    while True:
        registry = ref()
        if registry is None or registry._closed:
            return
        pause = registry.poll_seconds
        try:
            registry.poll()
        except Exception:  # a bug here must not end the thread (and stale every key)
            log.exception("services cache poll failed")
        del registry  # only weakly held while asleep
        time.sleep(pause)


def build_view(snapshot: Snapshot, base: Tenant, secret: bytes) -> View:
    """Tenants from the stored records; a record the rules now refuse is left out (its keys
    refused with it) and logged, never half-applied."""
    records: dict[str, dict[str, Any]] = {}
    for service_id, raw in snapshot.docs.items():
        try:
            records[service_id] = json.loads(raw)
        except ValueError:
            log.error("service %s: its stored record is not JSON; left out", service_id)
    tenants = {DEFAULT: document.build(base, DEFAULT, {}, secret)}
    ordered = sorted(records.items(), key=lambda item: (item[0] != DEFAULT,
                                                        item[1].get("order", 0)))
    for service_id, record in ordered:
        try:
            tenants[service_id] = document.build(base, service_id,
                                                 record.get("overrides", {}), secret)
        except (ValidationFailed, KeyError, TypeError, ValueError) as e:
            log.error("service %s: its stored values are refused (%s); left out", service_id,
                      getattr(e, "extensions", {}).get("errors", type(e).__name__))
    keys = {}
    for digest, raw in snapshot.keys.items():
        try:
            record = KeyRecord.from_json(json.loads(raw))
        except (ValueError, KeyError, TypeError):
            continue
        if record.service in tenants:
            keys[digest] = record
    return View(snapshot.version, tenants, records,
                {tenant.twilio_sid: tenant for tenant in tenants.values()}, keys)
