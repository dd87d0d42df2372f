"""Admin API and audit log: app in process, real Redis, the simulator over HTTP."""

from __future__ import annotations

import logging

import pytest

from service.admin.audit import CURSOR, STREAM_KEY, AuditLog
from service.admin.ops import AdminOps
from service.events import Event
from tests.conftest import ADMIN_KEY, CLIENT_KEY, last_code
from tests.helpers import free_port, gateway_calls, sim

NUMERIC = "+41791110001"
NUMERIC_MASKED = "+417******01"
PHONE = "+41791234567"
CLIENT_PHONE_MASKED = "+417******67"


def entries(http, admin_auth, **query) -> list[dict]:
    response = http.get("/admin/audit", query_string=query, headers=admin_auth)
    assert response.status_code == 200
    return response.get_json()["entries"]


def latest(http, admin_auth) -> dict:
    """The newest entry before this read (the read itself is audited after it)."""
    return entries(http, admin_auth, limit=1)[0]


def check_state(http, admin_auth, originator=NUMERIC):
    return http.get(f"/admin/originators/{originator}", headers=admin_auth)


def unlock(http, admin_auth, code, originator=NUMERIC):
    return http.post(f"/admin/originators/{originator}/unlock", json={"unlock_code": code},
                     headers=admin_auth)


def request_code(http, admin_auth, originator=NUMERIC):
    return http.post(f"/admin/originators/{originator}/unlock-code", headers=admin_auth)


