"""AspsmsClient against `responses` (exact requests sent) and a real loopback HTTP server
(connection reuse and time-outs, which `responses` cannot show)."""

import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import responses
from requests.adapters import HTTPAdapter
from responses import matchers
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from service.gateway import (
    STATUS_CODES,
    AspsmsClient,
    Credits,
    DeliveryNotification,
    GatewayAuthError,
    GatewayError,
    GatewayProtocolError,
    GatewayTemporaryError,
    GatewayTimeout,
    GatewayUnavailable,
    InsufficientCredits,
    OriginatorError,
    OriginatorState,
    RecipientOrMessageError,
    TokenNotFound,
    TokenWrong,
    UnknownStatus,
    Voucher,
    _transport,
)

BASE = "https://json.aspsms.test"
USERKEY = "USERKEY12345"
PASSWORD = "pw-S3kr3t-never-shown"
PHONE = "+41791234567"
AUTH = {"UserName": USERKEY, "Password": PASSWORD}
OK = {"StatusCode": "1", "StatusInfo": "OK"}


@pytest.fixture
def gateway():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def client():
    with AspsmsClient(BASE, USERKEY, PASSWORD, affiliate_id="AFF1", backoff=0) as c:
        yield c


@pytest.fixture
def plain_client():
    """No AffiliateID configured."""
    with AspsmsClient(BASE, USERKEY, PASSWORD, backoff=0) as c:
        yield c


def answer(gateway, endpoint, payload=OK, **kwargs):
    gateway.post(f"{BASE}/{endpoint}", json=payload, **kwargs)


def answer_status(gateway, endpoint, code, info="some text"):
    answer(gateway, endpoint, {"StatusCode": code, "StatusInfo": info})


def fail(gateway, endpoint, exception):
    gateway.post(f"{BASE}/{endpoint}", body=exception)


def sent_body(gateway):
    return json.loads(gateway.calls[-1].request.body)


# -- requests sent -------------------------------------------------------------------------

