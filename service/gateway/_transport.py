"""HTTP and envelope details behind AspsmsClient._call: retries, decoding, error mapping.

Retry policy (docs/gateway.md §1 documents no idempotency, and sends return no message id):
only a call that never reached the gateway is repeated. Once the request may have been
written, a lost answer is never retried — on a send that would risk texting someone twice.
"""

import functools
import ipaddress
import json
import os
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ProtocolError, ReadTimeoutError

from service.gateway.errors import (
    GatewayError,
    GatewayProtocolError,
    GatewayTimeout,
    GatewayUnavailable,
    error_for,
)
from service.gateway.results import ORIGINATOR_STATES

# Operations that text someone: a lost answer there means the SMS may already be out.
SEND_OPERATIONS = frozenset(
    {"SendTextSMS", "SendSimpleTextSMS", "SendTokenSMS", "SendOriginatorUnlockCode"}
)

# StatusCodes that are an answer rather than an error, per endpoint; "1" everywhere else.
# Sources: docs/gateway.md §3 ("0" on InquireDeliveryNotifications), §7.2 (36/37: wrong code),
# §8 (28–31 describe an originator's state).
_ORIGINATOR_CODES = frozenset({"1", *ORIGINATOR_STATES})
ACCEPTED_CODES: dict[str, frozenset[str]] = {
    "InquireDeliveryNotifications": frozenset({"0", "1"}),
    "VerifyToken": frozenset({"1", "36", "37"}),
    "SendOriginatorUnlockCode": _ORIGINATOR_CODES,
    "UnlockOriginator": _ORIGINATOR_CODES,
    "CheckOriginatorAuthorization": _ORIGINATOR_CODES,
}
_ONLY_OK = frozenset({"1"})

# Their JSON answer is undocumented (docs/gateway.md §10), so a StatusCode is optional there.
STATUS_OPTIONAL = frozenset({"VersionInfo", "ListAllStatusCodes"})


def url_problem(base_url: str) -> str | None:
    """Why credentials may not go to ``base_url``, or None: it must be https://, or plain
    http:// to a loopback host (a local simulator)."""
    parts = urlsplit(base_url)
    secure = parts.scheme == "https" and bool(parts.hostname)
    if secure or (parts.scheme == "http" and _is_loopback(parts.hostname)):
        return None
    return ("must be an https:// URL (plain http:// only for a loopback host), "
            f"got scheme {parts.scheme!r} for host {parts.hostname!r}")


def checked_base_url(base_url: str) -> str:
    """The URL without its trailing slash; ValueError unless :func:`url_problem` allows it."""
    problem = url_problem(base_url)
    if problem:
        raise ValueError(f"ASPSMS_URL {problem}")
    return base_url.rstrip("/")


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


# Sent with every call; the body is JSON we serialise ourselves (compact, UTF-8).
HEADERS = {"Content-Type": "application/json", "Accept": "application/json",
           "User-Agent": "aspsms-verify"}


def pooled_session(base_url: str) -> requests.Session:
    """One Session per client, its connections kept alive.

    Sized for a threaded worker: past requests' default of 10 pooled connections, busy
    threads would open and drop extra ones instead of reusing them. The environment's proxy
    and CA-bundle settings (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE, ...) are read here,
    once: with ``trust_env`` requests re-reads them on every call, which cost ~0.7 ms of
    CPU per gateway call, more than the rest of the call (bench/README.md).
    """
    session = requests.Session()
    session.trust_env = False
    session.proxies = requests.utils.get_environ_proxies(base_url)
    session.verify = (os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
                      or True)
    adapter = HTTPAdapter(pool_maxsize=128)  # at least the threads of a worker
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


@functools.lru_cache(maxsize=64)
def _prepared_post(url: str) -> requests.PreparedRequest:
    """A POST to ``url`` with HEADERS, prepared once per URL and copied for each call.

    session.post would merge cookies, headers and settings the gateway never uses, and
    preparing the URL (parsing, IDNA, quoting) cost ~70 µs of CPU per call; a copy with
    its own body costs ~6 µs (bench/README.md). The session still pools the connections.
    """
    return requests.Request("POST", url, headers=HEADERS).prepare()


