"""Bearer keys for clients and admins.

Admin keys are the environment's (OTP_ADMIN_KEYS) alone. A client key is one of
OTP_API_KEYS (the service ``default``; each compared in constant time) or a runtime key of
a managed service, found through the per-process services cache without a round trip
(:meth:`service.tenants.Registry.authenticate`, which also says why a hash lookup is safe).
"""

from __future__ import annotations

import functools
import hmac

from flask import g, request

from service.errors import ServiceError
from service.http.context import services


class Unauthorized(ServiceError):
    status, code, title = 401, "unauthorized", "Missing or unknown API key"

    def __init__(self, detail: str):
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="aspsms-verify"'})


class Forbidden(ServiceError):
    status, code, title = 403, "forbidden", "This key may not use this endpoint"


def _match(presented: str, keys: dict[str, str]) -> str | None:
    """The key's name; every key is compared so timing does not tell which one matched."""
    found = None
    for name, key in keys.items():
        if hmac.compare_digest(presented.encode(), key.encode()):
            found = name
    return found


def admin_key_name(presented: str) -> str | None:
    """The name of the admin key presented (the web console's sign-in form), or None."""
    return _match(presented, services().settings.keys.admins)


def _presented_key() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send 'Authorization: Bearer <key>'.")
    return token.strip()


def _require_admin() -> str:
    key = _presented_key()
    name = _match(key, services().settings.keys.admins)
    if name is not None:
        return name
    try:
        client = services().tenants.authenticate(key)
    except ServiceError:  # a runtime key while the cache is stale: still no admin key
        client = None
    if client is not None:
        raise Forbidden("This endpoint needs an admin key.")
    raise Unauthorized("The API key is not known.")


def _client():
    """The client key's service, owner and name; refused like any unknown key otherwise."""
    key = _presented_key()
    found = services().tenants.authenticate(key)
    if found is not None:
        return found
    if _match(key, services().settings.keys.admins) is not None:
        raise Forbidden("This endpoint needs a client key.")
    raise Unauthorized("The API key is not known.")


def client_required(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        found = _client()
        # issue 17: the key's service (tenant); the domain's owner of verifications is the
        # key's name for the default service, the service's id for a managed one
        g.tenant, g.client, g.key_name = found.tenant, found.owner, found.key_name
        return view(*args, **kwargs)

    return wrapper


def admin_required(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        g.admin = _require_admin()
        return view(*args, **kwargs)

    return wrapper
