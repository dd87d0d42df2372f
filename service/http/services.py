"""Admin API for services and their keys (contract §7): thin views over
:class:`service.tenants.ServiceAdmin`, which validates, stores and audits.

Registered under the admin blueprint, so every route needs an admin key like the others.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify
from marshmallow import INCLUDE, Schema

from service.admin.originators import configured_originator_status, originator_kind
from service.gateway import GatewayError
from service.http import schemas
from service.http.auth import admin_required
from service.http.context import services
from service.http.webhooks import webhook_admin
from service.tenants.manage import ServiceAdmin

bp = Blueprint("services", __name__, url_prefix="/services")


class _AnyObject(Schema):
    """Any JSON object: its fields are the registry's to judge (and to audit a refusal)."""

    class Meta:
        unknown = INCLUDE


ANY_OBJECT = _AnyObject()


def _manage() -> ServiceAdmin:
    return services().service_admin


def _body() -> Any:
    """The JSON body, refused as every admin body is (media type, JSON, Unicode); the
    registry's schema then judges its fields, audited."""
    return schemas.load_json(ANY_OBJECT)


@bp.post("")
@admin_required
def create_service():
    """A new service; fields left out are the deployment's defaults."""
    created = _manage().create(g.admin, _body())
    return jsonify({**created, "originator_status": originator_status(created, False),
                    **_first_secret(created)}), 201


def _first_secret(entry: dict[str, Any]) -> dict[str, str]:
    """A webhook's signing secret is made with the webhook (contract §8): the answer that
    first gives a service a ``webhook_url`` shows it, this once, as ``webhook_secret``
    (audited as a rotation); later ones come from POST …/webhook-secret."""
    if not entry.get("webhook_url") or services().webhooks.secrets.signing(entry["id"]):
        return {}
    return {"webhook_secret": webhook_admin().rotate_secret(g.admin, entry["id"])}


@bp.get("")
@admin_required
def list_services():
    """Every service, the default first, with its effective values and its overrides."""
    listed = _manage().list()
    return jsonify(services=[{**entry, "originator_status": originator_status(entry, False)}
                             for entry in listed])


@bp.get("/<service_id>")
@admin_required
def read_service(service_id: str):
    entry = _manage().show(service_id)
    return jsonify({**entry, "originator_status": originator_status(entry, True)})


@bp.patch("/<service_id>")
@admin_required
def update_service(service_id: str):
    """Set fields (null: back to the deployment's default); effective everywhere in 1 s."""
    updated = _manage().update(g.admin, service_id, _body())
    return jsonify({**updated, "originator_status": originator_status(updated, False),
                    **_first_secret(updated)})


@bp.delete("/<service_id>")
@admin_required
def delete_service(service_id: str):
    """A managed service and its keys; the default service is the environment's (409)."""
    _manage().delete(g.admin, service_id)
    return _no_content()


@bp.post("/<service_id>/keys")
@admin_required
def create_key(service_id: str):
    """A runtime API key: the key is in this answer only, the store keeps a hash."""
    return jsonify(_manage().create_key(g.admin, service_id, _body())), 201


@bp.get("/<service_id>/keys")
@admin_required
def list_keys(service_id: str):
    """The service's keys, never a secret (the default service's OTP_API_KEYS by name)."""
    return jsonify(keys=_manage().keys(service_id))


@bp.delete("/<service_id>/keys/<key_id>")
@admin_required
def revoke_key(service_id: str, key_id: str):
    """Refused on every instance within 1 s."""
    _manage().revoke_key(g.admin, service_id, key_id)
    return _no_content()


def _no_content() -> Response:
    """204 with no body and so no content type (Flask's default would say text/html)."""
    response = Response(status=204)
    del response.headers["Content-Type"]
    return response


def originator_status(entry: dict, ask_gateway: bool) -> dict[str, Any]:
    """An alphanumeric sender id needs no unlocking (no gateway call); a numeric one is asked
    at the gateway (a read, not audited, as the console's checks) for one service's page,
    and left ``unchecked`` in lists and when the gateway does not answer."""
    originator = entry["originator"]
    kind = originator_kind(originator)
    if kind == "numeric" and not ask_gateway:
        return {"originator": originator, "kind": kind, "state": "unchecked",
                "authorized": None}
    try:  # alphanumeric: judged locally, as the configured sender id is
        status = configured_originator_status(services().gateway, originator)
    except GatewayError:
        return {"originator": originator, "kind": kind, "state": "unchecked",
                "authorized": None}
    return status.public()