def post_json(
    session: requests.Session,
    url: str,
    body: dict[str, Any],
    *,
    endpoint: str,
    timeouts: tuple[float, float],
    retries: int,
    backoff: float,
) -> dict[str, Any]:
    """POST ``body`` as JSON and return the answer object, or raise a GatewayError."""
    failure: requests.ConnectionError | None = None
    prepared = _prepared_post(url).copy()
    prepared.prepare_body(json.dumps(body, separators=(",", ":"), allow_nan=False).encode(), None)
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            answer = session.send(prepared, timeout=timeouts, allow_redirects=False)
            return _decode(endpoint, answer)
        except requests.ConnectionError as e:  # includes ConnectTimeout
            if _answer_lost(e):
                raise _no_answer(endpoint) from e
            failure = e
        except requests.Timeout as e:  # a ReadTimeout: the request went out
            raise _no_answer(endpoint) from e
        except requests.RequestException as e:  # e.g. a body cut off mid-way
            raise GatewayProtocolError(f"{endpoint}: broken answer", endpoint=endpoint) from e
    raise _not_connected(endpoint, failure) from failure


def _answer_lost(error: requests.ConnectionError) -> bool:
    """True when the connection stood and the request may have arrived.

    requests wraps a read time-out while reading the body, and a connection dropped after
    the request was written, in a ConnectionError; only the urllib3 cause tells them apart
    from a refused connection.
    """
    cause = error.args[0] if error.args else None
    if isinstance(cause, MaxRetryError):
        cause = cause.reason
    return isinstance(cause, ReadTimeoutError | ProtocolError)


def _no_answer(endpoint: str) -> GatewayTimeout:
    return GatewayTimeout(
        f"{endpoint}: no answer from the gateway",
        endpoint=endpoint,
        outcome_unknown=endpoint in SEND_OPERATIONS,
    )


def _not_connected(endpoint: str, failure: requests.ConnectionError | None) -> GatewayError:
    if isinstance(failure, requests.ConnectTimeout):
        return GatewayTimeout(
            f"{endpoint}: connecting to the gateway timed out",
            endpoint=endpoint,
            outcome_unknown=False,
            reached=False,
        )
    return GatewayUnavailable(f"{endpoint}: gateway unreachable", endpoint=endpoint)


def _decode(endpoint: str, response: requests.Response) -> dict[str, Any]:
    # The API answers its own errors with HTTP 200 and a StatusCode (§1), so any other
    # HTTP status is a proxy or outage page. The body is never quoted: it is untrusted.
    status = response.status_code
    if status != 200:
        raise GatewayProtocolError(
            f"{endpoint}: HTTP {status}", endpoint=endpoint, http_status=status
        )
    try:
        data = response.json()
    except ValueError as e:
        raise GatewayProtocolError(
            f"{endpoint}: answer is not JSON", endpoint=endpoint, http_status=status
        ) from e
    if not isinstance(data, dict):
        raise GatewayProtocolError(
            f"{endpoint}: answer is not a JSON object", endpoint=endpoint, http_status=status
        )
    return data


def accepted_status(endpoint: str, data: dict[str, Any]) -> str | None:
    """The StatusCode, if the endpoint accepts it as an answer; else its GatewayError.

    None only where the StatusCode is optional and absent.
    """
    code = data.get("StatusCode")
    if code is None and endpoint in STATUS_OPTIONAL:
        return None
    # A JSON string by the API's convention (§3); a bare number is read the same way.
    if not isinstance(code, str | int) or isinstance(code, bool):
        raise GatewayProtocolError(
            f"{endpoint}: answer has no StatusCode", endpoint=endpoint, http_status=200
        )
    code = str(code)
    if code not in ACCEPTED_CODES.get(endpoint, _ONLY_OK):
        info = data.get("StatusInfo")
        raise error_for(endpoint, code, None if info is None else str(info))
    return code


def without_status(code: str | None, data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in ("StatusCode", "StatusInfo")}


def outcome_of(error: GatewayError) -> str:
    """The ``on_call`` outcome label for an error."""
    if isinstance(error, GatewayTimeout):
        return "timeout"
    if isinstance(error, GatewayUnavailable):
        return "unavailable"
    if isinstance(error, GatewayProtocolError):
        return "protocol_error"
    return "status_error"


def present(**fields: Any) -> dict[str, Any]:
    """The fields that have a value: optional fields are left out, not sent empty."""
    return {name: value for name, value in fields.items() if value is not None}


def recipient_list(recipients: list[str]) -> list[str]:
    # A bare string would otherwise be sent as one recipient per character.
    if isinstance(recipients, str):
        raise TypeError("recipients must be a list of phone numbers, not a string")
    return list(recipients)


def notification_urls(
    buffered: str | None, delivered: str | None, not_delivered: str | None
) -> dict[str, str | None]:
    return {
        "URLBufferedMessageNotification": buffered,
        "URLDeliveryNotification": delivered,
        "URLNonDeliveryNotification": not_delivered,
    }


def iso_utc(moment: datetime | None) -> str | None:
    """``yyyy-MM-ddTHH:mm:ss.fffZ``, the form JSON clients send (docs/gateway.md §5.1)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError("deferred_delivery_time must be timezone-aware")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