WHEN = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
URLS = {
    "url_buffered": "https://cb/b",
    "url_delivery": "https://cb/d",
    "url_non_delivery": "https://cb/n",
}
URL_FIELDS = {
    "URLBufferedMessageNotification": "https://cb/b",
    "URLDeliveryNotification": "https://cb/d",
    "URLNonDeliveryNotification": "https://cb/n",
}
ENDPOINTS = [
    ("CheckCredits", lambda c: c.check_credits(), AUTH, {**OK, "Credits": "1"}),
    (
        "SendTextSMS",
        lambda c: c.send_text_sms(
            "Acme",
            [PHONE, "+41791234568:T2"],
            "Hi",
            deferred_delivery_time=WHEN,
            flashing=True,
            force_gsm7bit=True,
            **URLS,
        ),
        {
            **AUTH,
            "Originator": "Acme",
            "Recipients": [PHONE, "+41791234568:T2"],
            "MessageText": "Hi",
            "DeferredDeliveryTime": "2030-01-02T03:04:05.678Z",
            "FlashingSMS": True,
            **URL_FIELDS,
            "AffiliateID": "AFF1",
            "ForceGSM7bit": True,
        },
        OK,
    ),
    (
        "SendSimpleTextSMS",
        lambda c: c.send_simple_text_sms("Acme", [PHONE], "Hi"),
        {
            **AUTH,
            "Originator": "Acme",
            "Recipients": [PHONE],
            "MessageText": "Hi",
            "ForceGSM7bit": False,
        },
        OK,
    ),
    (
        "InquireDeliveryNotifications",
        lambda c: c.inquire_delivery_notifications(["T1", "T2"]),
        {**AUTH, "TransactionReferenceNumbers": "T1;T2"},
        {**OK, "DeliveryNotifications": []},
    ),
    (
        "SendOriginatorUnlockCode",
        lambda c: c.send_originator_unlock_code(PHONE),
        {**AUTH, "Originator": PHONE},
        OK,
    ),
    (
        "UnlockOriginator",
        lambda c: c.unlock_originator(PHONE, "65164424"),
        {**AUTH, "Originator": PHONE, "UnlockCode": "65164424", "AffiliateID": "AFF1"},
        OK,
    ),
    (
        "CheckOriginatorAuthorization",
        lambda c: c.check_originator_authorization(PHONE),
        {**AUTH, "Originator": PHONE},
        OK,
    ),
    (
        "SendTokenSMS",
        lambda c: c.send_token_sms(
            PHONE,
            token_reference="vf_1",
            message_data="Code <VERIFICATIONCODE>",
            token_validity=10,
            token_mask="######",
            case_sensitive=True,
            verification_code="4711",
            originator="Acme",
            trn="T9",
            **URLS,
        ),
        {
            **AUTH,
            "Originator": "Acme",
            "Recipients": f"{PHONE}:T9",
            "MessageData": "Code <VERIFICATIONCODE>",
            "TokenReference": "vf_1",
            "TokenValidity": "10",
            "TokenMask": "######",
            "VerificationCode": "4711",
            "TokenCaseSensitive": "1",
            **URL_FIELDS,
            "AffiliateID": "AFF1",
        },
        OK,
    ),
    (
        "VerifyToken",
        lambda c: c.verify_token(PHONE, "vf_1", "4711"),
        {**AUTH, "PhoneNumber": PHONE, "TokenReference": "vf_1", "VerificationCode": "4711"},
        OK,
    ),
    (
        "CreateVoucher",
        lambda c: c.create_voucher(2, Decimal("10.5"), "gift"),
        {**AUTH, "NumberOfVouchers": "2", "AmountCreditsPerVoucher": "10.5", "Remarks": "gift"},
        OK,
    ),
    (
        "GetVoucherTransactions",
        lambda c: c.get_voucher_transactions(),
        AUTH,
        {**OK, "vouchers": []},
    ),
    ("RedeemVoucher", lambda c: c.redeem_voucher("V-1"), {**AUTH, "RedeemCode": "V-1"}, OK),
    ("VersionInfo", lambda c: c.version_info(), {}, {"VersionInfo": "ASPSMS JSON 1.0 build:7"}),
    ("ListAllStatusCodes", lambda c: c.list_all_status_codes(), {}, {"StatusCodes": []}),
]


def test_the_endpoint_table_covers_all_fourteen_operations_of_the_api():
    assert len({endpoint for endpoint, *_ in ENDPOINTS}) == 14


@pytest.mark.parametrize(
    ("endpoint", "call", "body", "reply"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS]
)
def test_each_operation_posts_exactly_the_documented_json_body(
    gateway, client, endpoint, call, body, reply
):
    answer(gateway, endpoint, reply)

    call(client)

    assert len(gateway.calls) == 1
    request = gateway.calls[0].request
    assert (request.method, request.url) == ("POST", f"{BASE}/{endpoint}")
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == body


def test_a_token_sms_leaves_out_every_optional_field_that_was_not_given(gateway, plain_client):
    answer(gateway, "SendTokenSMS")

    plain_client.send_token_sms(PHONE, token_reference="vf_1")

    assert sent_body(gateway) == {
        **AUTH, "Recipients": PHONE, "MessageData": "", "TokenReference": "vf_1",
        "TokenValidity": "5", "TokenMask": "NNNN", "TokenCaseSensitive": "0",
    }  # fmt: skip


def test_a_text_sms_without_options_sends_json_booleans_and_no_empty_fields(gateway, plain_client):
    answer(gateway, "SendTextSMS")

    plain_client.send_text_sms("Acme", [PHONE], "Hi")

    assert sent_body(gateway) == {
        **AUTH, "Originator": "Acme", "Recipients": [PHONE], "MessageText": "Hi",
        "FlashingSMS": False, "ForceGSM7bit": False,
    }  # fmt: skip


