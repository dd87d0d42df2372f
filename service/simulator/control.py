"""The /_sim/ endpoints: what tests use to read the simulator and make it misbehave."""

import json
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qs


def handle(sim, method: str, path: str, query: str, raw: bytes) -> tuple[int, object, dict]:
    """(HTTP status, JSON payload, extra headers) for a control request."""
    methods = _ROUTES.get(path.rstrip("/"))
    if methods is None:
        return 404, {"error": f"no control endpoint {path}"}, {}
    route = methods.get(method)
    if route is None:
        allow = ", ".join(sorted(methods))
        return 405, {"error": f"{method} not allowed on {path}"}, {"Allow": allow}
    try:
        body = _json_object(raw)
        return 200, route(sim, body, parse_qs(query)), {}
    except ValueError as e:
        return 400, {"error": str(e)}, {}


def _json_object(raw: bytes) -> dict:
    # An empty body means "no settings", so `POST /_sim/reset` works without one.
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except RecursionError as e:
        raise ValueError("the body is nested too deeply") from e
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def _list_messages(sim, body, query):
    recipient = query.get("recipient", [None])[0]
    if recipient and recipient.startswith(" "):
        recipient = "+" + recipient[1:]  # an unencoded "+" in a query string arrives as a space
    return sim.messages(recipient)


def _clear_messages(sim, body, query):
    return {"cleared": sim.clear_messages()}


def _get_fault(sim, body, query):
    return {"fault": sim.fault_json()}


def _set_fault(sim, body, query):
    return {"fault": sim.set_fault(body)}


def _clear_faults(sim, body, query):
    sim.clear_faults()
    return {"fault": None}


def _stats(sim, body, query):
    return sim.stats()


def _configure_delivery(sim, body, query):
    return sim.configure_delivery(body)


def _reset(sim, body, query):
    if set(body) - {"credits"}:
        raise ValueError("reset takes only an optional credits balance")
    credits = body.get("credits")
    if credits is not None:
        credits = _amount(credits)
    sim.reset(credits)
    return sim.stats()


def _advance_clock(sim, body, query):
    seconds = body.get("advance")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise ValueError("advance must be a number of seconds ≥ 0")
    return {"offset": sim.advance_clock(seconds)}


def _amount(value) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("credits must be a number")
    try:
        amount = Decimal(str(value))
    except InvalidOperation as e:
        raise ValueError("credits must be a number") from e
    if not amount.is_finite() or amount < 0:
        raise ValueError("credits must be a finite number ≥ 0")
    return amount


_ROUTES = {
    "/_sim/messages": {"GET": _list_messages, "DELETE": _clear_messages},
    "/_sim/faults": {"GET": _get_fault, "POST": _set_fault, "DELETE": _clear_faults},
    "/_sim/stats": {"GET": _stats},
    "/_sim/delivery": {"POST": _configure_delivery},
    "/_sim/reset": {"POST": _reset},
    "/_sim/clock": {"POST": _advance_clock},
}
