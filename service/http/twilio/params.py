"""Twilio's form parameters for the routes served here, read into the contract's terms.

What we honour is translated; what Twilio has and we cannot honour is refused with Twilio's
code (another channel: 60223, a feature this service lacks: 60204), never ignored; a name
Twilio does not have either, a repeated parameter or a bad value is 60200.
"""

from __future__ import annotations

import ipaddress
import json
import re

from flask import request

from service.http.twilio.errors import TwilioError, invalid_parameter
from service.verification.messages import LOCALE_PATTERN

TWILIO_CHANNELS = {"call", "email", "whatsapp", "sna", "rcs", "auto"}  # not ours: only sms
VERIFICATION_SID = re.compile(r"\AVE[0-9a-fA-F]{32}\Z")
# Twilio's parameters of these routes that this service cannot honour, and why
UNSUPPORTED = {
    "CustomCode": "codes are made and checked by the SMS gateway",
    "CustomMessage": "texts are the service's templates",
    "Amount": "PSD2 (Amount, Payee) is not supported",
    "Payee": "PSD2 (Amount, Payee) is not supported",
    "SendDigits": "only the sms channel is supported",
    "ChannelConfiguration": "only the sms channel is supported",
    "AppHash": "no app hash is added to texts",
    "TemplateSid": "texts are the service's templates",
    "TemplateCustomSubstitutions": "texts are the service's templates",
    "Templates": "texts are the service's templates",
    "DeviceIp": "silent network auth is not supported",
    "EnableSnaClientToken": "silent network auth is not supported",
    "SnaClientToken": "silent network auth is not supported",
    "Tags": "tags are not stored",
}


def sid(value: str) -> str:
    """A sid as we issue it: Twilio's patterns (VA, VE) allow upper-case hex, ours are lower."""
    return value[:2] + value[2:].lower()


def _unsupported(name: str) -> TwilioError:
    return TwilioError(400, 60204, f"Service does not support this feature: {name} "
                                   f"({UNSUPPORTED[name]})")


def _form(allowed: set[str], required: set[str]) -> dict[str, str]:
    """The body's parameters, each given once, each one of ``allowed``."""
    data = request.form
    for name in data:
        if name in UNSUPPORTED:
            raise _unsupported(name)
        if name not in allowed:
            raise invalid_parameter(name, "not a parameter of this resource")
        if len(data.getlist(name)) > 1:
            raise invalid_parameter(name, "given more than once")
    form = {name: data[name] for name in data}
    for name in sorted(required - form.keys()):
        raise invalid_parameter(name, "required")
    return form


def _text(form: dict[str, str], name: str, longest: int) -> str:
    value = form[name]
    if not 1 <= len(value) <= longest:
        raise invalid_parameter(name, f"must be 1 to {longest} characters")
    return value


def _end_user_ip(raw: str) -> str:
    """RateLimits: a JSON object of Twilio's rate limit keys; only end_user_ip_address
    (which our *_per_end_user_ip limits count) is honoured."""
    try:
        keys = json.loads(raw)
    except ValueError:
        raise invalid_parameter("RateLimits", "not a JSON object") from None
    if not isinstance(keys, dict) or set(keys) != {"end_user_ip_address"}:
        raise invalid_parameter("RateLimits", "only end_user_ip_address is supported")
    try:
        return str(ipaddress.ip_address(keys["end_user_ip_address"]))
    except (ValueError, TypeError):
        raise invalid_parameter("RateLimits", "end_user_ip_address is no IP address") from None


def create_verification() -> dict[str, str]:
    """POST …/Verifications: the start's body in the contract's terms."""
    form = _form({"To", "Channel", "Locale", "CustomFriendlyName", "RateLimits", "RiskCheck"},
                 {"To", "Channel"})
    channel = form["Channel"]
    if channel in TWILIO_CHANNELS:
        raise TwilioError(400, 60223, f"Delivery channel disabled: {channel.upper()} "
                                      "(this service sends SMS only)")
    if channel != "sms":
        raise invalid_parameter("Channel", "must be sms")
    if form.get("RiskCheck", "enable") != "enable":  # fraud prevention cannot be switched off
        raise TwilioError(400, 60204, "Service does not support this feature: RiskCheck "
                                      "(limits and budgets always apply)")
    body = {"phone": _text(form, "To", 32)}
    if "Locale" in form:
        if not LOCALE_PATTERN.match(form["Locale"]):
            raise invalid_parameter("Locale", "not a locale such as en or de-CH")
        body["locale"] = form["Locale"]
    if "CustomFriendlyName" in form:
        body["friendly_name"] = _text(form, "CustomFriendlyName", 30)
    if "RateLimits" in form:
        body["end_user_ip"] = _end_user_ip(form["RateLimits"])
    return body


def create_verification_check() -> dict[str, str]:
    """POST …/VerificationCheck: the code, and the verification by sid or phone number."""
    form = _form({"Code", "To", "VerificationSid"}, {"Code"})
    body = {"code": _text(form, "Code", 32)}
    if ("To" in form) == ("VerificationSid" in form):
        raise invalid_parameter("To", "give either To or VerificationSid")
    if "To" in form:
        body["phone"] = _text(form, "To", 32)
    elif VERIFICATION_SID.match(form["VerificationSid"]):
        body["verification_sid"] = sid(form["VerificationSid"])
    else:
        raise invalid_parameter("VerificationSid", "not a VE sid")
    return body


def update_verification() -> None:
    """POST …/Verifications/{Sid}: only Status=canceled (approving needs custom codes)."""
    status = _form({"Status"}, {"Status"})["Status"]
    if status == "approved":
        raise TwilioError(400, 60204, "Service does not support this feature: Status=approved "
                                      "(only a right code approves)")
    if status != "canceled":
        raise invalid_parameter("Status", "must be canceled")


# CreateService's booleans: the one value each can have here (the other is refused, 60204)
SERVICE_FLAGS = {"LookupEnabled": False, "SkipSmsToLandlines": True, "DtmfInputRequired": False,
                 "DoNotShareWarningEnabled": False, "CustomCodeEnabled": False,
                 "Psd2Enabled": False, "VerifyEventSubscriptionEnabled": False}
SHORTEST_CODE, LONGEST_CODE = 6, 10  # ours (NIST's six digits) within Twilio's 4-10


def create_service() -> dict[str, str]:
    """POST /v2/Services: a service document of ours (name, friendly_name, code_mask)."""
    for name in request.form:  # Twilio's Push.*, Totp.*, Whatsapp.*, Passkeys.*, voice
        if "." in name or name in ("TtsName", "DefaultTemplateSid"):
            raise TwilioError(400, 60204, f"Service does not support this feature: {name}")
    form = _form({"FriendlyName", "CodeLength", *SERVICE_FLAGS}, {"FriendlyName"})
    friendly_name = _text(form, "FriendlyName", 30)
    body = {"name": friendly_name, "friendly_name": friendly_name}
    if "CodeLength" in form:
        length = form["CodeLength"]
        if not (length.isascii() and length.isdigit()
                and SHORTEST_CODE <= int(length) <= LONGEST_CODE):
            raise invalid_parameter("CodeLength", f"{SHORTEST_CODE} to {LONGEST_CODE} here")
        body["code_mask"] = "#" * int(length)
    for name, honoured in SERVICE_FLAGS.items():
        if name not in form:
            continue
        value = {"true": True, "false": False}.get(form[name].lower())
        if value is None:
            raise invalid_parameter(name, "true or false")
        if value is not honoured:
            raise TwilioError(400, 60204, f"Service does not support this feature: "
                                          f"{name}={form[name].lower()}")
    return body
