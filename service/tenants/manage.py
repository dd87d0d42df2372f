"""Creating, changing and deleting services and their keys, audited: the one place the admin
API, the web console and the CLI go through, so all three apply the same rules.

Every operation reads the store afresh (an admin's pace: one round trip is nothing here)
and writes with compare-and-set, so two admins never overwrite each other silently; the
process's own cache is told at once (``on_change``), every other process within a poll.
Audit entries name the acting admin and the fields changed, never a value or a key.
No Flask here.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from service.admin.audit import AuditLog
from service.errors import ServiceError
from service.tenants import document
from service.tenants.errors import (
    ConcurrentChange,
    EnvironmentManaged,
    KeyNotFound,
    ServiceNotFound,
)
from service.tenants.keys import (
    KEY_ID,
    KEY_NAME,
    KeyRecord,
    environment_key,
    key_hash,
    new_key,
    new_key_id,
)
from service.tenants.registry import View, build_view
from service.tenants.store import ServiceStore
from service.verification.errors import ValidationFailed
from service.verification.model import rfc3339
from service.verification.tenant import DEFAULT, Tenant

TRIES = 5  # compare-and-set rounds before a change gives up (409 concurrent_change)


class ServiceAdmin:
    def __init__(self, store: ServiceStore, audit: AuditLog, base: Tenant, secret: bytes,
                 env_keys: Mapping[str, str], admin_keys: Mapping[str, str], *,
                 on_change: Callable[[], object] = lambda: None,
                 clock: Callable[[], float] = time.time, webhook_allow_private: bool = False):
        self.store, self.audit, self.base, self.secret = store, audit, base, secret
        self.webhook_allow_private = webhook_allow_private
        self.env_keys, self.admin_keys = dict(env_keys), dict(admin_keys)
        self.on_change, self.clock = on_change, clock

    # -- reads ----------------------------------------------------------------------------
    def list(self) -> list[dict[str, Any]]:
        view = self._view()
        return [self._public(view, service_id) for service_id in view.tenants]

    def show(self, service_id: str) -> dict[str, Any]:
        view = self._view()
        self._known(view, service_id)
        return self._public(view, service_id)

    def keys(self, service_id: str) -> list[dict[str, Any]]:
        view = self._view()
        self._known(view, service_id)
        return self._keys(view, service_id)

    # -- changes --------------------------------------------------------------------------
    def create(self, actor: str, body: Any) -> dict[str, Any]:
        service_id = "sv_" + secrets.token_hex(16)
        with self._audited(actor, "service.create", service_id) as changed:
            overrides = document.merge({}, document.load(body))
            changed += document.changed_fields({}, overrides)
            document.build(self.base, service_id, overrides, self.secret)
            document.check_webhook(overrides, allow_private=self.webhook_allow_private)
            now = self._now()
            record = {"created": now, "updated": now, "overrides": overrides,
                      "order": int(self.clock() * 1000)}  # ms: lists in creation order
            if not self.store.put(service_id, None, record):
                raise ConcurrentChange("A service with this id appeared meanwhile; retry.")
        return self.show(service_id)

    def update(self, actor: str, service_id: str, body: Any) -> dict[str, Any]:
        with self._audited(actor, "service.update", _target(service_id)) as changed:
            patch = document.load(body)
            changed += document.named_fields(patch)  # what was asked, if it is refused
            document.check_webhook(patch, allow_private=self.webhook_allow_private)
            for _ in range(TRIES):
                snapshot = self.store.read()
                raw = snapshot.docs.get(service_id)
                if raw is None and service_id != DEFAULT:
                    raise ServiceNotFound(f"There is no service {_target(service_id)}.")
                record = json.loads(raw) if raw else {"created": self._now(), "overrides": {}}
                overrides = document.merge(record.get("overrides", {}), patch)
                document.build(self.base, service_id, overrides, self.secret)
                changed[:] = document.changed_fields(record.get("overrides", {}), overrides)
                record = {**record, "overrides": overrides, "updated": self._now()}
                if self.store.put(service_id, raw, record):
                    break
            else:
                raise ConcurrentChange("The service kept changing meanwhile; retry.")
        return self.show(service_id)

    def delete(self, actor: str, service_id: str) -> None:
        with self._audited(actor, "service.delete", _target(service_id)):
            if service_id == DEFAULT:
                raise EnvironmentManaged("The default service is the environment's "
                                         "configuration; it cannot be deleted (its stored "
                                         "overrides can be removed with PATCH and null).")
            for _ in range(TRIES):
                snapshot = self.store.read()
                raw = snapshot.docs.get(service_id)
                if raw is None:
                    raise ServiceNotFound(f"There is no service {_target(service_id)}.")
                hashes = [digest for digest, raw_key in snapshot.keys.items()
                          if _service_of(raw_key) == service_id]
                if self.store.put(service_id, raw, None, hashes):
                    break
            else:
                raise ConcurrentChange("The service kept changing meanwhile; retry.")

    def create_key(self, actor: str, service_id: str, body: Any) -> dict[str, Any]:
        key_id = new_key_id()
        with self._audited(actor, "service.key_create", f"{_target(service_id)}/{key_id}"):
            view = self._view()
            self._known(view, service_id)
            name = _key_name(body)
            taken = {entry["name"] for entry in self._keys(view, service_id)}
            if name in taken:
                raise ValidationFailed("Some fields are invalid.", errors={
                    "name": [f"this service already has a key named {name!r}"]})
            key = new_key()
            while self._clashes(key):  # 256 random bits: never; but a runtime key must
                key = new_key()        # never be an admin key, so it is said, and kept
            record = KeyRecord(key_id, service_id, name, self._now(), key[:7] + "…")
            if not self.store.add_key(service_id, key_hash(self.secret, key), record.record(),
                                      service_must_exist=service_id != DEFAULT):
                raise ServiceNotFound(f"There is no service {_target(service_id)}.")
        return {**record.public(), "key": key, "service_id": service_id}

    def revoke_key(self, actor: str, service_id: str, key_id: str) -> None:
        with self._audited(actor, "service.key_revoke", f"{_target(service_id)}/"
                                                        f"{_target(key_id)}"):
            view = self._view()
            self._known(view, service_id)
            if service_id == DEFAULT and key_id.removeprefix("env:") in self.env_keys:
                raise EnvironmentManaged("This key is in OTP_API_KEYS: remove it there (and "
                                         "restart) to revoke it.")
            found = [digest for digest, key in view.keys.items()
                     if key.service == service_id and key.key_id == key_id]
            if not found or not self.store.revoke(found[0]):
                raise KeyNotFound("This service has no key with this id.")

    # -- helpers --------------------------------------------------------------------------
    def _view(self) -> View:
        return build_view(self.store.read(), self.base, self.secret)

    def _known(self, view: View, service_id: str) -> None:
        if service_id not in view.tenants:
            raise ServiceNotFound(f"There is no service {_target(service_id)}.")

    def _keys(self, view: View, service_id: str) -> list[dict[str, Any]]:
        listed = ([environment_key(name) for name in self.env_keys]
                  if service_id == DEFAULT else [])
        runtime = sorted((key for key in view.keys.values() if key.service == service_id),
                         key=lambda key: (key.created, key.key_id))
        return listed + [key.public() for key in runtime]

    def _public(self, view: View, service_id: str) -> dict[str, Any]:
        tenant, record = view.tenants[service_id], view.records.get(service_id, {})
        return {"id": service_id, "default": service_id == DEFAULT,
                "twilio_sid": tenant.twilio_sid, "created": record.get("created"),
                "updated": record.get("updated"), **document.effective(tenant),
                "overrides": record.get("overrides", {}),
                "keys": len(self._keys(view, service_id))}

    def _clashes(self, key: str) -> bool:
        others = [*self.admin_keys.values(), *self.env_keys.values()]
        return any(hmac.compare_digest(key.encode(), other.encode()) for other in others)

    def _now(self) -> str:
        return rfc3339(int(self.clock() * 1000))

    @contextmanager
    def _audited(self, actor: str, action: str, target: str) -> Iterator[list[str]]:
        """Fail closed (no audit, no change), then record the outcome and the fields."""
        self.audit.ready()
        changed: list[str] = []
        try:
            yield changed
        except ServiceError as e:
            self.audit.record(actor, action, target, e.code, changed=changed)
            raise
        except Exception:
            self.audit.record(actor, action, target, "internal_error", changed=changed)
            raise
        self.audit.record(actor, action, target, "ok", changed=changed)
        self.on_change()


def _key_name(body: Any) -> str:
    if not isinstance(body, dict):
        raise ValidationFailed("A key is {\"name\": …}.",
                               errors={"_schema": ["must be a JSON object"]})
    unknown = sorted(set(body) - {"name"})
    if unknown:
        raise ValidationFailed("A key is {\"name\": …} and nothing else.",
                               errors={name: ["Unknown field."] for name in unknown})
    name = body.get("name")
    if not isinstance(name, str) or not KEY_NAME.match(name):
        raise ValidationFailed("Some fields are invalid.", errors={"name": [
            "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"]})
    if name.startswith("sv_"):  # a default-service key's name is its owner: never a service's
        raise ValidationFailed("Some fields are invalid.", errors={"name": [
            "must not start with sv_ (the form of service ids)"]})
    return name


def _service_of(raw_key: str) -> str | None:
    try:
        return json.loads(raw_key).get("service")
    except (ValueError, AttributeError):
        return None


def _target(value: str) -> str:
    """An id as the audit log shows it: only well-formed ids, never what a caller typed."""
    well_formed = (value == DEFAULT or document.ID_PATTERN.match(value) or KEY_ID.match(value)
                   or value.startswith("env:") and KEY_NAME.match(value[4:]))
    return value if well_formed else "(malformed id)"