# -- every admin route is guarded ---------------------------------------------------------
def admin_requests(app) -> list[tuple[str, str]]:
    adapter = app.url_map.bind("localhost")
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("admin."):
            continue
        url = adapter.build(rule.endpoint, {name: "x" for name in rule.arguments})
        found += [(method, url) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return found


@pytest.mark.parametrize("authorization, status", [
    (None, 401), ("Bearer", 401), ("Basic b3BzOmtleQ==", 401), ("Bearer not-a-key", 401),
    (f"Bearer {CLIENT_KEY}", 403),
])
def test_every_admin_route_refuses_a_missing_unknown_or_client_key(app, simulator,
                                                                   authorization, status):
    routes = admin_requests(app)
    assert len(routes) >= 8
    headers = {"Authorization": authorization} if authorization else {}
    http = app.test_client()
    for method, url in routes:
        response = http.open(url, method=method, headers=headers, json={})
        assert response.status_code == status, (method, url)
        assert response.mimetype == "application/problem+json"
        if status == 401:
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert gateway_calls(simulator) == {}


# -- originators --------------------------------------------------------------------------
def test_an_alphanumeric_originator_needs_no_authorization(http, admin_auth):
    response = check_state(http, admin_auth, "Seq Server")
    assert response.status_code == 200
    assert response.get_json() == {"originator": "Seq Server", "kind": "alphanumeric",
                                   "authorized": True, "state": "no_authorization_needed"}


def test_a_numeric_originator_goes_from_not_authorized_through_pending_to_authorized(
        http, admin_auth, simulator):
    assert check_state(http, admin_auth).get_json()["state"] == "not_authorized"
    assert check_state(http, admin_auth).get_json()["authorized"] is False

    sent = request_code(http, admin_auth)
    assert sent.status_code == 202
    assert sent.get_json()["state"] == "pending"
    assert check_state(http, admin_auth).get_json()["state"] == "pending"
    code = last_code(simulator, NUMERIC)

    wrong = unlock(http, admin_auth, "1" + code[1:] if code[0] != "1" else "2" + code[1:])
    assert wrong.status_code == 422
    assert wrong.get_json()["code"] == "unlock_code_rejected"
    assert check_state(http, admin_auth).get_json()["state"] == "pending"

    right = unlock(http, admin_auth, code)
    assert right.status_code == 200
    assert right.get_json() == {"originator": NUMERIC, "kind": "numeric", "authorized": True,
                                "state": "authorized"}
    assert check_state(http, admin_auth).get_json()["authorized"] is True


def test_an_unlock_code_for_an_authorized_or_alphanumeric_originator_sends_nothing(
        http, admin_auth, simulator):
    request_code(http, admin_auth)
    unlock(http, admin_auth, last_code(simulator, NUMERIC))
    sent_before = len(sim(simulator, "GET", "/_sim/messages"))
    again = request_code(http, admin_auth)
    assert again.status_code == 200 and again.get_json()["state"] == "authorized"
    alpha = request_code(http, admin_auth, "Verify")
    assert alpha.status_code == 200 and alpha.get_json()["state"] == "no_authorization_needed"
    assert len(sim(simulator, "GET", "/_sim/messages")) == sent_before


# -- an unlock code is an SMS: the phone policy, the budgets and a limit of its own --------
@pytest.mark.parametrize("number", [
    "+979123456789",   # international premium rate
    "+41900123456",    # Swiss premium rate
    "+881612345678",   # satellite (no country: not on the allow-list)
    "+33612345678",    # a mobile, but France is not allowed
])
def test_an_unlock_code_goes_only_where_a_verification_code_may_go(make_app, auth, admin_auth,
                                                                   simulator, number):
    http = make_app(OTP_ALLOWED_COUNTRIES="CH,LI").test_client()
    refused = http.post("/otp/start", json={"phone": number}, headers=auth)
    assert refused.status_code == 422
    response = request_code(http, admin_auth, number)
    assert response.status_code == 422
    assert response.get_json()["code"] == refused.get_json()["code"]
    assert gateway_calls(simulator) == {}
    assert latest(http, admin_auth)["outcome"] == refused.get_json()["code"]


@pytest.mark.parametrize("variable, reason", [
    ("OTP_BUDGET_PER_PREFIX", "prefix_budget"), ("OTP_BUDGET_PER_COUNTRY", "country_budget"),
    ("OTP_BUDGET_GLOBAL", "global_budget"),
])
def test_unlock_codes_and_verification_codes_share_the_budgets(make_app, auth, admin_auth,
                                                               simulator, variable, reason):
    http = make_app(**{variable: "2 per hour"}).test_client()
    assert request_code(http, admin_auth).status_code == 202
    same_prefix = NUMERIC[:-1] + "2"
    assert http.post("/otp/start", json={"phone": same_prefix}, headers=auth).status_code == 201
    for refused in (request_code(http, admin_auth),
                    http.post("/otp/start", json={"phone": NUMERIC[:-1] + "3"}, headers=auth)):
        assert refused.status_code == 429
        assert refused.get_json()["reason"] == reason
    assert gateway_calls(simulator) == {"SendOriginatorUnlockCode": 1, "SendTokenSMS": 1}


def test_unlock_codes_to_one_number_have_a_limit_of_their_own(http, auth, admin_auth, simulator):
    for _ in range(3):
        assert request_code(http, admin_auth).status_code == 202
    fourth = request_code(http, admin_auth)
    assert fourth.status_code == 429
    assert fourth.get_json()["reason"] == "unlock_code"
    assert int(fourth.headers["Retry-After"]) > 0
    assert gateway_calls(simulator) == {"SendOriginatorUnlockCode": 3}
    # another number, and verification codes to this one, are not held up by it
    assert request_code(http, admin_auth, NUMERIC[:-1] + "9").status_code == 202
    assert http.post("/otp/start", json={"phone": NUMERIC}, headers=auth).status_code == 201


def test_unlocking_without_a_requested_code_is_rejected(http, admin_auth):
    response = unlock(http, admin_auth, "12345678")
    assert response.status_code == 422
    assert response.get_json()["code"] == "unlock_code_rejected"


@pytest.mark.parametrize("body", [{}, {"unlock_code": ""}, {"unlock_code": 12345678},
                                  {"unlock_code": "12 34"}, {"unlock_code": "1", "x": 1}])
def test_an_unlock_body_that_fails_validation_is_refused_before_the_gateway(
        http, admin_auth, simulator, body):
    response = http.post(f"/admin/originators/{NUMERIC}/unlock", json=body, headers=admin_auth)
    assert response.status_code == 422
    assert response.get_json()["code"] == "validation_failed"
    assert gateway_calls(simulator) == {}


@pytest.mark.parametrize("originator", [
    "TwelveChars1", "12345", "+0791234567", "+41 79 111 00 01", "+123456", "+1234567890123456",
    "0041791110001", "Bad*Name", "Semi;colon", "Verify\u00e9",
])
def test_an_invalid_originator_is_refused_before_any_gateway_call(
        http, admin_auth, simulator, originator):
    for response in (check_state(http, admin_auth, originator),
                     request_code(http, admin_auth, originator),
                     unlock(http, admin_auth, "12345678", originator)):
        assert response.status_code == 422
        assert response.get_json()["code"] == "invalid_originator"
    assert gateway_calls(simulator) == {}


def test_a_url_encoded_plus_reaches_the_gateway_as_a_numeric_originator(http, admin_auth):
    response = http.get("/admin/originators/%2B41791110001", headers=admin_auth)
    assert response.get_json()["originator"] == NUMERIC
    assert response.get_json()["kind"] == "numeric"


@pytest.mark.parametrize("fault, status, code", [
    ({"http_status": 500}, 502, "upstream_error"),
    ({"non_json": True}, 502, "upstream_error"),
    ({"status_code": "9"}, 502, "upstream_auth_failed"),
    ({"status_code": "2"}, 503, "upstream_unavailable"),
    ({"status_code": "5"}, 503, "upstream_insufficient_credits"),
    ({"status_code": "10"}, 502, "upstream_rejected"),
])
def test_gateway_failures_map_as_in_the_verification_flow(http, admin_auth, simulator, fault,
                                                          status, code):
    sim(simulator, "POST", "/_sim/faults", json=fault)
    for response in (check_state(http, admin_auth), request_code(http, admin_auth),
                     unlock(http, admin_auth, "12345678"),
                     http.get("/admin/credits", headers=admin_auth)):
        assert response.status_code == status
        assert response.get_json()["code"] == code
    sim(simulator, "DELETE", "/_sim/faults")
    assert latest(http, admin_auth)["outcome"] == code


def test_a_gateway_that_does_not_answer_in_time_is_upstream_timeout(make_app, admin_auth,
                                                                    simulator):
    http = make_app(ASPSMS_TIMEOUT="0.2").test_client()
    sim(simulator, "POST", "/_sim/faults", json={"delay": 0.5})
    response = check_state(http, admin_auth)
    assert response.status_code == 504
    assert response.get_json()["code"] == "upstream_timeout"


# -- the configured originator ------------------------------------------------------------
def test_the_configured_alphanumeric_originator_is_judged_without_the_gateway(
        http, admin_auth, simulator):
    response = http.get("/admin/originator", headers=admin_auth)
    assert response.status_code == 200
    assert response.get_json() == {"originator": "Verify", "kind": "alphanumeric",
                                   "authorized": True, "state": "no_authorization_needed"}
    assert gateway_calls(simulator) == {}


def test_the_configured_numeric_originator_is_asked_at_the_gateway(make_app, admin_auth,
                                                                   simulator):
    http = make_app(ASPSMS_ORIGINATOR=NUMERIC).test_client()
    body = http.get("/admin/originator", headers=admin_auth).get_json()
    assert body == {"originator": NUMERIC, "kind": "numeric", "authorized": False,
                    "state": "not_authorized"}


# -- start-up check -----------------------------------------------------------------------
def started(make_app, **env):
    app = make_app(**env)
    check = app.extensions["otp"].admin.ops.startup_check
    if check is not None:
        check.join(5)
    return app


def test_a_numeric_originator_that_is_not_unlocked_gives_one_warning_and_a_readyz_note(
        make_app, caplog):
    caplog.set_level(logging.WARNING, logger="service.admin.ops")
    app = started(make_app, ASPSMS_ORIGINATOR=NUMERIC)
    warnings = [r for r in caplog.records if r.name == "service.admin.ops"]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert NUMERIC_MASKED in warnings[0].getMessage() and NUMERIC not in caplog.text
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["status"] == "ready"
    assert "not_authorized" in ready.get_json()["notes"][0]


def test_an_unlocked_or_alphanumeric_originator_gives_no_start_up_note(make_app, admin_auth,
                                                                       simulator, caplog):
    http = make_app().test_client()
    request_code(http, admin_auth)
    unlock(http, admin_auth, last_code(simulator, NUMERIC))
    caplog.set_level(logging.WARNING, logger="service.admin.ops")
    for env in ({"ASPSMS_ORIGINATOR": NUMERIC}, {}):
        app = started(make_app, **env)
        assert app.extensions["otp"].startup_notes == []
        assert "notes" not in app.test_client().get("/readyz").get_json()
    assert not [r for r in caplog.records if r.name == "service.admin.ops"]


def test_a_start_up_check_the_gateway_refuses_is_noted_and_the_service_stays_ready(
        make_app, simulator):
    sim(simulator, "POST", "/_sim/faults", json={"status_code": "24"})
    app = started(make_app, ASPSMS_ORIGINATOR=NUMERIC)
    ready = app.test_client().get("/readyz").get_json()
    assert ready["status"] == "ready" and "could not be checked" in ready["notes"][0]


# -- credits, verifications, lockouts -----------------------------------------------------
@pytest.mark.parametrize("balance, shown", [("1000", 1000), ("2321.21", 2321.21), ("0", 0)])
def test_credits_are_a_json_number(http, admin_auth, simulator, balance, shown):
    sim(simulator, "POST", "/_sim/reset", json={"credits": balance})
    response = http.get("/admin/credits", headers=admin_auth)
    assert response.status_code == 200
    assert response.get_json() == {"credits": shown}
    assert type(response.get_json()["credits"]) is type(shown)


def test_an_admin_reads_any_clients_verification_with_the_clients_name(http, auth, admin_auth):
    vid = http.post("/otp/start", json={"phone": PHONE}, headers=auth).get_json()["id"]
    response = http.get(f"/admin/verifications/{vid}", headers=admin_auth)
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == vid and body["client"] == "acme" and body["status"] == "pending"
    assert body["attempts_remaining"] == 5 and body["send_count"] == 1


@pytest.mark.parametrize("verification_id", ["vf_0000AAAAAAAAAAAAAAAAAAAAAA", "nonsense"])
def test_an_unknown_verification_is_not_found(http, admin_auth, verification_id):
    response = http.get(f"/admin/verifications/{verification_id}", headers=admin_auth)
    assert response.status_code == 404
    assert response.get_json()["code"] == "verification_not_found"


def test_clearing_a_lockout_lets_the_phone_check_codes_again(make_app, auth, admin_auth,
                                                             simulator):
    http = make_app(OTP_MAX_FAILURES_PER_PHONE="1").test_client()
    http.post("/otp/start", json={"phone": PHONE}, headers=auth)
    code = last_code(simulator, PHONE)
    wrong = "".join(str((int(c) + 1) % 10) for c in code)
    http.post("/otp/check", json={"phone": PHONE, "code": wrong}, headers=auth)
    locked = http.post("/otp/check", json={"phone": PHONE, "code": code}, headers=auth)
    assert locked.status_code == 429

    cleared = http.post("/admin/lockouts/clear", json={"phone": "0041 79 123 45 67"},
                        headers=admin_auth)
    assert cleared.status_code == 200
    assert cleared.get_json() == {"phone": CLIENT_PHONE_MASKED, "cleared": True}
    again = http.post("/otp/check", json={"phone": PHONE, "code": code}, headers=auth)
    assert again.status_code == 200 and again.get_json()["valid"] is True
    second = http.post("/admin/lockouts/clear", json={"phone": PHONE}, headers=admin_auth)
    assert second.get_json() == {"phone": CLIENT_PHONE_MASKED, "cleared": False}


def test_clearing_a_lockout_lifts_it_in_every_service(make_app, admin_auth, auth, simulator):
    # issue 17: lockouts are per service; the admin clears a phone's in all of them
    http = make_app(OTP_MAX_FAILURES_PER_PHONE="1").test_client()
    made = http.post("/admin/services", json={"name": "signup"}, headers=admin_auth).get_json()
    key = http.post(f"/admin/services/{made['id']}/keys", json={"name": "web"},
                    headers=admin_auth).get_json()["key"]
    signup = {"Authorization": f"Bearer {key}"}
    codes = []
    for caller in (signup, auth):
        http.post("/otp/start", json={"phone": PHONE}, headers=caller)
        codes.append(last_code(simulator, PHONE))
        wrong_check(http, caller, simulator)
    code = codes[0]  # the signup service's
    assert http.post("/otp/check", json={"phone": PHONE, "code": code},
                     headers=signup).get_json()["reason"] == "phone_locked"
    cleared = http.post("/admin/lockouts/clear", json={"phone": PHONE}, headers=admin_auth)
    assert cleared.get_json()["cleared"] is True
    assert http.post("/otp/check", json={"phone": PHONE, "code": code},
                     headers=signup).get_json()["valid"] is True


def wrong_check(http, auth, simulator):
    code = last_code(simulator, PHONE)
    wrong = "".join(str((int(c) + 1) % 10) for c in code)
    return http.post("/otp/check", json={"phone": PHONE, "code": wrong}, headers=auth)


def test_clearing_wrong_codes_below_the_threshold_says_there_was_no_lock(make_app, auth,
                                                                          admin_auth, simulator):
    http = make_app(OTP_MAX_FAILURES_PER_PHONE="3").test_client()
    http.post("/otp/start", json={"phone": PHONE}, headers=auth)
    assert wrong_check(http, auth, simulator).get_json()["valid"] is False
    cleared = http.post("/admin/lockouts/clear", json={"phone": PHONE}, headers=admin_auth)
    assert cleared.get_json() == {"phone": CLIENT_PHONE_MASKED, "cleared": False}
    assert latest(http, admin_auth)["outcome"] == "not_locked"


def test_clearing_a_lock_whose_time_is_up_says_there_was_no_lock(make_app, auth, admin_auth,
                                                                  simulator, monkeypatch):
    app = make_app(OTP_MAX_FAILURES_PER_PHONE="1")
    http = app.test_client()
    http.post("/otp/start", json={"phone": PHONE}, headers=auth)
    wrong_check(http, auth, simulator)
    verifications = app.extensions["otp"].verifications
    later = verifications.clock() + 61  # the first lock lasts 60 s
    monkeypatch.setattr(verifications, "clock", lambda: later)
    cleared = http.post("/admin/lockouts/clear", json={"phone": PHONE}, headers=admin_auth)
    assert cleared.get_json() == {"phone": CLIENT_PHONE_MASKED, "cleared": False}


@pytest.mark.parametrize("body, code", [
    ({"phone": "12"}, "invalid_phone"), ({"phone": "+41 800 000 000"}, "phone_not_sms_capable"),
    ({}, "validation_failed"), ({"phone": PHONE, "all": True}, "validation_failed"),
])
def test_a_lockout_clear_needs_a_valid_phone(http, admin_auth, body, code):
    response = http.post("/admin/lockouts/clear", json=body, headers=admin_auth)
    assert response.status_code == 422
    assert response.get_json()["code"] == code


# -- audit log ----------------------------------------------------------------------------
def test_each_admin_action_is_audited_with_key_name_masked_target_and_outcome(
        http, auth, admin_auth, simulator, redis_db):
    vid = http.post("/otp/start", json={"phone": PHONE}, headers=auth).get_json()["id"]
    check_state(http, admin_auth)
    request_code(http, admin_auth)
    unlock(http, admin_auth, "00000000")
    unlock(http, admin_auth, last_code(simulator, NUMERIC))
    http.get("/admin/credits", headers=admin_auth)
    http.get("/admin/originator", headers=admin_auth)
    http.get(f"/admin/verifications/{vid}", headers=admin_auth)
    http.post("/admin/lockouts/clear", json={"phone": PHONE}, headers=admin_auth)

    seen = [(e["actor"], e["action"], e["target"], e["outcome"])
            for e in reversed(entries(http, admin_auth))]
    assert seen == [
        ("ops", "originator.check", NUMERIC_MASKED, "not_authorized"),
        ("ops", "originator.unlock_code", NUMERIC_MASKED, "pending"),
        ("ops", "originator.unlock", NUMERIC_MASKED, "unlock_code_rejected"),
        ("ops", "originator.unlock", NUMERIC_MASKED, "authorized"),
        ("ops", "credits.check", "account", "ok"),
        ("ops", "originator.configured", "Verify", "no_authorization_needed"),
        ("ops", "verification.read", vid, "ok"),
        ("ops", "lockout.clear", CLIENT_PHONE_MASKED, "not_locked"),
    ]
    assert latest(http, admin_auth)["action"] == "audit.read"
    raw = str(redis_db.xrange(STREAM_KEY))
    assert PHONE not in raw and NUMERIC not in raw and ADMIN_KEY not in raw


def test_an_audit_entry_has_an_id_and_an_rfc3339_utc_time(http, admin_auth):
    http.get("/admin/credits", headers=admin_auth)
    entry = latest(http, admin_auth)
    assert set(entry) == {"id", "time", "actor", "actor_type", "action", "target", "outcome"}
    assert entry["time"].endswith("Z") and entry["time"][10] == "T"
    assert entry["actor_type"] == "admin"


def test_each_audit_entry_is_also_a_structured_log_line(http, admin_auth, caplog):
    caplog.set_level(logging.INFO, logger="service.audit")
    unlock(http, admin_auth, "12345678")
    record = next(r for r in caplog.records if r.name == "service.audit")
    assert record.audit["action"] == "originator.unlock"
    assert record.audit["outcome"] == "unlock_code_rejected"
    assert record.audit["target"] == NUMERIC_MASKED and record.audit["time"].endswith("Z")
    assert NUMERIC not in caplog.text and "12345678" not in caplog.text


def test_the_use_of_a_test_number_is_audited_with_the_clients_name(make_app, auth, admin_auth):
    http = make_app(OTP_TEST_NUMBERS="+41790000000=123456@2099-12-31").test_client()
    assert http.post("/otp/start", json={"phone": "+41790000000"}, headers=auth).status_code == 201
    entry = latest(http, admin_auth)
    assert (entry["actor"], entry["actor_type"], entry["action"], entry["target"]) == (
        "acme", "client", "test_number.used", "+417******00")


def test_each_check_of_a_test_number_is_audited_with_its_outcome(make_app, auth, admin_auth):
    http = make_app(OTP_TEST_NUMBERS="+41790000000=123456@2099-12-31").test_client()
    http.post("/otp/start", json={"phone": "+41790000000"}, headers=auth)
    for code in ("654321", "123456"):
        http.post("/otp/check", json={"phone": "+41790000000", "code": code}, headers=auth)
    checks = [(e["actor"], e["actor_type"], e["target"], e["outcome"])
              for e in entries(http, admin_auth, limit=10)
              if e["action"] == "test_number.checked"]
    assert checks == [("acme", "client", "+417******00", "approved"),
                      ("acme", "client", "+417******00", "rejected")]


def test_the_audit_log_pages_newest_first_without_gaps_or_repeats(http, admin_auth):
    for _ in range(5):
        http.get("/admin/credits", headers=admin_auth)
    everything = entries(http, admin_auth, limit=200)
    collected, cursor = [], None
    while True:
        query = {"limit": 2, **({"before": cursor} if cursor else {})}
        page = http.get("/admin/audit", query_string=query, headers=admin_auth).get_json()
        assert len(page["entries"]) <= 2
        collected += page["entries"]
        cursor = page["next"]
        if cursor is None:
            break
    ids = [e["id"] for e in collected]
    assert len(ids) == len(set(ids)) and ids == sorted(ids, key=_stream_order, reverse=True)
    assert ids[-len(everything):] == [e["id"] for e in everything]


def _stream_order(entry_id: str) -> tuple[int, int]:
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


@pytest.mark.parametrize("query", [{"limit": 0}, {"limit": 201}, {"limit": "many"},
                                   {"before": "yesterday"}, {"after": "1-0"}])
def test_invalid_audit_paging_is_refused(http, admin_auth, query):
    response = http.get("/admin/audit", query_string=query, headers=admin_auth)
    assert response.status_code == 422
    assert response.get_json()["code"] == "validation_failed"


@pytest.mark.parametrize("before", ["not-a-cursor", "", "1", "1-", "-1", "1-1-1", "1_1",
                                    "a-1", "\uff11-1", "1-1\n", "+1-1", "1" * 21 + "-0"])
def test_a_cursor_that_is_not_a_stream_id_is_refused(http, admin_auth, before):
    response = http.get("/admin/audit", query_string={"before": before}, headers=admin_auth)
    assert response.status_code == 422
    assert "before" in response.get_json()["errors"]


@pytest.mark.parametrize(("before", "older"), [
    ("0-0", 0), ("0-1", 0),
    ("18446744073709551615-18446744073709551615", 2), ("9" * 20 + "-" + "9" * 20, 2),
    ("00000000000000000000-00000000000000000001", 0), ("1-0", 0)])
def test_every_stream_id_openapi_allows_is_a_cursor(http, admin_auth, before, older):
    for _ in range(2):
        http.get("/admin/credits", headers=admin_auth)  # two entries (the read's comes after)
    response = http.get("/admin/audit", query_string={"before": before}, headers=admin_auth)
    assert response.status_code == 200, response.get_json()
    assert len(response.get_json()["entries"]) == older


def test_the_cursor_pattern_is_openapi_s(http):
    import yaml

    spec = yaml.safe_load(http.get("/openapi.yaml").get_data(as_text=True))
    [before] = [p for p in spec["paths"]["/admin/audit"]["get"]["parameters"]
                if p.get("name") == "before"]
    pattern = before["schema"]["pattern"]
    assert CURSOR.pattern == r"\A" + pattern.removeprefix("^").removesuffix("$") + r"\Z"


def test_the_audit_stream_is_capped(redis_db):
    log = AuditLog(redis_db, max_entries=10)
    for _ in range(300):
        log.record("ops", "credits.check", "account", "ok")
    assert redis_db.xlen(STREAM_KEY) < 300


def test_without_redis_an_admin_action_is_refused_before_the_gateway_is_called(
        make_app, admin_auth, simulator):
    http = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0").test_client()
    for response in (http.get("/admin/credits", headers=admin_auth),
                     request_code(http, admin_auth),
                     http.get("/admin/audit", headers=admin_auth)):
        assert response.status_code == 503
        assert response.get_json()["code"] == "store_unavailable"
    assert gateway_calls(simulator) == {}


def test_admin_ops_are_built_from_their_dependencies_alone(app, redis_db):
    """No app and no service registry: the domain, an audit log, an event sink, the service
    (its sender, phones and limits)."""
    import dataclasses

    published = []
    audit = AuditLog(redis_db)
    default = app.extensions["otp"].default_tenant
    tenant = dataclasses.replace(default, policy=dataclasses.replace(default.policy,
                                                                     originator="AcmeCorp"))
    ops = AdminOps(app.extensions["otp"].verifications, audit,
                   lambda name, **details: published.append((name, details)), tenant)

    assert ops.configured_originator_status("ops").authorized
    assert ops.account_credits("ops") > 0
    assert ops.clear_lockout("ops", PHONE) == {"phone": "+417******67", "cleared": False}
    assert [name for name, _ in published] == [Event.CREDITS]
    entries, _ = audit.page(10)
    assert [e.action for e in entries] == ["lockout.clear", "credits.check",
                                           "originator.configured"]