def test_a_deferred_time_in_another_zone_is_sent_as_utc_with_milliseconds(gateway, client):
    answer(gateway, "SendTextSMS")

    local = datetime(2030, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    client.send_text_sms("Acme", [PHONE], "Hi", deferred_delivery_time=local)

    assert sent_body(gateway)["DeferredDeliveryTime"] == "2030-01-02T03:04:05.000Z"


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (
            lambda c: c.send_text_sms(
                "A", [PHONE], "Hi", deferred_delivery_time=datetime(2030, 1, 2)
            ),
            ValueError,
        ),
        (lambda c: c.send_text_sms("A", PHONE, "Hi"), TypeError),
        (lambda c: c.send_simple_text_sms("A", PHONE, "Hi"), TypeError),
    ],
    ids=["naive deferred time", "text sms recipients as string", "simple sms recipients as string"],
)
def test_arguments_that_would_be_sent_wrongly_are_refused_before_any_request(
    gateway, client, call, error
):
    answer(gateway, "SendTextSMS")
    answer(gateway, "SendSimpleTextSMS")

    with pytest.raises(error):
        call(client)

    assert len(gateway.calls) == 0


def test_every_call_passes_the_connect_and_read_timeout_to_the_session(gateway):
    timeout_sent = matchers.request_kwargs_matcher({"timeout": (0.7, 0.7)})
    answer(gateway, "CheckCredits", {**OK, "Credits": "3"}, match=[timeout_sent])

    with AspsmsClient(BASE, USERKEY, PASSWORD, timeout=0.7) as client:
        assert client.check_credits() == Credits(Decimal("3"))


# -- status codes --------------------------------------------------------------------------

FAMILIES = {
    GatewayAuthError: ["3", "8", "9", "25"],
    InsufficientCredits: ["5"],
    OriginatorError: ["10", "30"],
    RecipientOrMessageError: ["4", *map(str, range(11, 24))],
    TokenWrong: ["36", "37"],
    TokenNotFound: ["38"],
    GatewayTemporaryError: ["2", "6", "7", "24"],
    # 28, 29 and 31 describe an originator: on a send they are unexpected.
    UnknownStatus: ["26", "27", "28", "29", "31", "32", "33", "34", "35", "39"],
}
CODE_TO_FAMILY = [(code, family) for family, codes in FAMILIES.items() for code in codes]


def test_the_status_table_names_every_code_from_1_to_39_and_only_those():
    assert set(STATUS_CODES) == {str(n) for n in range(1, 40)}
    assert {code for code, (_, family) in STATUS_CODES.items() if family is None} == {
        "1", "28", "29", "31",
    }  # fmt: skip


def test_the_family_table_of_these_tests_covers_every_error_code():
    assert sorted(code for code, _ in CODE_TO_FAMILY) == sorted(set(STATUS_CODES) - {"1"})


@pytest.mark.parametrize(("code", "family"), CODE_TO_FAMILY)
def test_a_refused_send_raises_the_family_of_its_status_code(gateway, client, code, family):
    answer_status(gateway, "SendSimpleTextSMS", code, info="gateway says no")

    with pytest.raises(family) as raised:
        client.send_simple_text_sms("Acme", [PHONE], "Hi")

    assert type(raised.value) is family
    assert (raised.value.endpoint, raised.value.status_code) == ("SendSimpleTextSMS", code)
    assert raised.value.status_info == "gateway says no"


def test_an_unknown_status_code_keeps_its_code_and_text(gateway, client):
    answer_status(gateway, "CheckCredits", "99", info="Something new")

    with pytest.raises(UnknownStatus) as raised:
        client.check_credits()

    assert (raised.value.status_code, raised.value.status_info) == ("99", "Something new")
    assert "99" in str(raised.value)


def test_status_0_is_success_for_delivery_inquiries(gateway, client):
    answer(gateway, "InquireDeliveryNotifications", {"StatusCode": "0", "StatusInfo": "OK"})

    assert client.inquire_delivery_notifications(["T1"]) == []


