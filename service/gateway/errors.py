"""One root error for everything the ASPSMS gateway can do wrong, and a few families.

Callers branch on the family (credentials, credits, temporary, ...), never on the text.
No message is ever built from a request body, so credentials cannot leak into one.
"""


class GatewayError(Exception):
    """The gateway refused a call or could not be asked.

    ``reached`` is False only when the request surely never left this process (no
    connection could be made); otherwise the gateway may have acted on it.
    """

    reached = True

    @property
    def may_have_acted(self) -> bool:
        """Whether the gateway may have carried the call out (verified a token, texted
        someone) although it did not answer success: True unless the request never left,
        or the gateway answered a status that says it did nothing."""
        return self.reached and self.status_code not in NOTHING_DONE

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        status_code: str | None = None,
        status_info: str | None = None,
    ) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.status_code = status_code
        self.status_info = status_info


class GatewayAuthError(GatewayError):
    """Userkey or password refused, or API access denied for this account."""


class InsufficientCredits(GatewayError):
    """The account balance cannot pay for the operation."""


class OriginatorError(GatewayError):
    """The sender id is invalid, or a numeric sender is not unlocked for a send."""


class RecipientOrMessageError(GatewayError):
    """Something in the request content (recipient, text, URL, time, reference) is invalid."""


class TokenWrong(GatewayError):
    """VerifyToken: the code does not match (or the token is not yet authorised)."""


class TokenNotFound(GatewayError):
    """VerifyToken: no token for this phone number and reference (never sent, or expired)."""


class GatewayTemporaryError(GatewayError):
    """The gateway says it cannot serve right now; the same call may work later."""


class UnknownStatus(GatewayError):
    """A status this client has no meaning for; code and text are kept for the operator."""


class GatewayUnavailable(GatewayTemporaryError):
    """No connection could be made, even after the connect retries."""

    reached = False


class GatewayTimeout(GatewayError):
    """No answer in time.

    ``outcome_unknown`` is True when the request had been sent on an operation that texts
    someone: the SMS may have gone out, so sending again could text the person twice.
    """

    def __init__(self, message: str, *, endpoint: str, outcome_unknown: bool,
                 reached: bool = True) -> None:
        super().__init__(message, endpoint=endpoint)
        self.outcome_unknown = outcome_unknown
        self.reached = reached  # False for a connect timeout


class GatewayProtocolError(GatewayError):
    """The answer is not what the JSON API promises (HTTP status != 200, not a JSON object)."""

    def __init__(self, message: str, *, endpoint: str, http_status: int | None = None) -> None:
        super().__init__(message, endpoint=endpoint)
        self.http_status = http_status


# Every StatusCode of the ASPSMS API. Source: docs/gateway.md §4 — codes 1–25
# as listed by tschiemer/aspsms-php and nadar/aspsms (SOAP GetStatusCodeDescription texts),
# 28–39 by tschiemer/aspsms-php only. None marks success or informational codes: an endpoint
# that expects them handles them itself; anywhere else they are an UnknownStatus.
STATUS_CODES: dict[str, tuple[str, type[GatewayError] | None]] = {
    "1": ("OK", None),
    "2": ("connection to the ASPSMS back end failed", GatewayTemporaryError),
    "3": ("authorization failed", GatewayAuthError),
    "4": ("binary file not found", RecipientOrMessageError),
    "5": ("not enough credits", InsufficientCredits),
    "6": ("time-out", GatewayTemporaryError),
    "7": ("transmission error, retry", GatewayTemporaryError),
    "8": ("invalid userkey", GatewayAuthError),
    "9": ("invalid password", GatewayAuthError),
    "10": ("invalid originator", OriginatorError),
    "11": ("invalid message data", RecipientOrMessageError),
    "12": ("invalid binary data", RecipientOrMessageError),
    "13": ("invalid binary file type", RecipientOrMessageError),
    "14": ("invalid MCC", RecipientOrMessageError),
    "15": ("invalid MNC", RecipientOrMessageError),
    "16": ("invalid XSer", RecipientOrMessageError),
    "17": ("invalid buffered-notification URL", RecipientOrMessageError),
    "18": ("invalid delivery-notification URL", RecipientOrMessageError),
    "19": ("invalid non-delivery-notification URL", RecipientOrMessageError),
    "20": ("no recipient", RecipientOrMessageError),
    "21": ("binary data missing", RecipientOrMessageError),
    "22": ("invalid deferred delivery time", RecipientOrMessageError),
    "23": ("transaction reference number missing", RecipientOrMessageError),
    "24": ("service temporarily unavailable", GatewayTemporaryError),
    "25": ("user access denied", GatewayAuthError),
    # 26 and 27 have no documented meaning in the JSON API; §11 says not to rely on them.
    "26": ("exists", UnknownStatus),
    "27": ("nothing found", UnknownStatus),
    "28": ("originator needs no authorization", None),
    "29": ("originator authorization pending", None),
    # Informational for the originator operations, which handle it; on a send it means the
    # numeric sender is still locked (§8).
    "30": ("originator not authorized", OriginatorError),
    "31": ("originator already authorized", None),
    # 32–35 belong to an account feature the JSON API does not expose.
    "32": ("no restrictions for notification recipient", UnknownStatus),
    "33": ("notification recipient authorization pending", UnknownStatus),
    "34": ("notification recipient not authorized", UnknownStatus),
    "35": ("notification recipient already authorized", UnknownStatus),
    "36": ("security token authorization pending", TokenWrong),
    "37": ("security token not authorized", TokenWrong),
    "38": ("security token not found", TokenNotFound),
    # Its use by VerifyToken is unconfirmed (§7.2): a repeat verification was observed to
    # answer "1", so 39 is surfaced as-is rather than guessed at.
    "39": ("security token already authorized", UnknownStatus),
}


# Statuses after which the gateway has surely done nothing: it refused the credentials or
# the balance, or could not reach its own back end. 6 (time-out), 7 (transmission error) and
# statuses without a documented meaning leave the outcome open.
NOTHING_DONE = frozenset({"2", "3", "5", "8", "9", "24", "25"})


def error_for(endpoint: str, code: str, info: str | None) -> GatewayError:
    """The exception for a StatusCode an endpoint did not accept."""
    description, family = STATUS_CODES.get(code, (None, None))
    if description is None or family is None:
        return UnknownStatus(
            f"{endpoint}: unexpected status {code!r} ({info!r})",
            endpoint=endpoint,
            status_code=code,
            status_info=info,
        )
    return family(
        f"{endpoint}: status {code} ({description})",
        endpoint=endpoint,
        status_code=code,
        status_info=info,
    )
