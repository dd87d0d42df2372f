"""Issue 19: Twilio Verify v2 compatibility, driven by Twilio's own Python SDK (``twilio``)
over real HTTP against the service (werkzeug's server), with the gateway simulator.

The SDK is pointed at the service by its documented means: a custom ``HttpClient``, here
Twilio's own one with the host swapped. Every answer's JSON is validated against the schema
of its resource (tests/twilio_schemas.py, from Twilio's published description).
"""

from __future__ import annotations

import json
import re
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from tests import twilio_schemas as schemas
from tests.conftest import ADMIN_KEY, CLIENT_KEY, OTHER_KEY, last_code
from tests.helpers import PHONE, gateway_calls, start, wsgi_server

TWILIO = "https://verify.twilio.com"


class ToThisService(TwilioHttpClient):
    """Twilio's HTTP client, sending to ``base`` what it would send to verify.twilio.com;
    keeps the last answer so that its JSON can be validated."""

    def __init__(self, base: str):
        super().__init__(timeout=10)
        self.base = base
        self.last = None

    def request(self, method, url, *args, **kwargs):
        assert url.startswith(TWILIO)
        self.last = super().request(method, self.base + url.removeprefix(TWILIO),
                                    *args, **kwargs)
        return self.last

    def last_json(self, schema):
        return schemas.validate(json.loads(self.last.text), schema)


@dataclass
class Deployment:
    base: str
    account_sid: str
    service_sid: str
    simulator: object

    def client(self, password: str = CLIENT_KEY, username: str | None = None):
        http = ToThisService(self.base)
        return Client(username or self.account_sid, password, http_client=http), http

    def service(self, password: str = CLIENT_KEY):
        client, http = self.client(password)
        return client.verify.v2.services(self.service_sid), http

    def basic(self, password: str = CLIENT_KEY):
        return (self.account_sid, password)