@pytest.mark.parametrize(
    ("endpoint", "call"),
    [
        ("CheckCredits", lambda c: c.check_credits()),
        ("SendTokenSMS", lambda c: c.send_token_sms(PHONE, token_reference="r")),
        ("VerifyToken", lambda c: c.verify_token(PHONE, "r", "1234")),
        ("CheckOriginatorAuthorization", lambda c: c.check_originator_authorization(PHONE)),
    ],
)
def test_status_0_is_not_success_for_any_other_operation(gateway, client, endpoint, call):
    answer(gateway, endpoint, {"StatusCode": "0", "StatusInfo": "OK", "Credits": "5"})

    with pytest.raises(UnknownStatus):
        call(client)


@pytest.mark.parametrize(("code", "expected"), [("1", True), ("36", False), ("37", False)])
def test_verify_token_answers_a_wrong_code_with_false_rather_than_an_error(
    gateway, client, code, expected
):
    answer_status(gateway, "VerifyToken", code)

    assert client.verify_token(PHONE, "vf_1", "4711") is expected


@pytest.mark.parametrize(
    ("code", "error"), [("38", TokenNotFound), ("3", GatewayAuthError), ("39", UnknownStatus)]
)
def test_verify_token_raises_for_a_missing_token_and_other_refusals(gateway, client, code, error):
    answer_status(gateway, "VerifyToken", code)

    with pytest.raises(error):
        client.verify_token(PHONE, "vf_1", "4711")


ORIGINATOR_CALLS = {
    "SendOriginatorUnlockCode": lambda c: c.send_originator_unlock_code(PHONE),
    "UnlockOriginator": lambda c: c.unlock_originator(PHONE, "1234"),
    "CheckOriginatorAuthorization": lambda c: c.check_originator_authorization(PHONE),
}
ORIGINATOR_ANSWERS = [
    ("SendOriginatorUnlockCode", "1", OriginatorState.PENDING),
    ("SendOriginatorUnlockCode", "28", OriginatorState.NO_AUTHORIZATION_NEEDED),
    ("SendOriginatorUnlockCode", "31", OriginatorState.AUTHORIZED),
    ("UnlockOriginator", "1", OriginatorState.AUTHORIZED),
    ("UnlockOriginator", "31", OriginatorState.AUTHORIZED),
    ("UnlockOriginator", "30", OriginatorState.NOT_AUTHORIZED),
    ("CheckOriginatorAuthorization", "1", OriginatorState.AUTHORIZED),
    ("CheckOriginatorAuthorization", "28", OriginatorState.NO_AUTHORIZATION_NEEDED),
    ("CheckOriginatorAuthorization", "29", OriginatorState.PENDING),
    ("CheckOriginatorAuthorization", "30", OriginatorState.NOT_AUTHORIZED),
    ("CheckOriginatorAuthorization", "31", OriginatorState.AUTHORIZED),
]


@pytest.mark.parametrize(("endpoint", "code", "state"), ORIGINATOR_ANSWERS)
def test_originator_operations_return_states_28_to_31_instead_of_raising(
    gateway, client, endpoint, code, state
):
    answer_status(gateway, endpoint, code)

    assert ORIGINATOR_CALLS[endpoint](client) is state


def test_an_invalid_originator_is_still_an_error_on_originator_operations(gateway, client):
    answer_status(gateway, "CheckOriginatorAuthorization", "10")

    with pytest.raises(OriginatorError):
        client.check_originator_authorization("ThisIsTooLongForASender")


# -- answers parsed ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "credits"), [("2321.21", "2321.21"), ("12,5", "12.5"), ("0", "0")]
)
def test_credits_are_read_as_an_exact_decimal(gateway, client, sent, credits):
    answer(gateway, "CheckCredits", {**OK, "Credits": sent})

    assert client.check_credits() == Credits(Decimal(credits))


