"""The console's services pages: the list, one service's effective policy and keys, the edit
form for its common fields, key creation (the secret shown once) and revocation.

Every change goes through :class:`service.tenants.ServiceAdmin`, as the API's do, so it is
validated and audited the same way under the signed-in admin's name.
"""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, render_template, request, url_for

from service.http.console.base import Message, bp
from service.http.console.pages import attempt
from service.http.console.signing import signed_in
from service.http.context import services
from service.http.services import originator_status
from service.tenants.document import BUDGET_FIELDS, LIMIT_FIELDS
from service.tenants.manage import ServiceAdmin

# the edit form's text fields: (JSON path, label); an empty one removes the override
TEXT_FIELDS = [("name", "Name"), ("friendly_name", "Friendly name (in texts as {service})"),
               ("originator", "Originator (sender id)")]
LIMITS = [("limits", name) for name in LIMIT_FIELDS] + [("budgets", n) for n in BUDGET_FIELDS]


def _manage() -> ServiceAdmin:
    return services().service_admin


@bp.get("/console/services")
@signed_in
def services_list():
    """Every service, the default first."""
    return render_template("console/services.html", services=_manage().list())


@bp.post("/console/services")
@signed_in
def service_create():
    name = request.form.get("name", "").strip()
    created, error = attempt(lambda: _manage().create(g.admin, {"name": name} if name else {}))
    if created is None:
        return render_template("console/services.html", services=_manage().list(),
                               messages=[error]), error.status
    flash(f"Service {created['name']} created.", "ok")
    return redirect(url_for("console.service_detail", service_id=created["id"]), 303)


@bp.get("/console/services/<service_id>")
@signed_in
def service_detail(service_id: str):
    """A service's effective policy (overrides marked) and its keys."""
    return _detail(service_id)


@bp.route("/console/services/<service_id>/edit", methods=["GET", "POST"])
@signed_in
def service_edit(service_id: str):
    """The common fields; an empty field is the deployment's default again."""
    service = _manage().show(service_id)
    if request.method == "GET":
        return render_template("console/service_edit.html", service=service,
                               text_fields=TEXT_FIELDS, limit_fields=LIMITS)
    patch = _patch(request.form)
    updated, error = attempt(lambda: _manage().update(g.admin, service_id, patch))
    if updated is None:
        return render_template("console/service_edit.html", service=service,
                               text_fields=TEXT_FIELDS, limit_fields=LIMITS,
                               messages=[error], typed=request.form), error.status
    flash("Saved: in force on every instance within a second.", "ok")
    return redirect(url_for("console.service_detail", service_id=service_id), 303)


@bp.post("/console/services/<service_id>/delete")
@signed_in
def service_delete(service_id: str):
    done, error = attempt(lambda: _manage().delete(g.admin, service_id) or True)
    if done is None:
        return _detail(service_id, [error], error.status)
    flash("Service deleted; its keys are refused everywhere within a second.", "ok")
    return redirect(url_for("console.services_list"), 303)


@bp.post("/console/services/<service_id>/keys")
@signed_in
def service_key_create(service_id: str):
    """A new key, shown on this answer only (never in a redirect, a flash or a log)."""
    name = request.form.get("name", "").strip()
    made, error = attempt(lambda: _manage().create_key(g.admin, service_id, {"name": name}))
    if made is None:
        return _detail(service_id, [error], error.status)
    shown = Message("ok", f"Key {made['name']} created. Copy it now: it is not shown again.")
    return _detail(service_id, [shown], new_key=made)


@bp.post("/console/services/<service_id>/keys/<key_id>/revoke")
@signed_in
def service_key_revoke(service_id: str, key_id: str):
    done, error = attempt(lambda: _manage().revoke_key(g.admin, service_id, key_id) or True)
    if done is None:
        return _detail(service_id, [error], error.status)
    flash("Key revoked: refused on every instance within a second.", "ok")
    return redirect(url_for("console.service_detail", service_id=service_id), 303)


def _detail(service_id: str, messages=(), status: int = 200, new_key=None):
    manage = _manage()
    service = manage.show(service_id)
    service["originator_status"] = originator_status(service, ask_gateway=False)
    return render_template("console/service.html", service=service,
                           keys=manage.keys(service_id), messages=list(messages),
                           new_key=new_key), status


def _patch(form) -> dict[str, Any]:
    """The form as a PATCH: each field's text, or null (back to the default) when empty."""
    patch: dict[str, Any] = {name: form.get(name, "").strip() or None
                             for name, _ in TEXT_FIELDS}
    for group, name in LIMITS:
        patch.setdefault(group, {})[name] = form.get(f"{group}.{name}", "").strip() or None
    safe = [line.strip() for line in form.get("safe_list", "").splitlines() if line.strip()]
    patch["safe_list"] = safe or None
    patch["sms_enabled"] = {"on": True, "off": False}.get(form.get("sms_enabled", ""))
    return patch
