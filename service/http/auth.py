"""Bearer keys for clients and admins, compared in constant time."""

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


def client_key_name(presented: str) -> str | None:
    """The name of the client key presented (the Twilio layer's Basic password), or None."""
    return _match(presented, services().settings.keys.clients)


def _presented_key() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send 'Authorization: Bearer <key>'.")
    return token.strip()


def _require(role: str) -> str:
    keys = services().settings.keys
    key = _presented_key()
    own, other = ((keys.clients, keys.admins) if role == "client"
                  else (keys.admins, keys.clients))
    name = _match(key, own)
    if name is not None:
        return name
    if _match(key, other) is not None:
        raise Forbidden(f"This endpoint needs {'an admin' if role == 'admin' else 'a client'} key.")
    raise Unauthorized("The API key is not known.")


def client_required(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        g.client = _require("client")
        # issue 17: the key's service (tenant); until managed services exist, every client
        # key is one of the environment's, so the service "default"
        g.tenant = services().default_tenant
        return view(*args, **kwargs)

    return wrapper


def admin_required(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        g.admin = _require("admin")
        return view(*args, **kwargs)

    return wrapper