def test_delivery_notifications_are_parsed_with_their_documented_casing(gateway, client):
    delivered = {
        "TransactionReferenceNumber": "4242", "DeliveryStatus": "0",
        "DeliveryStatusDescription": "Delivered", "SubmissionDate": "2021-01-21T13:46:28Z",
        "NotificationDate": "2021-01-21T13:46:34Z", "Reasoncode": "000",
        "ReasoncodeDescription": "",
    }  # fmt: skip
    pending = {"TransactionReferenceNumber": "4243", "DeliveryStatus": "-1", "SubmissionDate": "",
               "NotificationDate": "", "Reasoncode": ":"}  # fmt: skip
    answer(
        gateway,
        "InquireDeliveryNotifications",
        {**OK, "DeliveryNotifications": [delivered, pending]},
    )

    result = client.inquire_delivery_notifications(["4242", "4243"])

    assert result == [
        DeliveryNotification("4242", 0, "Delivered", datetime(2021, 1, 21, 13, 46, 28, tzinfo=UTC),
                             datetime(2021, 1, 21, 13, 46, 34, tzinfo=UTC), "000", ""),
        DeliveryNotification("4243", -1, "", None, None, ":", ""),
    ]  # fmt: skip


def test_voucher_entries_may_be_bare_strings_or_objects(gateway, client):
    entry = {"VoucherCode": "DEF", "Remark": "gift", "Credits": 10, "Created": "2024-01-01"}
    answer(gateway, "GetVoucherTransactions", {**OK, "vouchers": ["ABC", entry]})

    assert client.get_voucher_transactions() == [
        Voucher("ABC", None, None, None, None),
        Voucher("DEF", "gift", "10", "2024-01-01", None),
    ]


def test_create_voucher_returns_the_raw_answer_without_the_status_fields(gateway, client):
    answer(gateway, "CreateVoucher", {**OK, "VoucherCodes": ["X1", "X2"]})

    assert client.create_voucher(2, 5) == {"VoucherCodes": ["X1", "X2"]}


def test_version_info_is_returned_raw_and_needs_no_status_code(gateway, client):
    answer(gateway, "VersionInfo", {"VersionInfo": "ASPSMS JSON 1.0 build:7"})

    assert client.version_info() == {"VersionInfo": "ASPSMS JSON 1.0 build:7"}


# -- broken answers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "http_status"),
    [
        ({"status": 503, "json": OK}, 503),
        ({"status": 404, "body": "Not Found"}, 404),
        ({"status": 200, "body": "<html>maintenance</html>"}, 200),
        ({"status": 200, "json": ["1", "OK"]}, 200),
        ({"status": 200, "json": {"StatusInfo": "OK", "Credits": "1"}}, 200),
        ({"status": 200, "json": {**OK, "Credits": "lots"}}, 200),
        ({"status": 200, "json": OK}, 200),
    ],
    ids=[
        "http 503",
        "http 404",
        "not json",
        "json array",
        "no status code",
        "bad credits",
        "credits missing",
    ],
)
def test_an_answer_outside_the_protocol_raises_a_protocol_error_without_retrying(
    gateway, client, reply, http_status
):
    gateway.post(f"{BASE}/CheckCredits", **reply)

    with pytest.raises(GatewayProtocolError) as raised:
        client.check_credits()

    assert raised.value.http_status == http_status
    assert len(gateway.calls) == 1


# -- transport failures --------------------------------------------------------------------


@pytest.mark.parametrize("retries", [0, 1, 2])
def test_a_refused_connection_is_retried_connect_retries_times_then_unavailable(gateway, retries):
    fail(gateway, "SendTokenSMS", requests.ConnectionError("Connection refused"))

    with AspsmsClient(BASE, USERKEY, PASSWORD, connect_retries=retries, backoff=0) as client:
        with pytest.raises(GatewayUnavailable) as raised:
            client.send_token_sms(PHONE, token_reference="r")

    assert raised.value.reached is False
    assert len(gateway.calls) == 1 + retries


def test_by_default_a_refused_connection_is_tried_three_times_in_all(gateway):
    fail(gateway, "CheckCredits", requests.ConnectionError("Connection refused"))

    with AspsmsClient(BASE, USERKEY, PASSWORD) as client:
        with pytest.raises(GatewayUnavailable):
            client.check_credits()

    assert len(gateway.calls) == 3


def test_a_connect_timeout_is_retried_and_then_raised_with_a_known_outcome(gateway, client):
    fail(gateway, "SendTokenSMS", requests.ConnectTimeout("connect timed out"))

    with pytest.raises(GatewayTimeout) as raised:
        client.send_token_sms(PHONE, token_reference="r")

    assert raised.value.outcome_unknown is False
    assert raised.value.reached is False  # a check may release its claim unspent
    assert len(gateway.calls) == 3


