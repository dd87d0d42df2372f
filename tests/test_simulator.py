"""The ASPSMS gateway simulator, driven over HTTP the way a gateway client drives it."""

import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from service.simulator import Simulator, SimulatorServer

USER, PASSWORD = "SIMUSER", "simpass"
CREDENTIALS = {"UserName": USER, "Password": PASSWORD}
PHONE, OTHER, OWNER = "+41791234567", "+41791234568", "+41790000001"
ISO_UTC = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
ISO_CET = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0[12]:00"
ALL_TAGS = "&".join(
    f"{name}=<{name}>"
    for name in (
        "RCPNT",
        "SCTS",
        "DSCTS",
        "SCTSUTC",
        "DSCTSUTC",
        "SCTSCET",
        "DSCTSCET",
        "RSN",
        "DST",
        "TRN",
    )
)


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Gateway:
    """A minimal gateway client plus the simulator's controls, so tests read like sentences."""

    def __init__(self, session: requests.Session, url: str):
        self.session, self.url = session, url

    def post(self, operation: str, body=None, **fields) -> requests.Response:
        payload = {**CREDENTIALS, **fields} if body is None else body
        return self.session.post(f"{self.url}/{operation}", json=payload, timeout=5)

    def call(self, operation: str, **fields) -> dict:
        response = self.post(operation, **fields)
        assert response.status_code == 200
        return response.json()

    def status(self, operation: str, **fields) -> str:
        return self.call(operation, **fields)["StatusCode"]

    def send_token(self, **fields) -> str:
        return self.status("SendTokenSMS", **{"Recipients": PHONE, **fields})

    def verify(self, code: str, phone: str = PHONE, **fields) -> str:
        return self.status("VerifyToken", PhoneNumber=phone, VerificationCode=code, **fields)

    def send_text(self, recipients, text: str = "hello", **fields) -> str:
        fields = {"Originator": "Shop", "Recipients": recipients, "MessageText": text, **fields}
        return self.status("SendTextSMS", **fields)

    def credits(self) -> Decimal:
        return Decimal(self.call("CheckCredits")["Credits"])

    def inquire(self, trns: str) -> list[dict]:
        answer = self.call("InquireDeliveryNotifications", TransactionReferenceNumbers=trns)
        assert answer["StatusCode"] == "1"
        return answer["DeliveryNotifications"]

    def control(self, method: str, path: str, body=None) -> requests.Response:
        return self.session.request(method, f"{self.url}/_sim/{path}", json=body, timeout=5)

    def messages(self) -> list[dict]:
        return self.control("GET", "messages").json()