@pytest.fixture
def deploy(make_app, simulator):
    """A running service (with environment ``overrides``), its account and service sids."""
    with ExitStack() as stack:
        def run(**overrides: str) -> Deployment:
            base = stack.enter_context(wsgi_server(make_app(**overrides)))
            ids = requests.get(base + "/admin/twilio", timeout=5,
                               headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()
            return Deployment(base, ids["account_sid"], ids["default_service_sid"], simulator)
        yield run


@pytest.fixture
def twilio(deploy):
    return deploy()


def refusal(call) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as caught:
        call()
    return caught.value


def error_body(http: ToThisService) -> dict:
    return http.last_json(schemas.ERROR)


# -- the flow ------------------------------------------------------------------------------
def test_create_a_verification_sends_the_code_and_answers_twilios_verification(twilio):
    service, http = twilio.service()
    verification = service.verifications.create(to=PHONE, channel="sms")
    body = http.last_json(schemas.VERIFICATION)
    assert http.last.status_code == 201
    assert verification.status == "pending" and verification.valid is False
    assert verification.sid.startswith("VE") and verification.service_sid == twilio.service_sid
    assert verification.account_sid == twilio.account_sid and verification.to == PHONE
    assert body["url"] == f"{twilio.base}/v2/Services/{twilio.service_sid}/Verifications/" \
                          f"{verification.sid}"
    assert len(body["send_code_attempts"]) == 1
    assert last_code(twilio.simulator, PHONE)  # the SMS went out through the gateway


def test_check_wrong_then_right_approves_once(twilio):
    service, http = twilio.service()
    verification = service.verifications.create(to=PHONE, channel="sms")
    code = last_code(twilio.simulator, PHONE)
    wrong = "000000" if code != "000000" else "111111"
    check = service.verification_checks.create(to=PHONE, code=wrong)
    http.last_json(schemas.VERIFICATION_CHECK)
    assert (check.status, check.valid, check.sid) == ("pending", False, verification.sid)
    check = service.verification_checks.create(verification_sid=verification.sid, code=code)
    http.last_json(schemas.VERIFICATION_CHECK)
    assert http.last.status_code == 200 and (check.status, check.valid) == ("approved", True)
    # single use: an approved verification is gone, as at Twilio, with our status carried
    again = refusal(lambda: service.verification_checks.create(verification_sid=verification.sid,
                                                               code=code))
    assert (again.status, again.code) == (404, 20404)
    assert "verification_status: approved" in again.msg
    assert error_body(http)["details"]["verification_status"] == "approved"


def test_fetch_by_sid_and_by_phone_number(twilio):
    service, http = twilio.service()
    created = service.verifications.create(to=PHONE, channel="sms", locale="de")
    # Twilio's sid pattern allows upper-case hex digits
    for sid in (created.sid, created.sid[:2] + created.sid[2:].upper(), PHONE):
        fetched = service.verifications(sid).fetch()
        http.last_json(schemas.VERIFICATION)
        assert (fetched.sid, fetched.status, fetched.to) == (created.sid, "pending", PHONE)


def test_cancel_ends_the_verification_and_a_fetch_then_is_twilios_404(twilio):
    service, http = twilio.service()
    created = service.verifications.create(to=PHONE, channel="sms")
    canceled = service.verifications(created.sid).update(status="canceled")
    http.last_json(schemas.VERIFICATION)
    assert canceled.status == "canceled"
    gone = refusal(service.verifications(created.sid).fetch)
    assert (gone.status, gone.code) == (404, 20404)
    assert error_body(http)["details"]["verification_status"] == "canceled"
    code = last_code(twilio.simulator, PHONE)
    gone = refusal(lambda: service.verification_checks.create(to=PHONE, code=code))
    assert (gone.code, "verification_status: canceled" in gone.msg) == (20404, True)


def test_max_check_attempts_is_60202(deploy):
    twilio = deploy(OTP_MAX_ATTEMPTS="3")
    service, http = twilio.service()
    service.verifications.create(to=PHONE, channel="sms")
    wrong = "000000" if last_code(twilio.simulator, PHONE) != "000000" else "111111"
    statuses = [service.verification_checks.create(to=PHONE, code=wrong).status
                for _ in range(3)]
    assert statuses == ["pending", "pending", "max_attempts_reached"]
    spent = refusal(lambda: service.verification_checks.create(to=PHONE, code=wrong))
    assert (spent.status, spent.code) == (429, 60202)
    assert error_body(http)["details"]["verification_status"] == "max_attempts_reached"


def test_max_send_attempts_is_60203(deploy):
    twilio = deploy(OTP_MAX_SENDS="2", OTP_RESEND_COOLDOWN="0")
    service, http = twilio.service()
    first = service.verifications.create(to=PHONE, channel="sms")
    resent = service.verifications.create(to=PHONE, channel="sms")
    assert resent.sid == first.sid and len(resent.send_code_attempts) == 2
    refused = refusal(lambda: service.verifications.create(to=PHONE, channel="sms"))
    assert (refused.status, refused.code) == (429, 60203)
    assert http.last.headers["Retry-After"]
    assert gateway_calls(twilio.simulator)["SendTokenSMS"] == 2


def test_an_expired_verification_is_twilios_404_with_expired(twilio, redis_db):
    service, http = twilio.service()
    sid = service.verifications.create(to=PHONE, channel="sms").sid
    (mapping,) = redis_db.keys("otp:*:ve:*")
    redis_db.hset(f"otp:{{{sid[2:6]}}}:v:{redis_db.get(mapping)}", "expires", "1000")
    for call in (service.verifications(sid).fetch,
                 lambda: service.verification_checks.create(verification_sid=sid, code="123456")):
        gone = refusal(call)
        assert (gone.status, gone.code) == (404, 20404)
        assert error_body(http)["details"]["verification_status"] == "expired"


@pytest.mark.parametrize("env, phones, status, code, reason", [
    ({}, [PHONE, PHONE], 429, 20429, "resend_cooldown"),  # a resend inside the cooldown
    ({"OTP_BUDGET_PER_PREFIX": "1 per hour"}, ["+41791234500", "+41791234501"], 403, 60410,
     "prefix_budget"),  # SMS pumping protection: Fraud Guard's code
    ({"OTP_ALLOWED_COUNTRIES": "CH"}, ["+4915112345678"], 403, 60605, None),  # geo permission
])
def test_limits_and_blocks_answer_twilios_codes(deploy, env, phones, status, code, reason):
    twilio = deploy(**env)
    service, http = twilio.service()
    for phone in phones[:-1]:
        service.verifications.create(to=phone, channel="sms")
    refused = refusal(lambda: service.verifications.create(to=phones[-1], channel="sms"))
    assert (refused.status, refused.code) == (status, code)
    assert error_body(http)["details"].get("reason") == reason
    if reason:
        assert int(http.last.headers["Retry-After"]) >= 1


# -- not found, credentials, refusals ------------------------------------------------------
def test_unknown_verifications_and_services_are_20404(twilio):
    service, http = twilio.service()
    for call in (service.verifications("VE" + "0" * 32).fetch,
                 service.verifications(PHONE).fetch,
                 service.verifications("no-such-sid").fetch,
                 lambda: service.verification_checks.create(to=PHONE, code="123456"),
                 lambda: service.verifications("VE" + "1" * 32).update(status="canceled")):
        missing = refusal(call)
        assert (missing.status, missing.code) == (404, 20404)
        error_body(http)
    client, http = twilio.client()
    missing = refusal(lambda: client.verify.v2.services("VA" + "0" * 32).verifications.create(
        to=PHONE, channel="sms"))
    assert (missing.status, missing.code) == (404, 20404)
    assert gateway_calls(twilio.simulator) == {}


def test_another_clients_verification_is_not_found(twilio):
    mine, _ = twilio.service()
    created = mine.verifications.create(to=PHONE, channel="sms")
    theirs, _ = twilio.service(OTHER_KEY)
    assert refusal(theirs.verifications(created.sid).fetch).code == 20404


@pytest.mark.parametrize("username, password", [
    (None, "not-a-key-0123456789"),  # a wrong secret
    ("AC" + "0" * 32, CLIENT_KEY),  # another account
    (None, ADMIN_KEY),  # an admin key is no client key
])
def test_bad_credentials_are_20003(twilio, username, password):
    client, http = twilio.client(password, username)
    refused = refusal(lambda: client.verify.v2.services(twilio.service_sid).verifications
                      .create(to=PHONE, channel="sms"))
    assert (refused.status, refused.code) == (401, 20003)
    error_body(http)
    assert http.last.headers["WWW-Authenticate"].startswith("Basic")
    assert gateway_calls(twilio.simulator) == {}


def test_a_wrong_username_says_nothing_of_whether_the_password_is_a_key(twilio):
    """Review 19 F5: the account sid is shown to admins only; without it, the answer to a
    guessed password must not tell a live key from a wrong one."""
    url = f"{twilio.base}/v2/Services/{twilio.service_sid}/Verifications"
    answers = [requests.post(url, data={"To": PHONE, "Channel": "sms"}, timeout=5,
                             auth=("AC" + "0" * 32, password)).json()
               for password in (CLIENT_KEY, "not-a-key-0123456789")]
    assert answers[0] == answers[1] and answers[0]["code"] == 20003


def test_no_credentials_are_20003(twilio):
    answer = requests.get(f"{twilio.base}/v2/Services/{twilio.service_sid}", timeout=5)
    assert (answer.status_code, answer.json()["code"]) == (401, 20003)


@pytest.mark.parametrize("options, code", [
    ({"channel": "call"}, 60223),
    ({"channel": "whatsapp"}, 60223),
    ({"channel": "pigeon"}, 60200),
    ({"channel": "sms", "custom_code": "123456"}, 60204),
    ({"channel": "sms", "amount": "10 EUR", "payee": "Acme"}, 60204),
    ({"channel": "sms", "custom_message": "Your code"}, 60204),
    ({"channel": "sms", "risk_check": "disable"}, 60204),
    ({"channel": "sms", "rate_limits": {"session_id": "x"}}, 60200),
])
def test_options_we_cannot_honour_are_refused_with_twilios_code(twilio, options, code):
    service, http = twilio.service()
    refused = refusal(lambda: service.verifications.create(to=PHONE, **options))
    assert (refused.status, refused.code) == (400, code)
    error_body(http)
    assert gateway_calls(twilio.simulator) == {}


@pytest.mark.parametrize("to, code", [("12", 60200), ("+41 44 668 18 00", 60205)])
def test_numbers_that_cannot_take_a_code_are_refused(twilio, to, code):
    service, http = twilio.service()
    refused = refusal(lambda: service.verifications.create(to=to, channel="sms"))
    assert (refused.status, refused.code) == (400, code)
    if code == 60200:
        assert "Invalid parameter: To" in refused.msg


def test_a_code_that_cannot_match_is_60200_and_spends_no_attempt(twilio):
    service, _ = twilio.service()
    service.verifications.create(to=PHONE, channel="sms")
    refused = refusal(lambda: service.verification_checks.create(to=PHONE, code="12"))
    assert (refused.status, refused.code) == (400, 60200)
    assert "Code" in refused.msg
    assert gateway_calls(twilio.simulator) == {"SendTokenSMS": 1}


# -- services ------------------------------------------------------------------------------
def admin_api(twilio, method: str, path: str, **kwargs):
    return requests.request(method, twilio.base + "/admin" + path, timeout=5,
                            headers={"Authorization": f"Bearer {ADMIN_KEY}"}, **kwargs)


def last_text(simulator, phone: str) -> str:
    messages = requests.get(simulator.url + "/_sim/messages", timeout=5).json()
    return [m for m in messages if m["recipient"] == phone][-1]["text"]


def test_create_a_service_and_verify_through_it_with_its_own_key(twilio):
    admin, http = twilio.client(ADMIN_KEY)
    created = admin.verify.v2.services.create(friendly_name="Acme Login", code_length=8)
    body = http.last_json(schemas.SERVICE)
    assert http.last.status_code == 201 and body["date_created"]
    assert (created.friendly_name, created.code_length) == ("Acme Login", 8)
    assert created.sid.startswith("VA") and created.sid != twilio.service_sid
    assert admin.verify.v2.services(created.sid).fetch().sid == created.sid
    # one of our services: in the admin API, its keys made there (audited)
    (managed,) = [s for s in admin_api(twilio, "GET", "/services").json()["services"]
                  if s["twilio_sid"] == created.sid]
    made = admin_api(twilio, "POST", f"/services/{managed['id']}/keys",
                     json={"name": "web"}).json()
    key = made["key"]
    client, _ = twilio.client(key)
    # Twilio's API key form: the key's id as the username, the account sid given apart
    as_api_key = Client(made["key_id"], key, twilio.account_sid,
                        http_client=ToThisService(twilio.base))
    service = as_api_key.verify.v2.services(created.sid)
    verification = service.verifications.create(to=PHONE, channel="sms")
    code = last_code(twilio.simulator, PHONE)
    assert len(code) == 8 and last_text(twilio.simulator, PHONE).startswith("Acme Login")
    check = client.verify.v2.services(created.sid).verification_checks.create(
        verification_sid=verification.sid, code=code)
    assert check.status == "approved"
    wrong_id = Client("key_" + "0" * 16, key, twilio.account_sid,
                      http_client=ToThisService(twilio.base))
    assert refusal(lambda: wrong_id.verify.v2.services(created.sid).verifications.create(
        to=PHONE, channel="sms")).code == 20003
    # its key is no key of the default service, whose sid it cannot use
    other = refusal(lambda: client.verify.v2.services(twilio.service_sid).verifications.create(
        to=PHONE, channel="sms"))
    assert other.code == 20404
    entries = admin_api(twilio, "GET", "/audit").json()["entries"]
    assert any(e["action"] == "service.create" and e["actor"] == "ops" for e in entries)


@pytest.mark.parametrize("options, code", [
    ({"code_length": 4}, 60200),  # fewer than six code characters: not here
    ({"psd2_enabled": True}, 60204),
    ({"custom_code_enabled": True}, 60204),
    ({"push_include_date": True}, 60204),
    ({"tts_name": "Acme"}, 60204),
    ({"skip_sms_to_landlines": False}, 60204),
])
def test_service_options_we_cannot_honour_are_refused(twilio, options, code):
    admin, http = twilio.client(ADMIN_KEY)
    refused = refusal(lambda: admin.verify.v2.services.create(friendly_name="Acme", **options))
    assert (refused.status, refused.code) == (400, code)
    error_body(http)
    assert [s["id"] for s in admin_api(twilio, "GET", "/services").json()["services"]] == [
        "default"]


def test_only_an_admin_key_creates_a_service(twilio):
    client, _ = twilio.client(CLIENT_KEY)
    refused = refusal(lambda: client.verify.v2.services.create(friendly_name="Acme"))
    assert (refused.status, refused.code) == (401, 20003)


# -- the end user, the friendly name -------------------------------------------------------
def test_rate_limits_end_user_ip_address_is_our_end_user_ip(deploy):
    twilio = deploy(OTP_LIMIT_START_PER_IP="1 per hour")
    service, http = twilio.service()
    ip = {"end_user_ip_address": "203.0.113.7"}
    service.verifications.create(to=PHONE, channel="sms", rate_limits=ip)
    limited = refusal(lambda: service.verifications.create(to="+41791234500", channel="sms",
                                                           rate_limits=ip))
    assert (limited.status, limited.code) == (429, 20429)
    assert error_body(http)["details"]["reason"] == "start_per_end_user_ip"
    service.verifications.create(to="+41791234501", channel="sms",
                                 rate_limits={"end_user_ip_address": "203.0.113.8"})
    service.verifications.create(to="+41791234502", channel="sms")  # the peer is no end user


def test_custom_friendly_name_names_the_service_in_this_text(twilio):
    service, _ = twilio.service()
    service.verifications.create(to=PHONE, channel="sms", custom_friendly_name="Shop")
    assert last_text(twilio.simulator, PHONE).startswith("Shop: ")


# -- the service resource, the account sid -------------------------------------------------
def test_fetch_the_service_with_an_admin_key(twilio):
    client, http = twilio.client(ADMIN_KEY)
    fetched = client.verify.v2.services(twilio.service_sid).fetch()
    body = http.last_json(schemas.SERVICE)
    assert (fetched.sid, fetched.account_sid, fetched.code_length) == (
        twilio.service_sid, twilio.account_sid, 6)
    assert body["links"]["verifications"] == f"{twilio.base}/v2/Services/{twilio.service_sid}" \
                                             "/Verifications"
    client, _ = twilio.client(CLIENT_KEY)
    assert refusal(client.verify.v2.services(twilio.service_sid).fetch).code == 20003


def test_the_account_sid_is_shown_to_admins_only_and_is_stable(twilio, deploy):
    answer = requests.get(twilio.base + "/admin/twilio", timeout=5,
                          headers={"Authorization": f"Bearer {CLIENT_KEY}"})
    assert answer.status_code == 403
    again = deploy()  # another process of the same deployment (same OTP_SECRET)
    assert (again.account_sid, again.service_sid) == (twilio.account_sid, twilio.service_sid)
    assert twilio.account_sid.startswith("AC") and len(twilio.account_sid) == 34


def test_public_url_names_the_resources(deploy):
    twilio = deploy(OTP_PUBLIC_URL="https://verify.example.com")
    service, _ = twilio.service()
    created = service.verifications.create(to=PHONE, channel="sms")
    assert created.url.startswith("https://verify.example.com/v2/Services/")


# -- same guarantees as /otp ---------------------------------------------------------------
def test_the_idempotency_token_replays_the_first_answer_and_sends_once(twilio):
    url = f"{twilio.base}/v2/Services/{twilio.service_sid}/Verifications"
    headers = {"I-Twilio-Idempotency-Token": "signup-42"}
    form = {"To": PHONE, "Channel": "sms"}
    first = requests.post(url, data=form, headers=headers, auth=twilio.basic(), timeout=5)
    again = requests.post(url, data=form, headers=headers, auth=twilio.basic(), timeout=5)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert schemas.validate(again.json(), schemas.VERIFICATION)["sid"] == first.json()["sid"]
    assert gateway_calls(twilio.simulator)["SendTokenSMS"] == 1
    other = requests.post(url, data={**form, "Locale": "fr"}, headers=headers,
                          auth=twilio.basic(), timeout=5)
    assert (other.status_code, other.json()["code"]) == (400, 60200)
    # review 19 F3: the message names the header this caller sent
    assert other.json()["message"].startswith("Invalid parameter: I-Twilio-Idempotency-Token")
    assert "Idempotency-Key " not in other.json()["message"]


def test_a_double_submitted_check_with_one_token_spends_one_attempt(deploy):
    twilio = deploy(OTP_MAX_ATTEMPTS="3")
    service, _ = twilio.service()
    sid = service.verifications.create(to=PHONE, channel="sms").sid
    wrong = "000000" if last_code(twilio.simulator, PHONE) != "000000" else "111111"
    url = f"{twilio.base}/v2/Services/{twilio.service_sid}/VerificationCheck"
    for _ in range(2):
        answer = requests.post(url, data={"VerificationSid": sid, "Code": wrong}, timeout=5,
                               headers={"I-Twilio-Idempotency-Token": "typed-once"},
                               auth=twilio.basic())
        assert (answer.status_code, answer.json()["status"]) == (200, "pending")
    assert answer.headers["Idempotent-Replayed"] == "true"
    statuses = [service.verification_checks.create(verification_sid=sid, code=wrong).status
                for _ in range(2)]
    assert statuses == ["pending", "max_attempts_reached"]  # the replay spent nothing


def test_v2_and_otp_share_one_verification_per_phone(twilio):
    """One domain: a start on /otp and a check on /v2 are the same verification."""
    started = start(twilio.base, {"Authorization": f"Bearer {CLIENT_KEY}"})
    assert started.status_code == 201
    service, _ = twilio.service()
    check = service.verification_checks.create(to=PHONE, code=last_code(twilio.simulator, PHONE))
    assert (check.status, check.valid) == ("approved", True)
    otp = requests.get(f"{twilio.base}/otp/verifications/{started.json()['id']}", timeout=5,
                       headers={"Authorization": f"Bearer {CLIENT_KEY}"}).json()
    assert otp["status"] == "approved"


def test_unknown_v2_paths_answer_twilios_404(twilio):
    answer = requests.get(f"{twilio.base}/v2/Services/{twilio.service_sid}/RateLimits",
                          auth=twilio.basic(), timeout=5)
    assert answer.status_code == 404
    assert schemas.validate(answer.json(), schemas.ERROR)["code"] == 20404
    assert requests.get(f"{twilio.base}/otp/nothing", timeout=5).headers[
        "Content-Type"] == "application/problem+json"


def test_the_readme_migration_snippet_works_as_written(deploy):
    """The README's "after" snippet, pasted, with the host swapped for this test's."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")
    section = readme.split("\n## Twilio Verify compatibility", 1)[1].split("\n## ", 1)[0]
    after = re.findall(r"^```python\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)[1]
    twilio = deploy(OTP_TEST_NUMBERS=f"{PHONE}=123456@2099-12-31")
    namespace = {"ACCOUNT_SID": twilio.account_sid, "CLIENT_KEY": CLIENT_KEY,
                 "SERVICE_SID": twilio.service_sid, "typed": "123456"}
    exec(after.replace("https://verify.example.com", twilio.base), namespace)  # noqa: S102
    assert namespace["approved"] is True


def test_a_ve_sid_leads_to_its_verification_in_its_own_slot_and_otp_writes_no_mapping(
        twilio, redis_db):
    """Cluster-safe: the sid names the vf_ id's hash tag, and its mapping key is in that
    slot; resolving it is one GET, no scan. /otp/* never writes it (its round trips stay)."""
    start(twilio.base, {"Authorization": f"Bearer {CLIENT_KEY}"}, phone="+41791234500")
    assert redis_db.keys("otp:*:ve:*") == []
    service, _ = twilio.service()
    sid = service.verifications.create(to=PHONE, channel="sms").sid
    (mapping,) = redis_db.keys("otp:*:ve:*")
    verification_id = redis_db.get(mapping)
    assert mapping == f"otp:{{{sid[2:6]}}}:ve:{sid[6:]}"
    assert redis_db.exists(f"otp:{{{sid[2:6]}}}:v:{verification_id}")
    assert verification_id.startswith(f"vf_{sid[2:6]}")
    assert 0 < redis_db.pttl(mapping) <= 25 * 3600 * 1000


def test_a_sid_answered_for_an_otp_started_verification_leads_back_to_it(twilio):
    """Review 19 F1: an integration migrating mid-flight has verifications started on /otp
    (or before the move); the VE sid a check by To or a fetch by number answers with must
    work as any other: fetch, check by VerificationSid, cancel."""
    otp = {"Authorization": f"Bearer {CLIENT_KEY}"}
    assert start(twilio.base, otp).status_code == 201
    service, http = twilio.service()
    code = last_code(twilio.simulator, PHONE)
    wrong = "000000" if code != "000000" else "111111"
    sid = service.verification_checks.create(to=PHONE, code=wrong).sid
    assert service.verifications(sid).fetch().status == "pending"
    http.last_json(schemas.VERIFICATION)
    check = service.verification_checks.create(verification_sid=sid, code=code)
    assert (check.sid, check.status, check.valid) == (sid, "approved", True)

    other = "+41791234577"
    assert start(twilio.base, otp, phone=other).status_code == 201
    sid = service.verifications(other).fetch().sid
    assert service.verifications(sid).update(status="canceled").status == "canceled"
    gone = refusal(lambda: service.verifications(sid).fetch())
    assert (gone.status, gone.code) == (404, 20404) and "canceled" in gone.msg


def test_a_service_sid_in_upper_case_hex_names_the_same_service(twilio):
    """Review 19 F2: Twilio's ServiceSid pattern allows upper-case hex digits, as its
    verification sids (accepted above) do; an unknown one's 20404 names the request path."""
    upper = twilio.service_sid[:2] + twilio.service_sid[2:].upper()
    client, http = twilio.client()
    verification = client.verify.v2.services(upper).verifications.create(to=PHONE, channel="sms")
    assert verification.service_sid == twilio.service_sid and http.last.status_code == 201
    admin, _ = twilio.client(ADMIN_KEY)
    assert admin.verify.v2.services(upper).fetch().sid == twilio.service_sid
    missing = refusal(lambda: client.verify.v2.services("VA" + "0" * 32).verifications.create(
        to=PHONE, channel="sms"))
    assert f"/v2/Services/VA{'0' * 32}/Verifications was not found" in missing.msg


def test_listing_updating_or_deleting_a_service_is_twilios_405(twilio):
    """Review 19: as the README says, the admin API does these; the SDK's calls get 20004."""
    client, http = twilio.client(ADMIN_KEY)
    for call in (client.verify.v2.services(twilio.service_sid).delete,
                 lambda: client.verify.v2.services(twilio.service_sid).update(friendly_name="x")):
        refused = refusal(call)
        assert (refused.status, refused.code) == (405, 20004)
        assert error_body(http)["code"] == 20004 and "GET" in http.last.headers["Allow"]
    listed = requests.get(f"{twilio.base}/v2/Services", auth=twilio.basic(ADMIN_KEY), timeout=5)
    assert (listed.status_code, listed.json()["code"]) == (405, 20004)
    attempts = requests.get(f"{twilio.base}/v2/Attempts", auth=twilio.basic(ADMIN_KEY), timeout=5)
    assert (attempts.status_code, attempts.json()["code"]) == (404, 20404)


def test_a_start_whose_sid_mapping_cannot_be_written_still_answers_its_sent_code(
        twilio, monkeypatch):
    # the SMS is out before the VE sid's mapping is written: a store failure then must not
    # turn the answer into a 503 (the caller would send again, into the resend cooldown)
    from service.errors import StoreUnavailable
    from service.verification.twilio_sids import VerificationSids

    def fails(self, verification_id):
        raise StoreUnavailable("the store did not answer")

    monkeypatch.setattr(VerificationSids, "remember", fails)
    service, http = twilio.service()
    verification = service.verifications.create(to=PHONE, channel="sms")
    assert http.last.status_code == 201 and verification.status == "pending"
    assert last_code(twilio.simulator, PHONE)
    monkeypatch.undo()
    # reachable by its number meanwhile, which writes the mapping: then by its sid too
    assert service.verifications(PHONE).fetch().sid == verification.sid
    assert service.verifications(verification.sid).fetch().status == "pending"
