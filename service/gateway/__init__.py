"""Client for the ASPSMS JSON API (json.aspsms.com). Imports no web framework."""

from service.gateway._transport import url_problem
from service.gateway.client import AspsmsClient
from service.gateway.errors import (
    STATUS_CODES,
    GatewayAuthError,
    GatewayError,
    GatewayProtocolError,
    GatewayTemporaryError,
    GatewayTimeout,
    GatewayUnavailable,
    InsufficientCredits,
    OriginatorError,
    RecipientOrMessageError,
    TokenNotFound,
    TokenWrong,
    UnknownStatus,
    error_for,
)
from service.gateway.results import Credits, DeliveryNotification, OriginatorState, Voucher

__all__ = [
    "STATUS_CODES",
    "AspsmsClient",
    "Credits",
    "DeliveryNotification",
    "GatewayAuthError",
    "GatewayError",
    "GatewayProtocolError",
    "GatewayTemporaryError",
    "GatewayTimeout",
    "GatewayUnavailable",
    "InsufficientCredits",
    "OriginatorError",
    "OriginatorState",
    "RecipientOrMessageError",
    "TokenNotFound",
    "TokenWrong",
    "UnknownStatus",
    "Voucher",
    "error_for",
    "url_problem",
]