ONE_OF_EACH_OPERATION = [
    ("SendTextSMS", lambda c: c.send_text_sms("A", [PHONE], "Hi"), True),
    ("SendSimpleTextSMS", lambda c: c.send_simple_text_sms("A", [PHONE], "Hi"), True),
    ("SendTokenSMS", lambda c: c.send_token_sms(PHONE, token_reference="r"), True),
    ("SendOriginatorUnlockCode", lambda c: c.send_originator_unlock_code(PHONE), True),
    ("CheckCredits", lambda c: c.check_credits(), False),
    ("VerifyToken", lambda c: c.verify_token(PHONE, "r", "1234"), False),
    ("UnlockOriginator", lambda c: c.unlock_originator(PHONE, "1234"), False),
    ("InquireDeliveryNotifications", lambda c: c.inquire_delivery_notifications(["T"]), False),
]
LOST_ANSWERS = {
    "read timeout": requests.ReadTimeout("read timed out"),
    "read timeout in body": requests.ConnectionError(ReadTimeoutError(None, BASE, "timed out")),
    "connection dropped": requests.ConnectionError(
        ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))
    ),
}


@pytest.mark.parametrize("failure", LOST_ANSWERS.values(), ids=LOST_ANSWERS.keys())
@pytest.mark.parametrize(("endpoint", "call", "unknown"), ONE_OF_EACH_OPERATION)
def test_a_lost_answer_is_never_retried_and_is_outcome_unknown_only_on_sends(
    gateway, client, endpoint, call, unknown, failure
):
    fail(gateway, endpoint, failure)

    with pytest.raises(GatewayTimeout) as raised:
        call(client)

    assert raised.value.outcome_unknown is unknown
    assert raised.value.reached is True  # the gateway may have acted, on a check too
    assert len(gateway.calls) == 1


def test_a_read_timeout_on_a_token_sms_is_outcome_unknown_after_one_request(gateway, client):
    fail(gateway, "SendTokenSMS", requests.ReadTimeout("read timed out"))

    with pytest.raises(GatewayTimeout) as raised:
        client.send_token_sms(PHONE, token_reference="r")

    assert raised.value.outcome_unknown is True
    assert len(gateway.calls) == 1


def test_a_read_timeout_on_check_credits_is_not_outcome_unknown(gateway, client):
    fail(gateway, "CheckCredits", requests.ReadTimeout("read timed out"))

    with pytest.raises(GatewayTimeout) as raised:
        client.check_credits()

    assert raised.value.outcome_unknown is False


# -- configuration and secrets ------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://json.aspsms.com", "http://10.0.0.1:8080", "http://localhost.evil.test",
     "ftp://127.0.0.1", "json.aspsms.com", "https://", ""],
)  # fmt: skip
def test_a_base_url_that_is_not_https_or_loopback_is_refused_naming_the_setting(url):
    with pytest.raises(ValueError, match="ASPSMS_URL"):
        AspsmsClient(url, USERKEY, PASSWORD)


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://json.aspsms.com/", "https://json.aspsms.com"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
        ("http://127.8.9.10/", "http://127.8.9.10"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("http://localhost:8080/", "http://localhost:8080"),
    ],
)
def test_https_and_plain_http_on_loopback_are_accepted(url, kept):
    with AspsmsClient(url, USERKEY, PASSWORD) as client:
        assert client.base_url == kept


def test_the_client_shows_its_url_and_userkey_but_never_the_password():
    with AspsmsClient(BASE, USERKEY, PASSWORD) as client:
        assert repr(client) == f"AspsmsClient(base_url='{BASE}', userkey='{USERKEY}')"
        assert PASSWORD not in str(client)


