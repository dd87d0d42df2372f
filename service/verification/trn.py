"""TRNs: the transaction reference number each send goes out with (docs/gateway.md §5.3).

A TRN spells the verification id and the send number in [a-fx0-9], so a delivery report or
an inquiry's row names its send without any mapping stored: the id's tag and random bytes
in hex, then 'x' and the send number.
"""

from __future__ import annotations

import base64
import re

TRN = re.compile(r"\A([0-9a-f]{4})([0-9a-f]{32})x([1-9][0-9]?)\Z")


def trn_for(verification_id: str, send: int) -> str:
    """The id's tag and random bytes in hex, then the send number: [a-fx0-9] only."""
    return f"{trn_base(verification_id)}x{send}"


def trn_base(verification_id: str) -> str:
    """The TRN of a verification's sends, less 'x<send>' (reserve_send.lua appends it)."""
    tag, rest = verification_id[3:7], verification_id[7:]
    return f"{tag}{base64.urlsafe_b64decode(rest + '==').hex()}"


def parse_trn(trn: str) -> tuple[str, int] | None:
    match = TRN.match(trn)
    if match is None:
        return None
    rest = base64.urlsafe_b64encode(bytes.fromhex(match.group(2))).decode().rstrip("=")
    return f"vf_{match.group(1)}{rest}", int(match.group(3))
