"""How gateway trouble reaches the caller of /otp/start and /otp/check (see openapi.yaml)."""

from __future__ import annotations

import logging

from service.gateway import (
    GatewayAuthError,
    GatewayError,
    GatewayProtocolError,
    GatewayTemporaryError,
    GatewayTimeout,
    InsufficientCredits,
)
from service.verification import errors

log = logging.getLogger(__name__)


def problem_for(error: GatewayError, *, verification_id: str | None = None):
    """The service error that answers for a gateway failure."""
    if isinstance(error, GatewayTimeout):
        if error.outcome_unknown:
            log.warning("gateway send timed out: outcome unknown", extra={
                "endpoint": error.endpoint, "verification_id": verification_id})
        return errors.UpstreamTimeout("The SMS gateway did not answer in time.")
    if isinstance(error, GatewayProtocolError):
        return errors.UpstreamError("The SMS gateway answered with an error.")
    if isinstance(error, GatewayAuthError):
        return errors.UpstreamAuthFailed("The SMS gateway refused this service's credentials.")
    if isinstance(error, InsufficientCredits):
        return errors.UpstreamInsufficientCredits("The SMS gateway account has no credits left.")
    if isinstance(error, GatewayTemporaryError):
        return errors.UpstreamUnavailable("The SMS gateway is unavailable; try again later.",
                                          headers={"Retry-After": "5"})
    return errors.UpstreamRejected("The SMS gateway rejected the request.",
                                   upstream_status_code=error.status_code)