ERROR_SCENARIOS = {
    "refused credentials": {"json": {"StatusCode": "3", "StatusInfo": "Authorization failed."}},
    "unknown status": {"json": {"StatusCode": "77", "StatusInfo": "odd"}},
    "http 503": {"status": 503, "body": "down"},
    "not json": {"body": "<html>"},
    "bad shape": {"json": {**OK, "Credits": "lots"}},
    "read timeout": {"body": requests.ReadTimeout("read timed out")},
    "refused connection": {"body": requests.ConnectionError("Connection refused")},
}


@pytest.mark.parametrize("reply", ERROR_SCENARIOS.values(), ids=ERROR_SCENARIOS.keys())
def test_no_raised_error_reveals_the_password(gateway, client, reply):
    gateway.post(f"{BASE}/CheckCredits", **reply)

    with pytest.raises(GatewayError) as raised:
        client.check_credits()

    error = raised.value
    shown = [
        str(error),
        repr(error),
        repr(vars(error)),
        str(error.__cause__),
        repr(error.__cause__),
    ]
    assert not [text for text in shown if PASSWORD in text]


def test_log_lines_name_endpoint_outcome_and_status_but_no_secret_or_number(
    gateway, client, caplog
):
    answer(gateway, "SendTokenSMS")
    answer_status(gateway, "VerifyToken", "37")
    caplog.set_level("DEBUG", logger="service.gateway")

    client.send_token_sms(
        PHONE, token_reference="r", message_data="Your code", verification_code="4711"
    )
    client.verify_token(PHONE, "r", "4711")

    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2 and {r.levelname for r in caplog.records} == {"DEBUG"}
    assert lines[0].startswith("aspsms SendTokenSMS outcome=ok status=1 duration_ms=")
    assert lines[1].startswith("aspsms VerifyToken outcome=ok status=37 duration_ms=")
    assert not [s for s in (PASSWORD, PHONE, "Your code", "4711") if s in caplog.text]


CALL_OUTCOMES = {
    "ok": {"json": {**OK, "Credits": "1"}},
    "status_error": {"json": {"StatusCode": "5", "StatusInfo": "no credits"}},
    "timeout": {"body": requests.ReadTimeout("read timed out")},
    "unavailable": {"body": requests.ConnectionError("Connection refused")},
    "protocol_error": {"status": 503, "body": "down"},
}


@pytest.mark.parametrize(("outcome", "reply"), CALL_OUTCOMES.items(), ids=CALL_OUTCOMES.keys())
def test_the_on_call_hook_hears_once_per_call_with_its_outcome(gateway, outcome, reply):
    gateway.post(f"{BASE}/CheckCredits", **reply)
    heard = []

    with AspsmsClient(
        BASE, USERKEY, PASSWORD, backoff=0, on_call=lambda *a: heard.append(a)
    ) as client:
        if outcome == "ok":
            client.check_credits()
        else:
            with pytest.raises(GatewayError):
                client.check_credits()

    assert [(endpoint, label) for endpoint, label, _ in heard] == [("CheckCredits", outcome)]
    assert heard[0][2] >= 0


def test_a_failing_on_call_hook_does_not_fail_the_call(gateway, caplog):
    answer(gateway, "SendTokenSMS")

    def broken_hook(*args):
        raise RuntimeError("metrics backend down")

    with AspsmsClient(BASE, USERKEY, PASSWORD, on_call=broken_hook) as client:
        client.send_token_sms(PHONE, token_reference="r")

    assert "on_call hook failed" in caplog.text


# -- a real HTTP server on loopback --------------------------------------------------------


class _LoopbackGateway(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _KeepAliveHandler)
        self.lock = threading.Lock()
        self.connections = 0
        self.requests = 0
        self.received: list[tuple[dict, str]] = []  # (JSON body, Content-Type) per request
        self.mode = "answer"  # or "stall" (answer only when released) or "drop"
        self.release = threading.Event()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request, client_address):
        pass  # a client that gave up closed its socket; writing to it fails, as intended


