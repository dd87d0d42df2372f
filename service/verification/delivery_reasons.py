"""What a delivery report's reason code means (docs/gateway.md §6.3, GSM/MAP style), and the
few classes the metrics count them by."""

from __future__ import annotations

import re

REASON = re.compile(r"\A[0-9]{3}\Z")

# Reason codes and their labels, docs/gateway.md §6.3 (GSM/MAP style).
REASON_TEXT = {
    "000": "unknown subscriber",
    **{f"{code:03d}": "service temporarily unavailable" for code in range(1, 9)},
    "009": "illegal error code", "010": "network time-out", "030": "originator not authorized",
    "031": "originator already authorized", "100": "facility not supported",
    "101": "unknown subscriber", "102": "facility not provided", "103": "call barred",
    "104": "operation barred", "105": "SC congestion", "106": "facility not supported",
    "107": "absent subscriber (phone off / out of coverage)",
    "108": "delivery failure (memory full when buffered; validity expired when final)",
    "109": "SC congestion", "110": "protocol error (often long/concatenated SMS issues)",
    "111": "MS not equipped", "112": "unknown SC",
    "113": "SC congestion", "114": "illegal MS", "115": "MS not a subscriber",
    "116": "error in MS", "117": "SMS lower layer not provisioned", "118": "system failure",
    "119": "PLMN system failure", "120": "HLR system failure", "121": "VLR system failure",
    "122": "previous VLR system failure", "123": "controlling MSC system failure",
    "124": "VMSC system failure", "125": "EIR system failure", "126": "system failure",
    "127": "unexpected data value", "200": "error in service-centre address",
    "201": "invalid absolute validity period", "202": "message exceeds maximum",
    "203": "unable to unpack GSM message", "204": "unable to convert to IA5 alphabet",
    "205": "invalid validity-period format", "206": "invalid destination address",
    "207": "duplicate message submit", "208": "invalid message-type indicator",
}
# The metrics' reason class (few label values): the subscriber's side, our sender id, the
# message itself; every other known code is the networks'.
REASON_CLASS = {
    **dict.fromkeys("000 101 103 104 107 108 111 114 115 116 117".split(), "subscriber"),
    **dict.fromkeys(("030", "031"), "originator"),
    **{f"{code}": "message" for code in range(200, 209)},
}


def describe(status: str, reason: str) -> tuple[str, str]:
    """(meaning, reason class) of a reason code; "000" with a delivery is no error (§6.3)."""
    if not reason or status in ("submitted", "delivered"):
        return "", "none"
    if reason not in REASON_TEXT:
        return "", "unknown"
    return REASON_TEXT[reason], REASON_CLASS.get(reason, "network")