def wait_until(predicate, timeout: float = 2.0):
    """Poll briefly for something the simulator does in the background."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        assert time.monotonic() < deadline, "the simulator did not get there in time"
        time.sleep(0.005)
    return result


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def server(clock):
    simulator = SimulatorServer(clock=clock, notification_delay=0.01).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def http():
    with requests.Session() as session:
        session.trust_env = False  # never route 127.0.0.1 through an environment proxy
        yield session


@pytest.fixture(autouse=True)
def gw(server, http) -> Gateway:
    gateway = Gateway(http, server.url)
    assert gateway.control("POST", "reset").status_code == 200
    return gateway


@pytest.fixture
def start_server():
    started = []

    def start(**options) -> SimulatorServer:
        started.append(SimulatorServer(notification_delay=0.01, **options).start())
        return started[-1]

    yield start
    for simulator in started:
        simulator.stop()


class _Receiver(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.hits.put(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args):
        pass


@pytest.fixture
def receiver():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    httpd.hits = queue.Queue()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def next_callback(receiver) -> tuple[str, dict]:
    url = urlsplit(receiver.hits.get(timeout=2))
    return url.path, {name: values[0] for name, values in parse_qs(url.query).items()}


# --- envelope, credentials, transport ----------------------------------------------------


def test_version_info_answers_without_credentials(gw):
    answer = gw.post("VersionInfo", {}).json()
    assert answer == {
        "VersionInfo": "ASPSMS-Simulator 1.0 build:1",
        "StatusCode": "1",
        "StatusInfo": "OK",
    }


def test_list_all_status_codes_names_every_reference_code(gw):
    listed = gw.post("ListAllStatusCodes", {}).json()["StatusCodes"]
    assert [entry["StatusCode"] for entry in listed] == [str(n) for n in range(1, 40) if n != 27]
    assert {entry["StatusCode"]: entry["StatusInfo"] for entry in listed}["3"] == (
        "Authorization failed."
    )


def test_check_credits_returns_the_balance_as_a_string(gw):
    assert gw.call("CheckCredits") == {"Credits": "1000", "StatusCode": "1", "StatusInfo": "OK"}


@pytest.mark.parametrize(
    "credentials",
    [
        {"UserName": USER, "Password": "wrong"},
        {"UserName": "SOMEONEELSE", "Password": PASSWORD},
        {"UserName": USER},
        {},
        {"UserName": 1, "Password": 2},
    ],
)
@pytest.mark.parametrize("operation", ["CheckCredits", "SendTokenSMS", "CreateVoucher"])
def test_wrong_credentials_are_refused_with_3(gw, credentials, operation):
    body = {**credentials, "Recipients": PHONE, "NumberOfVouchers": 1, "AmountCreditsPerVoucher": 1}
    answer = gw.post(operation, body).json()
    assert answer == {"StatusCode": "3", "StatusInfo": "Authorization failed."}
    assert gw.messages() == []
    assert gw.credits() == 1000


@pytest.mark.parametrize("path", ["checkCredits", "CHECKCREDITS", "checkcredits"])
def test_operation_names_are_matched_case_insensitively(gw, path):
    assert gw.post(path).json()["Credits"] == "1000"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_the_body_is_read_as_json_whatever_the_content_type(gw, http, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    response = http.post(
        f"{gw.url}/CheckCredits", data=json.dumps(CREDENTIALS).encode(), headers=headers, timeout=5
    )
    assert response.json()["StatusCode"] == "1"


def test_a_gateway_operation_answers_only_post(gw, http):
    response = http.get(f"{gw.url}/CheckCredits", timeout=5)
    assert (response.status_code, response.headers["Allow"]) == (405, "POST")


@pytest.mark.parametrize(("use_session", "expected"), [(True, 1), (False, 5)])
def test_accepted_connections_are_counted(gw, use_session, expected):
    with requests.Session() as session:
        session.trust_env = False
        for _ in range(5):
            if not use_session:
                session.close()  # drop the pooled connection: the next call opens a new one
            assert session.post(f"{gw.url}/CheckCredits", json=CREDENTIALS, timeout=5).ok
    stats = gw.control("GET", "stats").json()
    assert stats["connections_opened"] == expected
    assert stats["calls"]["CheckCredits"] == 5


def test_keep_alive_calls_are_not_stalled_by_delayed_acks(gw):
    started = time.perf_counter()
    for _ in range(50):
        assert gw.status("CheckCredits") == "1"
    assert time.perf_counter() - started < 1.0  # a 40 ms stall per call would take 2 s


def test_the_simulator_works_without_http():
    simulator = Simulator(credits=2)
    fields = {"Originator": "Shop", "Recipients": [PHONE], "MessageText": "hi"}
    assert simulator.call("SendSimpleTextSMS", {**CREDENTIALS, **fields})["StatusCode"] == "1"
    assert simulator.call("CheckCredits", CREDENTIALS)["Credits"] == "1"
    assert [m["recipient"] for m in simulator.messages()] == [PHONE]
    simulator.close()


def test_a_stopped_simulator_refuses_connections(start_server, http):
    simulator = start_server()
    assert http.post(f"{simulator.url}/CheckCredits", json=CREDENTIALS, timeout=5).ok
    simulator.stop()
    with pytest.raises(requests.ConnectionError):
        http.post(f"{simulator.url}/CheckCredits", json=CREDENTIALS, timeout=5)


def test_a_chunked_body_is_read_like_any_other(gw, http):
    chunks = iter([b'{"UserName": "SIMUSER", ', b'"Password": "simpass"}'])
    response = http.post(f"{gw.url}/CheckCredits", data=chunks, timeout=5)
    assert response.json()["Credits"] == "1000"
    assert gw.status("CheckCredits") == "1"  # the keep-alive connection is still in step


@pytest.fixture
def cli_process():
    command = "from service.simulator import run; run(0, 'CLIKEY', 'clipass', 7)"
    process = subprocess.Popen(
        [sys.executable, "-c", command],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield process
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=5)


def test_the_command_line_simulator_prints_its_url_and_stops_on_sigterm(cli_process, http):
    url = re.search(r"http://127\.0\.0\.1:\d+", cli_process.stdout.readline()).group()
    body = {"UserName": "CLIKEY", "Password": "clipass"}
    for _ in range(3):
        assert http.post(f"{url}/CheckCredits", json=body, timeout=5).json()["Credits"] == "7"
    cli_process.send_signal(signal.SIGTERM)
    assert cli_process.wait(timeout=5) == 0
    assert cli_process.stderr.read() == ""  # no per-request logging


def test_a_restarted_simulator_keeps_its_state_and_notifies_again(start_server, http, receiver):
    simulator = start_server()
    Gateway(http, simulator.url).send_text([PHONE])
    simulator.stop()
    gateway = Gateway(http, simulator.start().url)
    assert gateway.credits() == 999
    gateway.send_text([f"{PHONE}:T1"], URLDeliveryNotification=f"{receiver.url}/n?id=")
    assert receiver.hits.get(timeout=2) == "/n?id=T1"


# --- bad requests ---------------------------------------------------------------------------

TEXT = {"Originator": "Shop", "Recipients": [PHONE], "MessageText": "hi"}
BAD_REQUESTS = [
    ("SendTextSMS", b"not json", 400, None),
    ("SendTextSMS", b"", 400, None),
    ("SendTextSMS", b'{"UserName": ', 400, None),
    ("SendTextSMS", b"\xff\xfe{", 400, None),
    ("NoSuchOperation", b"{}", 404, None),
    ("SendTextSMS", b"[]", 200, "3"),
    ("SendTextSMS", b"null", 200, "3"),
    ("SendTextSMS", {"Originator": "Shop", "Recipients": [PHONE]}, 200, "11"),
    ("SendTextSMS", {**TEXT, "MessageText": 42}, 200, "11"),
    ("SendTextSMS", {**TEXT, "MessageText": "x" * 1001}, 200, "11"),
    ("SendTextSMS", {**TEXT, "Recipients": [PHONE] * 1001}, 200, "11"),
    ("SendTextSMS", {"Originator": "Shop", "MessageText": "hi"}, 200, "20"),
    ("SendTextSMS", {**TEXT, "Recipients": []}, 200, "20"),
    ("SendTextSMS", {**TEXT, "Recipients": ""}, 200, "20"),
    ("SendTextSMS", {**TEXT, "Recipients": 41791234567}, 200, "20"),
    ("SendTextSMS", {**TEXT, "Recipients": [None, 5, "garbage"]}, 200, "20"),
    ("SendTextSMS", {"Recipients": [PHONE], "MessageText": "hi"}, 200, "10"),
    ("SendTextSMS", {**TEXT, "Originator": 42}, 200, "10"),
    ("SendTextSMS", {**TEXT, "FlashingSMS": "perhaps"}, 200, "11"),
    ("SendTextSMS", {**TEXT, "ForceGSM7bit": [True]}, 200, "11"),
    ("SendTextSMS", {**TEXT, "URLBufferedMessageNotification": "ftp://x"}, 200, "17"),
    ("SendTextSMS", {**TEXT, "URLDeliveryNotification": "not a url"}, 200, "18"),
    ("SendTextSMS", {**TEXT, "URLNonDeliveryNotification": 5}, 200, "19"),
    ("SendTextSMS", {**TEXT, "DeferredDeliveryTime": "tomorrow"}, 200, "22"),
    ("SendSimpleTextSMS", {**TEXT, "MessageText": ""}, 200, "11"),
    ("SendTokenSMS", {}, 200, "20"),
    ("SendTokenSMS", {"Recipients": PHONE, "TokenCaseSensitive": "maybe"}, 200, "11"),
    ("SendTokenSMS", {"Recipients": PHONE, "TokenMask": 5}, 200, "11"),
    ("SendTokenSMS", {"Recipients": PHONE, "MessageData": ["x"]}, 200, "11"),
    ("SendTokenSMS", {"Recipients": PHONE, "TokenValidity": {}}, 200, "11"),
    ("VerifyToken", {"PhoneNumber": PHONE}, 200, "11"),
    ("VerifyToken", {"VerificationCode": "1234"}, 200, "20"),
    ("VerifyToken", {"PhoneNumber": {}, "VerificationCode": "1234"}, 200, "20"),
    ("InquireDeliveryNotifications", {"TransactionReferenceNumbers": []}, 200, "23"),
    ("CreateVoucher", {"NumberOfVouchers": "many", "AmountCreditsPerVoucher": "1"}, 200, "11"),
    ("RedeemVoucher", {}, 200, "11"),
    ("UnlockOriginator", {"Originator": OWNER}, 200, "11"),
    ("CheckOriginatorAuthorization", {}, 200, "10"),
]


@pytest.mark.parametrize(("operation", "body", "http_status", "status_code"), BAD_REQUESTS)
def test_bad_requests_are_refused_without_a_trace(
    gw, http, operation, body, http_status, status_code
):
    data = body if isinstance(body, bytes) else json.dumps({**CREDENTIALS, **body}).encode()
    response = http.post(f"{gw.url}/{operation}", data=data, timeout=5)
    assert response.status_code == http_status
    if status_code is not None:
        assert response.json()["StatusCode"] == status_code
    assert gw.status("CheckCredits") == "1"  # still answering
    assert gw.messages() == []
    assert gw.credits() == 1000


# --- tokens -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mask", "shape"),
    [
        ("######", r"\d{6}"),
        ("AAAAAA", r"[A-Z]{6}"),
        ("NNNN", r"[A-Z0-9]{4}"),
        ("### ###", r"\d{3} \d{3}"),
        ("ab-##x", r"ab-\d\dx"),
        ("", r"[A-Z0-9]{4}"),
        (None, r"[A-Z0-9]{4}"),
    ],
)
def test_a_generated_code_follows_the_mask(gw, mask, shape):
    assert gw.send_token(**({} if mask is None else {"TokenMask": mask})) == "1"
    code = gw.messages()[-1]["code"]
    assert re.fullmatch(shape, code)
    assert gw.verify(code) == "1"


def test_generated_codes_differ_between_sends(gw):
    for reference in ("a", "b"):
        gw.send_token(TokenMask="##########", TokenReference=reference)
    assert len({message["code"] for message in gw.messages()}) == 2


def test_an_explicit_verification_code_is_sent_as_is(gw):
    assert gw.send_token(VerificationCode="qL1x!", TokenMask="######") == "1"
    assert (gw.messages()[-1]["code"], gw.messages()[-1]["text"]) == ("qL1x!", "qL1x!")
    assert gw.verify("qL1x!") == "1"


@pytest.mark.parametrize(
    ("template", "text"),
    [
        ("Your code: <VERIFICATIONCODE>.", "Your code: 4711."),
        ("No placeholder here", "4711"),
        ("", "4711"),
        (None, "4711"),
    ],
)
def test_the_message_template_carries_the_code(gw, template, text):
    fields = {} if template is None else {"MessageData": template}
    gw.send_token(VerificationCode="4711", **fields)
    assert gw.messages()[-1]["text"] == text


@pytest.mark.parametrize(("sender", "expected"), [(None, PHONE), ("", PHONE), ("Shop", "Shop")])
def test_a_token_sms_is_sent_from_the_originator_or_else_the_recipient(gw, sender, expected):
    gw.send_token(**({} if sender is None else {"Originator": sender}))
    assert gw.messages()[-1]["originator"] == expected


def test_a_token_sms_from_a_locked_numeric_originator_is_refused_with_30(gw):
    assert gw.send_token(Originator=OWNER, VerificationCode="1234") == "30"
    assert gw.verify("1234") == "38"


def test_a_wrong_code_is_refused_with_37(gw):
    gw.send_token(VerificationCode="1234")
    assert gw.verify("4321") == "37"
    assert gw.verify("1234") == "1"


@pytest.mark.parametrize(("phone", "reference"), [(OTHER, ""), (PHONE, "other"), ("junk", "")])
def test_an_unknown_token_is_not_found(gw, phone, reference):
    gw.send_token(VerificationCode="1234")
    assert gw.verify("1234", phone=phone, TokenReference=reference) == "38"


@pytest.mark.parametrize(
    ("validity", "elapsed", "expected"),
    [(None, 299, "1"), (None, 300, "38"), ("2", 119, "1"), ("2", 120, "38"), (1, 61, "38")],
)
def test_a_token_expires_after_its_validity_in_minutes(gw, clock, validity, elapsed, expected):
    gw.send_token(
        VerificationCode="1234", **({} if validity is None else {"TokenValidity": validity})
    )
    clock.advance(elapsed)
    assert gw.verify("1234") == expected


def test_advancing_the_clock_over_http_expires_tokens(gw):
    gw.send_token(VerificationCode="1234")
    assert gw.control("POST", "clock", {"advance": 300}).json() == {"offset": 300}
    assert gw.verify("1234") == "38"


@pytest.mark.parametrize("validity", ["abc", "0", -1, True, [5]])
def test_an_invalid_validity_is_refused_with_11(gw, validity):
    assert gw.send_token(TokenValidity=validity) == "11"
    assert gw.messages() == []


@pytest.mark.parametrize(
    ("flag", "attempt", "expected"),
    [
        (None, "abcd", "1"),
        (False, "abcd", "1"),
        ("false", "abcd", "1"),
        ("False", "abcd", "1"),
        ("0", "abcd", "1"),
        (0, "abcd", "1"),
        (True, "abcd", "37"),
        ("true", "abcd", "37"),
        ("True", "abcd", "37"),
        ("1", "abcd", "37"),
        (1, "abcd", "37"),
        (True, "AbCd", "1"),
    ],
)
def test_codes_compare_case_insensitively_unless_told_otherwise(gw, flag, attempt, expected):
    gw.send_token(VerificationCode="AbCd", **({} if flag is None else {"TokenCaseSensitive": flag}))
    assert gw.verify(attempt) == expected


def test_a_second_token_for_the_same_number_and_reference_replaces_the_first(gw):
    gw.send_token(VerificationCode="1111", TokenReference="login")
    gw.send_token(Recipients="0041 79 123 45 67", VerificationCode="2222", TokenReference="login")
    assert gw.verify("1111", TokenReference="login") == "37"
    assert gw.verify("2222", TokenReference="login") == "1"


def test_tokens_with_different_references_live_side_by_side(gw):
    gw.send_token(VerificationCode="1111", TokenReference="login")
    gw.send_token(VerificationCode="2222", TokenReference="payment")
    assert gw.verify("1111", TokenReference="login") == "1"
    assert gw.verify("2222", TokenReference="payment") == "1"


def test_the_phone_number_is_normalised_before_verifying(gw):
    gw.send_token(Recipients="0041 79 123 45 67", VerificationCode="1234")
    assert gw.messages()[-1]["recipient"] == PHONE
    assert gw.verify("1234", phone="+41 79 123 45 67") == "1"


def test_a_verified_token_answers_1_again_for_any_code(gw):
    gw.send_token(VerificationCode="1234")
    assert gw.verify("1234") == "1"
    assert gw.verify("9999") == "1"


def test_the_switch_makes_a_repeated_verification_answer_39(start_server, http):
    gateway = Gateway(http, start_server(repeat_verify_code="39").url)
    gateway.send_token(VerificationCode="1234")
    assert [gateway.verify("1234"), gateway.verify("1234"), gateway.verify("9999")] == [
        "1",
        "39",
        "39",
    ]


# --- credits and vouchers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "force_gsm", "parts"),
    [
        ("a" * 160, None, 1),
        ("a" * 161, None, 2),
        ("a" * 306, None, 2),
        ("a" * 307, None, 3),
        ("€" * 80, None, 1),
        ("€" * 81, None, 2),
        ("ж" * 70, None, 1),
        ("ж" * 71, None, 2),
        ("ж" * 134, None, 2),
        ("ж" * 135, None, 3),
        ("ж" * 160, True, 1),
    ],
)
def test_credits_fall_per_recipient_and_message_part(gw, text, force_gsm, parts):
    fields = {} if force_gsm is None else {"ForceGSM7bit": force_gsm}
    assert gw.send_text([PHONE, OTHER], text, **fields) == "1"
    assert gw.credits() == 1000 - 2 * parts


def test_a_token_sms_is_charged_like_a_text(gw):
    gw.send_token(VerificationCode="1234", MessageData="x" * 200 + "<VERIFICATIONCODE>")
    assert gw.credits() == 998


def test_too_few_credits_are_refused_with_5_and_send_nothing(gw):
    gw.control("POST", "reset", {"credits": 3})
    assert gw.send_text([PHONE, OTHER], "a" * 200) == "5"
    four_parts = "x" * 600 + "<VERIFICATIONCODE>"
    assert gw.send_token(VerificationCode="1234", MessageData=four_parts) == "5"
    assert (gw.credits(), gw.messages(), gw.verify("1234")) == (3, [], "38")


def test_vouchers_move_credits_and_can_be_redeemed_once(gw):
    created = gw.call(
        "CreateVoucher", NumberOfVouchers="2", AmountCreditsPerVoucher="10.5", Remarks="gift"
    )
    codes = created["VoucherCodes"]
    assert (created["StatusCode"], len(set(codes)), gw.credits()) == ("1", 2, 979)
    assert gw.status("RedeemVoucher", RedeemCode=codes[0]) == "1"
    assert gw.status("RedeemVoucher", RedeemCode=codes[0]) == "11"
    assert gw.credits() == Decimal("989.5")
    listed = {v["VoucherCode"]: v for v in gw.call("GetVoucherTransactions")["vouchers"]}
    assert set(listed) == set(codes)
    assert {k: listed[codes[1]][k] for k in ("Remark", "Credits", "Redeemed")} == {
        "Remark": "gift",
        "Credits": "10.5",
        "Redeemed": "",
    }
    assert re.fullmatch(ISO_UTC, listed[codes[0]]["Redeemed"])
    assert re.fullmatch(ISO_UTC, listed[codes[0]]["Created"])


def test_an_unknown_voucher_is_refused_with_11(gw):
    assert gw.status("RedeemVoucher", RedeemCode="NOSUCHCODE") == "11"
    assert gw.credits() == 1000


def test_vouchers_beyond_the_balance_are_refused_with_5(gw):
    assert gw.status("CreateVoucher", NumberOfVouchers=2, AmountCreditsPerVoucher=600) == "5"
    assert (gw.credits(), gw.call("GetVoucherTransactions")["vouchers"]) == (1000, [])


@pytest.mark.parametrize(
    "fields",
    [
        {"NumberOfVouchers": "0", "AmountCreditsPerVoucher": "1"},
        {"NumberOfVouchers": "1.5", "AmountCreditsPerVoucher": "1"},
        {"NumberOfVouchers": "1", "AmountCreditsPerVoucher": "-1"},
        {"NumberOfVouchers": "1"},
        {"NumberOfVouchers": 1, "AmountCreditsPerVoucher": 1, "Remarks": 7},
    ],
)
def test_an_invalid_voucher_request_is_refused_with_11(gw, fields):
    assert gw.status("CreateVoucher", **fields) == "11"
    assert gw.credits() == 1000


# --- originators ----------------------------------------------------------------------------


def test_a_locked_numeric_originator_cannot_send(gw):
    assert gw.send_text([PHONE], Originator=OWNER) == "30"
    assert gw.messages() == []


def test_the_originator_unlock_flow_works_end_to_end(gw):
    def check():
        return gw.status("CheckOriginatorAuthorization", Originator=OWNER)

    assert check() == "30"
    assert gw.status("SendOriginatorUnlockCode", Originator="0041 79 000 00 01") == "1"
    assert check() == "29"
    unlock = gw.messages()[-1]
    assert (unlock["recipient"], unlock["operation"]) == (OWNER, "SendOriginatorUnlockCode")
    assert re.fullmatch(r"\d{8}", unlock["code"]) and unlock["code"] in unlock["text"]
    assert gw.status("UnlockOriginator", Originator=OWNER, UnlockCode="00000000") == "30"
    assert check() == "29"
    assert gw.status("UnlockOriginator", Originator=OWNER, UnlockCode=unlock["code"]) == "1"
    assert check() == "31"
    assert gw.status("UnlockOriginator", Originator=OWNER, UnlockCode=unlock["code"]) == "31"
    assert gw.send_text([PHONE], Originator=OWNER) == "1"
    assert gw.messages()[-1]["originator"] == OWNER


@pytest.mark.parametrize(
    "operation", ["CheckOriginatorAuthorization", "SendOriginatorUnlockCode", "UnlockOriginator"]
)
def test_an_alphanumeric_originator_needs_no_authorization(gw, operation):
    assert gw.status(operation, Originator="Shop", UnlockCode="12345678") == "28"


@pytest.mark.parametrize("originator", ["ABCDEFGHIJKL", "bad#char", "", "   ", 42, "+41 79 12"])
def test_an_invalid_originator_is_refused_with_10(gw, originator):
    assert gw.send_text([PHONE], Originator=originator) == "10"
    assert gw.status("CheckOriginatorAuthorization", Originator=originator) == "10"


def test_preauthorized_originators_can_send_right_away(start_server, http):
    gateway = Gateway(http, start_server(authorized_originators=[OWNER]).url)
    assert gateway.send_text([PHONE], Originator=OWNER) == "1"
    assert gateway.status("CheckOriginatorAuthorization", Originator=OWNER) == "31"


# --- recipients, message log ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("recipients", "expected"),
    [
        ([PHONE], [(PHONE, None)]),
        (f"{PHONE};{OTHER}", [(PHONE, None), (OTHER, None)]),
        (f"{PHONE}, {OTHER}", [(PHONE, None), (OTHER, None)]),
        ("0041 79 123 45 67", [(PHONE, None)]),
        ([f"{PHONE}:T1", f"{OTHER}:T2"], [(PHONE, "T1"), (OTHER, "T2")]),
        ([PHONE, "garbage", "12345"], [(PHONE, None)]),
    ],
)
def test_recipients_are_read_from_arrays_and_strings(gw, recipients, expected):
    assert (
        gw.status("SendSimpleTextSMS", Originator="Shop", Recipients=recipients, MessageText="hi")
        == "1"
    )
    assert [(m["recipient"], m["trn"]) for m in gw.messages()] == expected


def test_the_message_log_lists_messages_newest_last_and_can_be_cleared(gw):
    gw.send_text([f"{PHONE}:T1"], "first")
    gw.send_token(Recipients=OTHER, VerificationCode="4711", TokenReference="login")
    first, second = gw.messages()
    assert re.fullmatch(ISO_UTC, first.pop("time"))
    assert first == {
        "recipient": PHONE,
        "text": "first",
        "code": None,
        "originator": "Shop",
        "operation": "SendTextSMS",
        "token_reference": None,
        "trn": "T1",
    }
    assert (second["code"], second["token_reference"], second["operation"]) == (
        "4711",
        "login",
        "SendTokenSMS",
    )
    only_other = gw.session.get(f"{gw.url}/_sim/messages?recipient={OTHER}", timeout=5).json()
    assert [m["recipient"] for m in only_other] == [OTHER]
    assert gw.control("DELETE", "messages").json() == {"cleared": 2}
    assert gw.messages() == []


def test_reset_restores_a_fresh_gateway(gw):
    gw.send_text([PHONE])
    gw.control("POST", "faults", {"delay": 0.01})
    gw.control("POST", "delivery", {"numbers": {PHONE: {"outcome": "failed"}}})
    stats = gw.control("POST", "reset", {"credits": 5}).json()
    assert stats == {
        "connections_opened": 0,
        "calls": {**stats["calls"], "CheckCredits": 0},
        "credits": "5",
    }
    assert set(stats["calls"].values()) == {0}
    assert (gw.messages(), gw.control("GET", "faults").json()) == ([], {"fault": None})


@pytest.mark.parametrize(
    ("method", "path", "status"), [("GET", "nothing", 404), ("GET", "reset", 405)]
)
def test_unknown_control_requests_are_refused(gw, method, path, status):
    assert gw.control(method, path).status_code == status


# --- delivery -------------------------------------------------------------------------------


def test_the_delivery_of_a_tracked_message_can_be_inquired(gw):
    gw.send_text([f"{PHONE}:T1"])
    row = wait_until(lambda: [r for r in gw.inquire("T1") if r["DeliveryStatus"] == "0"])[0]
    assert re.fullmatch(ISO_UTC, row.pop("SubmissionDate"))
    assert re.fullmatch(ISO_UTC, row.pop("NotificationDate"))
    assert row == {
        "TransactionReferenceNumber": "T1",
        "DeliveryStatus": "0",
        "DeliveryStatusDescription": "Delivered",
        "Reasoncode": "000",
        "ReasoncodeDescription": "",
    }


def test_a_message_not_yet_delivered_is_reported_as_not_submitted(gw):
    gw.control("POST", "delivery", {"delay": 60})
    gw.send_text([f"{PHONE}:T1", f"{OTHER}:T2"])
    rows = gw.inquire("T1;T2")
    assert [(r["TransactionReferenceNumber"], r["DeliveryStatus"]) for r in rows] == [
        ("T1", "-1"),
        ("T2", "-1"),
    ]
    assert rows[0]["NotificationDate"] == ""


def test_a_deferred_message_waits_for_its_time(gw):
    gw.send_text([f"{PHONE}:T1"], DeferredDeliveryTime="2099-01-01T10:00:00.000Z")
    gw.send_text([f"{PHONE}:T2"])
    wait_until(lambda: gw.inquire("T2")[0]["DeliveryStatus"] == "0")
    assert gw.inquire("T1")[0]["DeliveryStatus"] == "-1"


def test_a_failed_delivery_is_inquired_with_its_reason(gw):
    gw.control("POST", "delivery", {"numbers": {PHONE: {"outcome": "failed", "reason": 107}}})
    gw.send_text([f"{PHONE}:T1"])
    row = wait_until(lambda: [r for r in gw.inquire("T1") if r["DeliveryStatus"] == "2"])[0]
    assert (row["Reasoncode"], row["ReasoncodeDescription"]) == ("107", "Absent subscriber")


def test_an_unknown_trn_has_no_entry(gw):
    assert gw.inquire("NOSUCHTRN") == []


@pytest.mark.parametrize("trns", ["", " ; ", None])
def test_an_inquiry_without_trn_is_refused_with_23(gw, trns):
    answer = gw.call("InquireDeliveryNotifications", TransactionReferenceNumbers=trns)
    assert answer["StatusCode"] == "23"


@pytest.mark.parametrize(
    "spec",
    [
        {"numbers": {PHONE: {"outcome": "exploded"}}},
        {"numbers": {"garbage": {"outcome": "failed"}}},
        {"numbers": {PHONE: {"outcome": "failed", "reason": "7"}}},
        {"delay": -1},
        {"surprise": True},
    ],
)
def test_an_invalid_delivery_setting_is_refused_with_400(gw, spec):
    assert gw.control("POST", "delivery", spec).status_code == 400


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (None, [("/delivered", "0", "000")]),
        ({"outcome": "failed", "reason": "107"}, [("/failed", "2", "107")]),
        (
            {"outcome": "buffered_then_delivered"},
            [("/buffered", "1", "107"), ("/delivered", "0", "000")],
        ),
    ],
)
def test_notification_callbacks_report_each_outcome(gw, receiver, outcome, expected):
    if outcome is not None:
        gw.control("POST", "delivery", {"numbers": {PHONE: outcome}, "delay": 0.03})
    urls = {
        f"URL{kind}Notification": f"{receiver.url}/{path}?{ALL_TAGS}"
        for kind, path in [
            ("BufferedMessage", "buffered"),
            ("Delivery", "delivered"),
            ("NonDelivery", "failed"),
        ]
    }
    assert gw.send_text([f"{PHONE}:T42"], **urls) == "1"
    callbacks = [next_callback(receiver) for _ in expected]
    assert [(path, tags["DST"], tags["RSN"]) for path, tags in callbacks] == expected
    assert receiver.hits.empty()
    for _, tags in callbacks:
        assert (tags["RCPNT"], tags["TRN"]) == (PHONE, "T42")
        assert all(re.fullmatch(ISO_UTC, tags[name]) for name in ("SCTSUTC", "DSCTSUTC"))
        assert all(re.fullmatch(ISO_CET, tags[name]) for name in ("SCTSCET", "DSCTSCET"))
        assert all(re.fullmatch(r"\d{14}", tags[name]) for name in ("SCTS", "DSCTS"))


def test_a_callback_url_without_tags_gets_the_trn_appended(gw, receiver):
    gw.send_token(Recipients=f"{PHONE}:T7", URLDeliveryNotification=f"{receiver.url}/n?id=")
    assert receiver.hits.get(timeout=2) == "/n?id=T7"


def test_a_lost_notification_updates_the_inquiry_but_calls_nobody(gw, receiver):
    gw.control("POST", "delivery", {"numbers": {PHONE: {"outcome": "lost"}}})
    url = f"{receiver.url}/delivered?{ALL_TAGS}"
    gw.send_text([f"{PHONE}:T1"], URLDeliveryNotification=url)
    gw.send_text([f"{OTHER}:T2"], URLDeliveryNotification=url)
    assert next_callback(receiver)[1]["RCPNT"] == OTHER
    assert gw.inquire("T1")[0]["DeliveryStatus"] == "0"
    assert receiver.hits.empty()


# --- faults ---------------------------------------------------------------------------------


def test_a_delay_fault_answers_normally_after_the_delay(gw):
    gw.control("POST", "faults", {"delay": 0.2, "endpoints": ["SendTokenSMS"]})
    started = time.perf_counter()
    assert gw.send_token(VerificationCode="1234") == "1"
    assert time.perf_counter() - started >= 0.2
    assert gw.verify("1234") == "1"


@pytest.mark.parametrize(
    ("fault", "http_status", "status_code"),
    [
        ({"http_status": 503}, 503, None),
        ({"non_json": True}, 200, None),
        ({"http_status": 502, "non_json": True}, 502, None),
        ({"status_code": "5"}, 200, "5"),
        ({"delay": 0.01, "status_code": 24}, 200, "24"),
    ],
)
def test_a_fault_answers_without_changing_state(gw, fault, http_status, status_code):
    assert gw.control("POST", "faults", fault).status_code == 200
    response = gw.post("SendTokenSMS", Recipients=PHONE, VerificationCode="1234")
    assert response.status_code == http_status
    if status_code is None:
        with pytest.raises(ValueError):
            response.json()
    else:
        assert response.json()["StatusCode"] == status_code
    gw.control("DELETE", "faults")
    assert (gw.messages(), gw.credits(), gw.verify("1234")) == ([], 1000, "38")


def test_a_fault_applies_only_to_its_endpoints(gw):
    gw.control("POST", "faults", {"http_status": 503, "endpoints": ["sendtokensms"]})
    assert gw.post("CheckCredits").status_code == 200
    assert gw.post("SendTokenSMS", Recipients=PHONE).status_code == 503


def test_a_fault_with_a_count_fails_that_many_calls(gw):
    gw.control("POST", "faults", {"status_code": "24", "count": 2})
    assert [gw.status("CheckCredits") for _ in range(3)] == ["24", "24", "1"]
    assert gw.control("GET", "faults").json() == {"fault": None}


def test_a_cleared_fault_stops_failing(gw):
    gw.control("POST", "faults", {"http_status": 503})
    assert gw.post("CheckCredits").status_code == 503
    gw.control("DELETE", "faults")
    assert gw.post("CheckCredits").status_code == 200


def test_faulted_calls_are_counted_too(gw):
    gw.control("POST", "faults", {"http_status": 503, "count": 1})
    gw.post("SendTokenSMS", Recipients=PHONE)
    gw.post("SendTokenSMS", Recipients=PHONE)
    stats = gw.control("GET", "stats").json()
    assert (stats["calls"]["SendTokenSMS"], stats["credits"]) == (2, "999")


@pytest.mark.parametrize(
    "fault",
    [
        {},
        {"count": 2},
        {"http_status": "503"},
        {"http_status": 99},
        {"non_json": "yes"},
        {"status_code": "five"},
        {"delay": -1},
        {"endpoints": ["NoSuchOperation"]},
        {"http_status": 503, "count": 0},
        {"http_status": 503, "surprise": 1},
    ],
)
def test_an_invalid_fault_is_refused_with_400(gw, fault):
    assert gw.control("POST", "faults", fault).status_code == 400
    assert gw.post("CheckCredits").status_code == 200