class _KeepAliveHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keeps the connection open between requests
    disable_nagle_algorithm = True  # headers and body go out in separate writes

    def setup(self):
        super().setup()
        with self.server.lock:
            self.server.connections += 1  # setup runs once per accepted TCP connection

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.requests += 1
            self.server.received.append((json.loads(body), self.headers["Content-Type"]))
        if self.server.mode == "drop":
            self.close_connection = True
            return
        if self.server.mode == "stall":
            self.server.release.wait(5)
        payload = json.dumps({**OK, "Credits": "42"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format, *args):
        pass


@pytest.fixture
def loopback():
    server = _LoopbackGateway()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()
    thread.join()


def test_consecutive_calls_reuse_one_tcp_connection(loopback):
    with AspsmsClient(loopback.url, USERKEY, PASSWORD) as client:
        results = [client.check_credits() for _ in range(5)]

    assert results == [Credits(Decimal("42"))] * 5
    assert (loopback.requests, loopback.connections) == (5, 1)


def test_calls_to_one_endpoint_each_send_their_own_whole_body(loopback):
    # The request is prepared once per URL and copied per call: no body or length may
    # carry over from one call to the next.
    _transport._prepared_post.cache_clear()
    with AspsmsClient(loopback.url, USERKEY, PASSWORD) as client:
        valid = [client.verify_token("+41791234567", reference, "1234")
                 for reference in ("a", "b" * 300, "c")]
        client.check_credits()

    assert valid == [True] * 3  # the loopback answers StatusCode 1 to everything
    references = [body.get("TokenReference") for body, _ in loopback.received]
    assert references == ["a", "b" * 300, "c", None]
    assert {content_type for _, content_type in loopback.received} == {"application/json"}
    prepared = _transport._prepared_post.cache_info()
    assert (prepared.misses, prepared.hits) == (2, 2)  # once per URL, then copied


def test_a_gateway_slower_than_the_timeout_is_abandoned_quickly(loopback):
    loopback.mode = "stall"
    started = time.monotonic()

    with AspsmsClient(loopback.url, USERKEY, PASSWORD, timeout=0.3) as client:
        with pytest.raises(GatewayTimeout) as raised:
            client.send_token_sms(PHONE, token_reference="r")

    assert time.monotonic() - started < 2
    assert raised.value.outcome_unknown is True
    assert loopback.requests == 1


def test_a_connection_dropped_after_a_send_is_not_retried(loopback):
    loopback.mode = "drop"

    with AspsmsClient(loopback.url, USERKEY, PASSWORD, backoff=0) as client:
        with pytest.raises(GatewayTimeout) as raised:
            client.send_token_sms(PHONE, token_reference="r")

    assert raised.value.outcome_unknown is True
    assert loopback.requests == 1


class _CountingAdapter(HTTPAdapter):
    def __init__(self):
        super().__init__()
        self.attempts = 0

    def send(self, request, **kwargs):
        self.attempts += 1
        return super().send(request, **kwargs)


def test_a_really_refused_connection_is_retried_twice_even_for_a_send():
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    adapter = _CountingAdapter()
    session = requests.Session()
    session.mount("http://", adapter)

    url = f"http://127.0.0.1:{port}"
    with AspsmsClient(url, USERKEY, PASSWORD, session=session, backoff=0) as client:
        with pytest.raises(GatewayUnavailable):
            client.send_token_sms(PHONE, token_reference="r")

    assert adapter.attempts == 3


def test_the_environments_proxy_and_ca_bundle_are_read_once_at_start(monkeypatch):
    from service.gateway._transport import pooled_session

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/corporate.pem")
    session = pooled_session("https://json.aspsms.com")
    assert session.proxies["https"] == "http://proxy.example:3128"
    assert session.verify == "/etc/ssl/corporate.pem"
    assert session.trust_env is False  # not read again on every call
    assert pooled_session("https://internal.example").proxies.get("https") is None


def test_the_originator_operations_accept_exactly_the_statuses_that_name_a_state():
    from service.gateway import _transport, results

    for endpoint in ("SendOriginatorUnlockCode", "UnlockOriginator",
                     "CheckOriginatorAuthorization"):
        assert _transport.ACCEPTED_CODES[endpoint] == {"1", *results.ORIGINATOR_STATES}
