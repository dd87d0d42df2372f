"""Request schemas: unknown fields, wrong types and oversized values are refused (422)."""

from __future__ import annotations

import json
from typing import Any

from flask import request
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from service.admin.audit import CURSOR
from service.errors import ServiceError
from service.verification.end_users import MAX_ID_LENGTH, ip_problem
from service.verification.errors import ValidationFailed
from service.verification.messages import LOCALE_PATTERN


class MalformedJson(ServiceError):
    status, code, title = 400, "malformed_json", "Malformed JSON"


class UnsupportedMediaType(ServiceError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class StrictBoolean(fields.Boolean):
    """Only JSON true/false: "yes" or 1 is a type error, not a guess."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class StrictInteger(fields.Integer):
    """Only JSON integers: true, 5.0 or "5" is a type error."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


def _end_user_ip(value: str) -> None:
    problem = ip_problem(value)
    if problem:
        raise ValidationError(f"Invalid: {problem}.")


class EndUserFields(StrictSchema):
    """Whom a start or check is for, as the calling backend says (issue 17)."""

    end_user_ip = fields.String(validate=[validate.Length(2, 64), _end_user_ip])
    end_user_id = fields.String(validate=validate.Length(1, MAX_ID_LENGTH))


class StartSchema(EndUserFields):
    phone = fields.String(required=True, validate=validate.Length(1, 32))
    locale = fields.String(validate=[validate.Length(2, 35), validate.Regexp(LOCALE_PATTERN)])
    code_mask = fields.String(validate=validate.Length(1, 16))
    validity_minutes = StrictInteger(validate=validate.Range(1, 1440))
    case_sensitive = StrictBoolean()
    reference = fields.String(validate=validate.Length(max=128))


class CheckSchema(EndUserFields):
    code = fields.String(required=True, validate=validate.Length(1, 32))
    id = fields.String(validate=validate.Length(1, 64))
    phone = fields.String(validate=validate.Length(1, 32))

    @validates_schema
    def one_target(self, data, **kwargs):
        if ("id" in data) == ("phone" in data):
            raise ValidationError("Give either id or phone.", "_schema")


class UnlockSchema(StrictSchema):
    unlock_code = fields.String(required=True, validate=[validate.Length(1, 32),
                                                         validate.Regexp(r"\A[0-9A-Za-z]+\Z")])


class LockoutSchema(StrictSchema):
    phone = fields.String(required=True, validate=validate.Length(1, 32))


class AuditQuery(StrictSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    before = fields.String(validate=validate.Regexp(CURSOR))


START = StartSchema()
CHECK = CheckSchema()
EMPTY = StrictSchema()
# the admin API's and the console's (one schema for both faces of the admin side)
UNLOCK = UnlockSchema()
LOCKOUT = LockoutSchema()
LOOKUP_QUERY = LockoutSchema()  # the support lookup's query: the one phone field
AUDIT_QUERY = AuditQuery()


NOT_UNICODE = "Not valid Unicode text (a lone UTF-16 surrogate escape such as \\ud800)."


def _is_unicode(value: Any) -> bool:
    """Whether every string in a JSON value (names included) is Unicode text. JSON may
    escape half a UTF-16 pair ("\\ud800"), which decodes to a lone surrogate: no encoder
    (Redis, the gateway, a log line) takes it, so it is refused here, once, for every field."""
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


def _printable(name: str) -> str:
    return name.encode(errors="backslashreplace").decode()


def load_json(schema: Schema, *, optional: bool = False) -> dict[str, Any]:
    """The request body validated by ``schema``, or the problem that says why not."""
    raw = request.get_data(cache=True)
    if optional and not raw:
        return {}
    if not request.is_json:
        raise UnsupportedMediaType("Send the body as application/json.")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise MalformedJson("The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.",
                               errors={"_schema": ["The body must be a JSON object."]})
    invalid = {_printable(name): [NOT_UNICODE] for name, value in data.items()
               if not _is_unicode(name) or not _is_unicode(value)}
    if invalid:
        raise ValidationFailed("Some fields are not valid Unicode text.", errors=invalid)
    try:
        return schema.load(data)
    except ValidationError as e:
        raise ValidationFailed("Some fields are missing or invalid.", errors=e.messages) from None
