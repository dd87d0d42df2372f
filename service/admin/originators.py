"""Sender ids (originators) and credits, talking to the gateway and nothing else.

The CLI uses these with just credentials; :class:`service.admin.ops.AdminOps` wraps them for
the API and the web console, audited. No Flask here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from service.errors import ServiceError
from service.gateway import AspsmsClient, OriginatorState
from service.gateway.originators import originator_kind as gateway_originator_kind
from service.verification.phones import mask_phone

ACCEPTED = (OriginatorState.AUTHORIZED, OriginatorState.NO_AUTHORIZATION_NEEDED)


class InvalidOriginator(ServiceError):
    status, code, title = 422, "invalid_originator", "Invalid originator"


class UnlockCodeRejected(ServiceError):
    status, code, title = 422, "unlock_code_rejected", "Unlock code rejected"


@dataclass(frozen=True)
class OriginatorStatus:
    originator: str
    kind: str  # alphanumeric | numeric
    state: OriginatorState

    @property
    def authorized(self) -> bool:
        return self.state in ACCEPTED

    def public(self) -> dict[str, Any]:
        return {"originator": self.originator, "kind": self.kind,
                "authorized": self.authorized, "state": self.state.value}


def originator_kind(originator: str) -> str:
    """``alphanumeric`` or ``numeric``; anything else is refused before the gateway sees it."""
    kind = gateway_originator_kind(originator)
    if kind is not None:
        return kind
    raise InvalidOriginator("An originator is 1-11 letters, digits, spaces or !@.- (not only "
                            "digits), or a number in E.164 format such as +41791234567.")


def originator_status(gateway: AspsmsClient, originator: str) -> OriginatorStatus:
    """CheckOriginatorAuthorization."""
    kind = originator_kind(originator)
    return OriginatorStatus(originator, kind, gateway.check_originator_authorization(originator))


def configured_originator_status(gateway: AspsmsClient, originator: str) -> OriginatorStatus:
    """An alphanumeric sender needs no unlocking, so only a numeric one costs a gateway call."""
    if originator_kind(originator) == "alphanumeric":
        return OriginatorStatus(originator, "alphanumeric", OriginatorState.NO_AUTHORIZATION_NEEDED)
    return originator_status(gateway, originator)


def request_unlock_code(gateway: AspsmsClient, originator: str) -> OriginatorStatus:
    """SendOriginatorUnlockCode: ``pending`` means a code is on its way to that number."""
    kind = originator_kind(originator)
    return OriginatorStatus(originator, kind, gateway.send_originator_unlock_code(originator))


def unlock_originator(gateway: AspsmsClient, originator: str, code: str) -> OriginatorStatus:
    """UnlockOriginator; a code the gateway refuses is an error, not a state."""
    kind = originator_kind(originator)
    state = gateway.unlock_originator(originator, code)
    if state not in ACCEPTED:
        raise UnlockCodeRejected("The gateway refused this unlock code. Check it, or request "
                                 "a new one.", state=state.value)
    return OriginatorStatus(originator, kind, state)


def account_credits(gateway: AspsmsClient) -> Decimal:
    """CheckCredits."""
    return gateway.check_credits().credits


def audit_target(originator: str) -> str:
    """How an originator appears in the audit log: a numeric one is a phone number."""
    return mask_phone(originator) if originator_kind(originator) == "numeric" else originator
