"""The shape of a service document: every field of contract §7 and §8 by its JSON name,
unknown fields refused. Values are judged afterwards by the environment's own rules
(:func:`service.tenants.document.build`); only what those rules cannot see (types of
lists and maps, lengths) is checked here. No Flask here.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from service.verification.errors import ValidationFailed
from service.verification.messages import LOCALE_PATTERN

# contract §8: the event types a webhook may ask for (none given: all of them)
EVENT_TYPES = (
    "verification.started", "verification.resent", "verification.approved",
    "verification.canceled", "verification.expired", "verification.max_attempts_reached",
    "delivery.delivered", "delivery.failed", "delivery.buffered", "phone.locked",
    "budget.breaker_tripped",
)
_TEST_PHONE = re.compile(r"\A\+[1-9][0-9]{6,14}\Z")  # as OTP_TEST_NUMBERS
_TEST_CODE = re.compile(r"\A[A-Za-z0-9]{4,12}\Z")


class _Strict(Schema):
    class Meta:
        unknown = RAISE


def _limit_field() -> fields.Field:
    # the notation is the Limits rule's to judge; here only its shape
    return fields.String(allow_none=True, validate=validate.Length(1, 200))


class _LimitsSchema(_Strict):
    start_per_phone = _limit_field()
    check_per_phone = _limit_field()
    start_per_end_user_ip = _limit_field()
    check_per_end_user_ip = _limit_field()
    start_per_end_user = _limit_field()


class _BudgetsSchema(_Strict):
    per_prefix = _limit_field()
    per_country = _limit_field()
    total = _limit_field()


class _TestNumberSchema(_Strict):
    phone = fields.String(required=True, validate=validate.Regexp(_TEST_PHONE))
    code = fields.String(required=True, validate=validate.Regexp(_TEST_CODE))
    expires = fields.Date(required=True)


def _value() -> fields.Field:
    """A scalar whose kind and range the Policy's rule checks (true is not 1 there)."""
    return fields.Raw(allow_none=True)


class ServiceSchema(_Strict):
    """Every field of a service document; null in a PATCH removes the override."""

    name = fields.String(allow_none=True, validate=validate.Length(1, 64))
    friendly_name = fields.Raw(allow_none=True)
    originator = fields.String(allow_none=True, validate=validate.Length(1, 16))
    code_mask = fields.String(allow_none=True, validate=validate.Length(1, 16))
    validity_minutes = _value()
    max_attempts = _value()
    resend_cooldown = _value()
    max_sends = _value()
    allowed_countries = fields.List(fields.String(validate=validate.Length(2, 2)),
                                    allow_none=True, validate=validate.Length(max=250))
    allow_voip = _value()
    templates = fields.Dict(keys=fields.String(validate=validate.Regexp(LOCALE_PATTERN)),
                            values=fields.String(validate=validate.Length(1, 640)),
                            allow_none=True, validate=validate.Length(max=50))
    limits = fields.Nested(_LimitsSchema, allow_none=True)
    budgets = fields.Nested(_BudgetsSchema, allow_none=True)
    safe_list = fields.List(fields.String(validate=validate.Length(1, 16)), allow_none=True,
                            validate=validate.Length(max=1000))
    test_numbers = fields.List(fields.Nested(_TestNumberSchema), allow_none=True,
                               validate=validate.Length(max=100))
    require_end_user_ip = _value()
    sms_enabled = _value()
    webhook_url = fields.String(allow_none=True, validate=validate.Length(1, 2048))
    webhook_events = fields.List(fields.String(validate=validate.OneOf(EVENT_TYPES)),
                                 allow_none=True, validate=validate.Length(1, len(EVENT_TYPES)))


SCHEMA = ServiceSchema()


def load(body: Any) -> dict[str, Any]:
    """The body's shape checked (unknown fields refused), as JSON-able overrides."""
    if not isinstance(body, dict):
        raise ValidationFailed("A service is a JSON object.",
                               errors={"_schema": ["must be a JSON object"]})
    try:
        SCHEMA.load(body)
    except ValidationError as e:
        raise ValidationFailed("Some fields are missing or invalid.",
                               errors=_flat(e.messages)) from None
    return body  # JSON as given (dates stay text): stored and shown as sent


def _flat(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested messages as :func:`_add` names them."""
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return {prefix or "_schema": messages}
    if not isinstance(messages, dict):
        return {prefix or "_schema": [str(messages)]}
    flat: dict[str, list[str]] = {}
    for name, inner in messages.items():
        flat.update(_flat(inner, f"{prefix}.{name}" if prefix else str(name)))
    return flat
