"""Who calls /v2 and which of our services a ``VA`` sid names: HTTP Basic, as Twilio's.

The username is the deployment's account sid (``AC…``, derived from OTP_SECRET, shown at
GET /admin/twilio); the password is a key of ours: an admin key for the Services routes, a
client key of the service named in the path for its Verifications and checks (for which a
runtime key's id may stand as the username, as a Twilio API key sid does). A key of
another service is answered as Twilio answers an unknown service: 20404.
"""

from __future__ import annotations

import functools
import hmac

from flask import g, request

from service.http.auth import admin_key_name
from service.http.context import services
from service.http.twilio import params
from service.http.twilio.errors import TwilioError, not_found
from service.verification.tenant import Tenant, twilio_account_sid, twilio_service_sid


def account_sid() -> str:
    return twilio_account_sid(services().settings.secret)


def service_sid(tenant: Tenant) -> str:
    return tenant.twilio_sid or twilio_service_sid(services().settings.secret, tenant.id)


def tenant_for_sid(sid: str) -> Tenant | None:
    """The service a VA sid names (the registry's cache: no round trip)."""
    return services().tenants.by_twilio_sid(params.sid(sid))


def _unauthenticated(why: str) -> TwilioError:
    return TwilioError(401, 20003, f"Authenticate: {why}")


def _credentials() -> tuple[str, str]:
    credentials = request.authorization
    if credentials is None or credentials.type != "basic" or credentials.password is None:
        raise _unauthenticated("send HTTP Basic credentials (the account sid and a key).")
    return credentials.username or "", credentials.password


def _is_account(username: str) -> bool:
    return hmac.compare_digest(username.encode(), account_sid().encode())


def _password() -> str:
    """The Basic password, once the username is this deployment's account sid."""
    username, password = _credentials()
    if not _is_account(username):
        raise _unauthenticated("the username is not this deployment's account sid.")
    return password


def client_basic(view):
    """A client key of the service ``service_sid`` names: sets g.tenant, g.client, g.key_name
    as ``client_required`` does for /otp. The username is the account sid, or (Twilio's API
    key form, ``Client(key_id, key, account_sid)``) the presented runtime key's own id."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        username, password = _credentials()
        found = services().tenants.authenticate(password)
        if _is_account(username):
            if found is None:
                raise _unauthenticated("the password is not a client key.")
        elif found is None or not hmac.compare_digest(username.encode(), found.key_id.encode()):
            # the same words whether the password is a key: no oracle without the account sid
            raise _unauthenticated("the username is neither the account sid nor the key's id.")
        if not hmac.compare_digest(service_sid(found.tenant).encode(),
                                   params.sid(kwargs["service_sid"]).encode()):
            raise not_found()
        g.tenant, g.client, g.key_name = found.tenant, found.owner, found.key_name
        return view(*args, **kwargs)

    return wrapper


def admin_basic(view):
    """An admin key (the Services routes): sets g.admin to its name."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        name = admin_key_name(_password())
        if name is None:
            raise _unauthenticated("the password is not an admin key.")
        g.admin = name
        return view(*args, **kwargs)

    return wrapper
