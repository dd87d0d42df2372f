"""JSON Schemas of the Twilio Verify v2 resources the /v2 routes answer with.

Written for these tests from the facts of Twilio's published description
(twilio/twilio-oai, spec/yaml/twilio_verify_v2.yaml: ``verify.v2.service``,
``verify.v2.service.verification``, ``verify.v2.service.verification_check`` and the
error body of its 4xx answers): every property, its type, whether it may be null, the sid
patterns and the enums. Stricter than Twilio's in two ways that keep the answers honest:
every property must be present (Twilio's answers carry them all), and no other may be.
"""

from __future__ import annotations

from typing import Any

import jsonschema


def _sid(prefix: str) -> dict[str, Any]:
    # Twilio's pattern allows either case; ours issues lower-case hex only
    return {"type": ["string", "null"], "pattern": f"^{prefix}[0-9a-f]{{32}}$"}


def _nullable(kind: str, **more: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **more}


DATE_TIME = _nullable("string", pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
URI = _nullable("string", pattern=r"^https?://")
ANY = {}  # Twilio's "nullable: true" without a type (objects it describes nowhere)
CHANNELS = ["sms", "call", "email", "whatsapp", "sna"]  # verification_enum_channel
# the description of verification_enum_status lists every status a verification shows
STATUSES = ["pending", "approved", "canceled", "max_attempts_reached", "deleted", "failed",
            "expired"]


def _strict(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": sorted(properties),
            "additionalProperties": False}


SERVICE = _strict({
    "sid": _sid("VA"), "account_sid": _sid("AC"), "friendly_name": _nullable("string"),
    "code_length": {"type": "integer"}, "lookup_enabled": _nullable("boolean"),
    "psd2_enabled": _nullable("boolean"), "skip_sms_to_landlines": _nullable("boolean"),
    "dtmf_input_required": _nullable("boolean"), "tts_name": _nullable("string"),
    "do_not_share_warning_enabled": _nullable("boolean"),
    "custom_code_enabled": _nullable("boolean"), "push": ANY, "totp": ANY,
    "default_template_sid": _sid("HJ"), "whatsapp": ANY, "passkeys": ANY,
    "verify_event_subscription_enabled": _nullable("boolean"), "date_created": DATE_TIME,
    "date_updated": DATE_TIME, "url": URI,
    "links": _nullable("object", additionalProperties={"type": "string",
                                                        "pattern": r"^https?://"}),
})

_VERIFICATION_COMMON = {
    "sid": _sid("VE"), "service_sid": _sid("VA"), "account_sid": _sid("AC"),
    "to": _nullable("string"), "channel": {"enum": CHANNELS},
    "status": _nullable("string", enum=[*STATUSES, None]), "valid": _nullable("boolean"),
    "amount": _nullable("string"), "payee": _nullable("string"), "date_created": DATE_TIME,
    "date_updated": DATE_TIME,
}

VERIFICATION = _strict({
    **_VERIFICATION_COMMON, "lookup": ANY, "sna": ANY, "url": URI,
    "send_code_attempts": _nullable("array", items={
        "type": "object", "required": ["attempt_sid", "channel", "time"],
        "properties": {"attempt_sid": _sid("VL"), "channel": {"type": "string"},
                       "time": DATE_TIME}}),
})

VERIFICATION_CHECK = _strict({**_VERIFICATION_COMMON,
                              "sna_attempts_error_codes": _nullable("array")})

ERROR = {
    "type": "object", "required": ["code", "message", "more_info", "status"],
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"},
                   "more_info": {"type": "string", "pattern": "^https://"},
                   "status": {"type": "integer"}, "details": {"type": "object"}},
    "additionalProperties": False,
}


def validate(instance: Any, schema: dict[str, Any]) -> Any:
    jsonschema.Draft202012Validator(schema).validate(instance)
    return instance
