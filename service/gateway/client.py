"""AspsmsClient: one method per operation of the ASPSMS JSON API (json.aspsms.com).

Field names and casing follow the API page exactly (docs/gateway.md §13);
behaviour follows docs/gateway.md. Every call goes through ``_call``, the
single place for transport, retries, timing, logging and error mapping.
"""

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import requests

from service.gateway import _transport, results
from service.gateway.errors import GatewayError, GatewayProtocolError
from service.gateway.results import Credits, DeliveryNotification, OriginatorState, Voucher

log = logging.getLogger("service.gateway")

Parse = Callable[[str | None, dict[str, Any]], Any]
OnCall = Callable[[str, str, float], None]


def _none(code: str | None, data: dict[str, Any]) -> None:
    return None


def _raw(code: str | None, data: dict[str, Any]) -> dict[str, Any]:
    return data


class AspsmsClient:
    """Client for the ASPSMS JSON API; one pooled HTTP session per instance."""

    def __init__(
        self,
        base_url: str,
        userkey: str,
        password: str,
        *,
        timeout: float = 10.0,
        affiliate_id: str | None = None,
        session: requests.Session | None = None,
        connect_retries: int = 2,
        backoff: float = 0.05,
        on_call: OnCall | None = None,
    ) -> None:
        self.base_url = _transport.checked_base_url(base_url)
        self.userkey = userkey
        self._password = password
        self._timeouts = (timeout, timeout)
        self._affiliate_id = affiliate_id
        self._session = (session if session is not None
                         else _transport.pooled_session(self.base_url))
        self._connect_retries = connect_retries
        self._backoff = backoff
        self._on_call = on_call

    def __repr__(self) -> str:
        return f"AspsmsClient(base_url={self.base_url!r}, userkey={self.userkey!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> "AspsmsClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- account --------------------------------------------------------------------------

    def check_credits(self) -> Credits:
        return self._call("CheckCredits", self._auth(), lambda _, d: Credits.from_json(d))

    def create_voucher(
        self, number_of_vouchers: int, amount_credits_per_voucher: Any, remarks: str = ""
    ) -> dict[str, Any]:
        """The raw answer minus StatusCode/StatusInfo: its shape is undocumented (§10)."""
        body = self._auth(
            NumberOfVouchers=str(number_of_vouchers),
            AmountCreditsPerVoucher=str(amount_credits_per_voucher),
            Remarks=remarks,
        )
        return self._call("CreateVoucher", body, _transport.without_status)

    def get_voucher_transactions(self) -> list[Voucher]:
        return self._call("GetVoucherTransactions", self._auth(), lambda _, d: results.vouchers(d))

    def redeem_voucher(self, redeem_code: str) -> None:
        self._call("RedeemVoucher", self._auth(RedeemCode=redeem_code), _none)

    def version_info(self) -> dict[str, Any]:
        return self._call("VersionInfo", {}, _raw)

    def list_all_status_codes(self) -> dict[str, Any]:
        return self._call("ListAllStatusCodes", {}, _raw)

    # -- text messages --------------------------------------------------------------------

    def send_text_sms(
        self,
        originator: str,
        recipients: list[str],
        message_text: str,
        *,
        deferred_delivery_time: datetime | None = None,
        flashing: bool = False,
        force_gsm7bit: bool = False,
        url_buffered: str | None = None,
        url_delivery: str | None = None,
        url_non_delivery: str | None = None,
    ) -> None:
        body = self._auth(
            Originator=originator,
            Recipients=_transport.recipient_list(recipients),
            MessageText=message_text,
            DeferredDeliveryTime=_transport.iso_utc(deferred_delivery_time),
            FlashingSMS=flashing,
            **_transport.notification_urls(url_buffered, url_delivery, url_non_delivery),
            AffiliateID=self._affiliate_id,
            ForceGSM7bit=force_gsm7bit,
        )
        self._call("SendTextSMS", body, _none)

    def send_simple_text_sms(
        self,
        originator: str,
        recipients: list[str],
        message_text: str,
        *,
        force_gsm7bit: bool = False,
    ) -> None:
        body = self._auth(
            Originator=originator,
            Recipients=_transport.recipient_list(recipients),
            MessageText=message_text,
            ForceGSM7bit=force_gsm7bit,
        )
        self._call("SendSimpleTextSMS", body, _none)

    def inquire_delivery_notifications(self, trns: list[str]) -> list[DeliveryNotification]:
        # One string, references separated by ";" (§6.1).
        body = self._auth(TransactionReferenceNumbers=";".join(trns))
        return self._call(
            "InquireDeliveryNotifications", body, lambda _, d: results.delivery_notifications(d)
        )

    # -- originators ----------------------------------------------------------------------

    def send_originator_unlock_code(self, originator: str) -> OriginatorState:
        """Ask ASPSMS to text an unlock code to a numeric originator; "1" means it went out."""
        body = self._auth(Originator=originator)
        return self._call("SendOriginatorUnlockCode", body, _state(OriginatorState.PENDING))

    def unlock_originator(self, originator: str, unlock_code: str) -> OriginatorState:
        """A refused code is the state NOT_AUTHORIZED (status 30), not an exception."""
        body = self._auth(
            Originator=originator, UnlockCode=unlock_code, AffiliateID=self._affiliate_id
        )
        return self._call("UnlockOriginator", body, _state(OriginatorState.AUTHORIZED))

    def check_originator_authorization(self, originator: str) -> OriginatorState:
        body = self._auth(Originator=originator)
        return self._call("CheckOriginatorAuthorization", body, _state(OriginatorState.AUTHORIZED))

    # -- one-time codes -------------------------------------------------------------------

    def send_token_sms(
        self,
        recipient: str,
        *,
        token_reference: str,
        message_data: str = "",
        token_validity: int = 5,
        token_mask: str = "NNNN",
        case_sensitive: bool = False,
        verification_code: str | None = None,
        originator: str | None = None,
        trn: str | None = None,
        url_buffered: str | None = None,
        url_delivery: str | None = None,
        url_non_delivery: str | None = None,
    ) -> None:
        """Text a one-time code; the gateway does not return the code it generated (§7.1)."""
        body = self._auth(
            Originator=originator,
            # One number as a string, ":TRN" appended for delivery tracking (§7.1).
            Recipients=recipient if trn is None else f"{recipient}:{trn}",
            MessageData=message_data,
            TokenReference=token_reference,
            TokenValidity=str(token_validity),
            TokenMask=token_mask,
            VerificationCode=verification_code,
            TokenCaseSensitive="1" if case_sensitive else "0",
            **_transport.notification_urls(url_buffered, url_delivery, url_non_delivery),
            AffiliateID=self._affiliate_id,
        )
        self._call("SendTokenSMS", body, _none)

    def verify_token(self, phone_number: str, token_reference: str, verification_code: str) -> bool:
        """True for a matching code, False for a wrong one; TokenNotFound when there is none."""
        body = self._auth(
            PhoneNumber=phone_number,
            TokenReference=token_reference,
            VerificationCode=verification_code,
        )
        return self._call("VerifyToken", body, lambda code, _: code == "1")

    # -- plumbing -------------------------------------------------------------------------

    def _auth(self, **fields: Any) -> dict[str, Any]:
        """Credentials plus the given fields, leaving out the optional ones that are None."""
        credentials = {"UserName": self.userkey, "Password": self._password}
        return {**credentials, **_transport.present(**fields)}

    def _call(self, endpoint: str, body: dict[str, Any], parse: Parse) -> Any:
        """POST one operation and map its answer; records exactly one outcome per call."""
        started = time.perf_counter()
        try:
            data = _transport.post_json(
                self._session,
                f"{self.base_url}/{endpoint}",
                body,
                endpoint=endpoint,
                timeouts=self._timeouts,
                retries=self._connect_retries,
                backoff=self._backoff,
            )
            code = _transport.accepted_status(endpoint, data)
            result = _parsed(endpoint, parse, code, data)
        except GatewayError as e:
            self._record(endpoint, _transport.outcome_of(e), e.status_code, started)
            raise
        self._record(endpoint, "ok", code, started)
        return result

    def _record(self, endpoint: str, outcome: str, code: str | None, started: float) -> None:
        seconds = time.perf_counter() - started
        # Endpoint, outcome and status only: never credentials, numbers, texts or codes.
        # A call that worked is DEBUG: the request's access line and the metrics say it.
        level = logging.DEBUG if outcome == "ok" else logging.WARNING
        log.log(level, "aspsms %s outcome=%s status=%s duration_ms=%.0f",
                endpoint, outcome, code, seconds * 1000)  # fmt: skip
        if self._on_call is None:
            return
        try:
            self._on_call(endpoint, outcome, seconds)
        except Exception:
            # A broken metrics hook must not turn an SMS that went out into a failure.
            log.exception("aspsms on_call hook failed for %s", endpoint)


def _parsed(endpoint: str, parse: Parse, code: str | None, data: dict[str, Any]) -> Any:
    try:
        return parse(code, data)
    except (KeyError, TypeError, ValueError) as e:
        raise GatewayProtocolError(
            f"{endpoint}: answer does not have the documented shape",
            endpoint=endpoint,
            http_status=200,
        ) from e


def _state(on_ok: OriginatorState) -> Parse:
    return lambda code, _: results.originator_state(code, on_ok)
