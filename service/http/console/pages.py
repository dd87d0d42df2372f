"""The console's pages: overview, the sender-id unlock flow, lockouts, the audit log, and in
sandbox mode the messages the simulator received."""

from __future__ import annotations

from flask import abort, g, render_template, request
from marshmallow import ValidationError

from service.admin.originators import OriginatorStatus
from service.errors import ServiceError
from service.gateway import OriginatorState
from service.http import schemas
from service.http.console.base import Message, bp, ops, settings
from service.http.console.signing import signed_in
from service.http.context import services

AUDIT_PAGE_SIZE = 50

# What each gateway answer means for the admin, and what to do next.
STATE_TEXT = {
    OriginatorState.NO_AUTHORIZATION_NEEDED: ("ok", "{} is an alphanumeric sender id: it needs "
                                                    "no unlocking."),
    OriginatorState.AUTHORIZED: ("ok", "{} is authorized: SMS can be sent with it as sender."),
    OriginatorState.PENDING: ("warn", "An unlock code has been texted to {} and not used yet: "
                                      "enter it (step 3), or send a new one."),
    OriginatorState.NOT_AUTHORIZED: ("warn", "{} is not authorized: the gateway refuses SMS from "
                                             "it until it is unlocked. Send it an unlock code "
                                             "(step 2)."),
}
SENT_TEXT = "An unlock code is on its way to {} by SMS: enter it below when it arrives (step 3)."
# The sandbox texts nobody: the simulator keeps the message, and the Messages page shows it.
SANDBOX_SENT_TEXT = ("The sandbox's simulator received an unlock code for {} (nothing is "
                     "texted in sandbox mode): read it on the Messages page, then enter it "
                     "below (step 3).")
HINTS = {
    "upstream_auth_failed": "Check ASPSMS_USERKEY and ASPSMS_PASSWORD.",
    "upstream_insufficient_credits": "Buy credits in the ASPSMS customer area.",
    "upstream_timeout": "Nothing is known about the outcome: check the state before retrying.",
}


@bp.get("/")
@signed_in
def overview():
    """Credits and the configured sender id."""
    credits, credits_error = attempt(lambda: ops().account_credits(g.admin, record=False))
    status, status_error = attempt(lambda: ops().configured_originator_status(g.admin,
                                                                             record=False))
    return render_template("console/overview.html", credits=credits, status=status,
                           state=_state_message(status) if status else status_error,
                           credits_error=credits_error)


@bp.get("/console/originators")
@signed_in
def originator():
    """Step 1 of the unlock flow: a sender id's state, and the step it needs next."""
    typed = request.args.get("originator", "").strip()
    if not typed:
        return render_template("console/originator.html", originator="", steps=())
    return _originator_page(typed, lambda: ops().originator_status(g.admin, typed,
                                                                   record=False))


@bp.post("/console/originators/unlock-code")
@signed_in
def send_unlock_code():
    """Step 2: have the gateway text an unlock code to the number."""
    typed = request.form.get("originator", "").strip()
    return _originator_page(typed, lambda: ops().request_unlock_code(g.admin, typed), sent=True)


@bp.post("/console/originators/unlock")
@signed_in
def unlock():
    """Step 3: unlock the number with the code texted to it."""
    typed = request.form.get("originator", "").strip()

    def action() -> OriginatorStatus:
        code = _load(schemas.UNLOCK, unlock_code=request.form.get("unlock_code", "").strip())
        return ops().unlock_originator(g.admin, typed, code["unlock_code"])

    return _originator_page(typed, action)


@bp.route("/console/lockouts", methods=["GET", "POST"])
@signed_in
def lockouts():
    """Lift a phone number's lock after too many wrong codes."""
    if request.method == "GET":
        return render_template("console/lockouts.html")

    def action() -> Message:
        phone = _load(schemas.LOCKOUT, phone=request.form.get("phone", "").strip())["phone"]
        result = ops().clear_lockout(g.admin, phone)
        if result["cleared"]:
            return Message("ok", f"Cleared: {result['phone']} can check codes again.")
        return Message("ok", f"{result['phone']} was not locked: nothing to clear.")

    message, error = attempt(action)
    shown = message or error
    return render_template("console/lockouts.html", messages=[shown]), shown.status


@bp.get("/console/audit")
@signed_in
def audit():
    """The audit log, newest first, a page at a time."""
    before = request.args.get("before") or None
    if before is not None:
        _load(schemas.AUDIT_QUERY, before=before)
    entries, cursor = ops().audit_page(g.admin, AUDIT_PAGE_SIZE, before, record=False)
    return render_template("console/audit.html", entries=entries, cursor=cursor,
                           first_page=before is None)


@bp.get("/console/messages")
@signed_in
def messages():
    """Sandbox only: the SMS the simulator received (codes and unlock codes), newest first."""
    if not settings().sandbox:
        abort(404)
    simulator = services().simulator
    return render_template("console/messages.html",
                           entries=list(reversed(simulator.state.messages())))


# -- helpers --------------------------------------------------------------------------------
def _originator_page(typed: str, action, *, sent: bool = False):
    status, error = attempt(action)
    if status is None:
        rejected = error.code == "unlock_code_rejected"
        steps = ("send", "enter") if rejected else ()
        return render_template("console/originator.html", originator=typed, messages=[error],
                               steps=steps), error.status
    message = _state_message(status)
    if sent and status.state is OriginatorState.PENDING:
        text = SANDBOX_SENT_TEXT if settings().sandbox else SENT_TEXT
        message = Message("ok", text.format(status.originator))
    steps = {OriginatorState.NOT_AUTHORIZED: ("send",),
             OriginatorState.PENDING: ("enter", "send")}.get(status.state, ())
    return render_template("console/originator.html", originator=typed, status=status,
                           messages=[message], steps=steps)


def _state_message(status: OriginatorStatus) -> Message:
    level, text = STATE_TEXT[status.state]
    return Message(level, text.format(status.originator), status.state.value)


def attempt(action):
    """``(result, None)``, or ``(None, message)`` for a refusal the page explains."""
    try:
        return action(), None
    except ServiceError as e:
        return None, explain(e)


def explain(e: ServiceError) -> Message:
    text = " ".join(part for part in (e.detail, HINTS.get(e.code, "")) if part)
    if "upstream_status_code" in e.extensions:
        text += f" (gateway status {e.extensions['upstream_status_code']})"
    return Message("error", text, e.code, e.status)


def _load(schema, **values) -> dict:
    """The API's own schema check, for a form."""
    try:
        return schema.load(values)
    except ValidationError as e:
        field, problems = next(iter(e.messages.items()))
        raise schemas.ValidationFailed(f"{field.replace('_', ' ')}: {' '.join(problems)}",
                                       errors=e.messages) from None
