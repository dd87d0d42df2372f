"""Admin web console: Flask's test client, real Redis, the simulator over HTTP."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ADMIN_KEY, CLIENT_KEY, last_code
from tests.helpers import gateway_calls, sim

NUMERIC = "+41791110003"
NUMERIC_MASKED = "+417******03"
PHONE = "+41791234567"
PHONE_MASKED = "+417******67"
SIGN_IN = "/admin/console/sign-in"
COOKIE = "otp_console"


def text(response) -> str:
    """The page's HTML, which never shows template syntax."""
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "{{" not in html and "{%" not in html
    return html


def csrf_token(response) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', text(response)).group(1)


def sign_in(http, key: str = ADMIN_KEY, **kwargs):
    token = csrf_token(http.get(SIGN_IN, **kwargs))
    return http.post(SIGN_IN, data={"key": key, "csrf_token": token}, **kwargs)


def post(http, path: str, **form):
    """Submit a form the way a signed-in browser does, with the page's CSRF token."""
    token = csrf_token(http.get("/admin/console/lockouts"))
    return http.post(path, data={**form, "csrf_token": token})


def audit_actions(app) -> list[tuple[str, str, str, str]]:
    entries, _ = app.extensions["otp_audit"].page(100)
    return [(e.actor, e.action, e.target, e.outcome) for e in reversed(entries)]


def session_data(app, http) -> dict:
    cookie = http.get_cookie(COOKIE, path="/admin")
    return app.session_interface.get_signing_serializer(app).loads(cookie.value)


@pytest.fixture
def console(http):
    """A test client signed in with the admin key named ``ops``."""
    assert sign_in(http).status_code == 303
    return http


def console_routes(app, method: str) -> list[str]:
    adapter = app.url_map.bind("localhost")
    return [adapter.build(rule.endpoint) for rule in app.url_map.iter_rules()
            if rule.endpoint.startswith("console.") and method in rule.methods]


# -- signing in ---------------------------------------------------------------------------
def test_the_sign_in_page_has_a_csrf_field_and_the_console_s_security_headers(http):
    response = http.get(SIGN_IN)
    assert response.status_code == 200
    assert 'name="key" type="password"' in text(response)
    assert csrf_token(response)
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "style-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_the_stylesheet_is_served_by_the_service_itself(http):
    page = text(http.get(SIGN_IN))
    assert re.search(r'href="/static/console\.css"', page)
    assert "http://" not in page and "https://" not in page
    with http.get("/static/console.css") as css:
        assert css.status_code == 200 and css.mimetype == "text/css"
        assert "url(" not in css.get_data(as_text=True)


def test_signing_in_keeps_the_key_s_name_not_the_key_in_a_strict_httponly_cookie(app, http):
    response = sign_in(http)
    assert response.status_code == 303 and response.headers["Location"] == "/admin/"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for flag in ("HttpOnly", "SameSite=Strict", "Path=/admin", "Expires="):
        assert flag in cookie
    assert "Secure" not in cookie
    assert ADMIN_KEY not in cookie
    data = session_data(app, http)
    assert data["admin"] == "ops" and ADMIN_KEY not in str(data)


def test_the_sign_in_page_sends_a_signed_in_admin_to_the_overview(console):
    assert console.get(SIGN_IN).headers["Location"] == "/admin/"


def test_over_https_the_cookie_is_secure_and_a_post_needs_a_same_origin_referer(app):
    http = app.test_client()
    base = {"base_url": "https://console.example"}
    refused = sign_in(http, **base)
    assert refused.status_code == 400
    assert "referrer" in text(refused)
    signed = sign_in(http, headers={"Referer": "https://console.example" + SIGN_IN}, **base)
    assert signed.status_code == 303
    assert "; Secure" in signed.headers["Set-Cookie"]


@pytest.mark.parametrize("key", ["wrong-key-0123456789", CLIENT_KEY, "", ADMIN_KEY + "x"])
def test_a_wrong_key_is_refused_and_signs_nobody_in(app, http, key):
    response = sign_in(http, key)
    assert response.status_code == 401
    assert "That is not an admin key." in text(response)
    assert http.get("/admin/").headers["Location"] == SIGN_IN
    assert audit_actions(app) == []


def test_sign_in_attempts_are_limited_per_address(http):
    for _ in range(10):
        assert sign_in(http, "wrong-key-0123456789").status_code == 401
    limited = sign_in(http)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert "Too Many Requests" in text(limited)


@pytest.mark.parametrize("path", ["/admin/", "/admin/console/originators",
                                  "/admin/console/lockouts", "/admin/console/audit"])
def test_every_page_sends_a_visitor_without_a_session_to_sign_in(app, http, path, simulator):
    assert path in console_routes(app, "GET")
    response = http.get(path)
    assert response.status_code == 303 and response.headers["Location"] == SIGN_IN
    assert gateway_calls(simulator) == {}


def test_the_page_table_above_lists_every_page_of_the_console(app):
    assert set(console_routes(app, "GET")) == {SIGN_IN, "/admin/", "/admin/console/originators",
                                               "/admin/console/lockouts", "/admin/console/audit"}


# -- the session --------------------------------------------------------------------------
@pytest.mark.parametrize("admin_keys", ["ops:rotated-key-0123456789",
                                        "root:admin-key-0123456789"])
def test_a_session_ends_when_its_key_is_rotated_or_renamed(make_app, console, admin_keys):
    cookie = console.get_cookie(COOKIE, path="/admin")
    other = make_app(OTP_ADMIN_KEYS=admin_keys).test_client()
    other.set_cookie(COOKIE, cookie.value, path="/admin")
    response = other.get("/admin/")
    assert response.status_code == 303 and response.headers["Location"] == SIGN_IN
    assert "session has ended" in text(other.get(SIGN_IN))


def test_a_session_ends_a_working_day_after_signing_in_however_busy(console):
    with console.session_transaction("/admin/") as session:
        session["since"] -= 8 * 3600 + 1
    assert console.get("/admin/").headers["Location"] == SIGN_IN


def test_signing_out_ends_the_session_and_both_are_audited(app, console):
    response = post(console, "/admin/console/sign-out")
    assert response.status_code == 303
    assert "You are signed out." in text(console.get(SIGN_IN))
    assert console.get("/admin/").headers["Location"] == SIGN_IN
    assert audit_actions(app) == [("ops", "console.sign_in", "console", "ok"),
                                  ("ops", "console.sign_out", "console", "ok")]


# -- CSRF ---------------------------------------------------------------------------------
FORM = {"originator": NUMERIC, "unlock_code": "12345678", "phone": PHONE, "key": ADMIN_KEY}


@pytest.mark.parametrize("token, reason", [(None, "The CSRF token is missing."),
                                           ("forged.token", "The CSRF token is invalid.")])
def test_every_form_post_without_a_valid_csrf_token_is_refused_and_does_nothing(
        app, console, simulator, token, reason):
    routes = console_routes(app, "POST")
    assert len(routes) == 5
    assert csrf_token(console.get("/admin/console/lockouts"))  # the session has a token
    before = audit_actions(app)
    for path in routes:
        response = console.post(path, data={**FORM, **({"csrf_token": token} if token else {})})
        assert response.status_code == 400, path
        assert reason in text(response) and "Nothing was done" in text(response)
        assert response.headers["Content-Security-Policy"]
    assert gateway_calls(simulator) == {}
    assert audit_actions(app) == before
    assert console.get("/admin/console/audit").status_code == 200  # still signed in


def test_a_sign_in_without_the_csrf_token_signs_nobody_in(http):
    response = http.post(SIGN_IN, data={"key": ADMIN_KEY})
    assert response.status_code == 400
    assert http.get("/admin/").headers["Location"] == SIGN_IN


# -- pages --------------------------------------------------------------------------------
def test_the_overview_shows_credits_and_that_an_alphanumeric_sender_needs_no_unlocking(
        app, console):
    page = text(console.get("/admin/"))
    assert re.search(r'<p class="figure">1000000(\.0+)?</p>', page)
    assert "Verify is an alphanumeric sender id: it needs no unlocking." in page
    assert ("ops", "credits.check", "account", "ok") in audit_actions(app)


def test_the_overview_offers_to_unlock_a_numeric_sender_that_is_not_authorized(make_app):
    http = make_app(ASPSMS_ORIGINATOR=NUMERIC).test_client()
    sign_in(http)
    page = text(http.get("/admin/"))
    assert f"{NUMERIC} is not authorized" in page
    assert 'href="/admin/console/originators?originator=%2B41791110003">Unlock it' in page


def test_the_overview_explains_a_gateway_failure_instead_of_failing(console, simulator):
    sim(simulator, "POST", "/_sim/faults", json={"status_code": "3"})
    response = console.get("/admin/")
    assert response.status_code == 200
    assert "refused this service&#39;s credentials" in text(response)
    assert "Check ASPSMS_USERKEY and ASPSMS_PASSWORD." in text(response)


def test_the_unlock_flow_checks_sends_a_code_refuses_a_wrong_one_and_authorizes(
        app, console, simulator):
    checked = console.get("/admin/console/originators", query_string={"originator": NUMERIC})
    assert f"{NUMERIC} is not authorized" in text(checked)
    assert "/admin/console/originators/unlock-code" in text(checked)

    sent = post(console, "/admin/console/originators/unlock-code", originator=NUMERIC)
    assert sent.status_code == 200
    assert f"An unlock code is on its way to {NUMERIC}" in text(sent)
    code = last_code(simulator, NUMERIC)
    wrong = post(console, "/admin/console/originators/unlock", originator=NUMERIC,
                 unlock_code="1" + code[1:] if code[0] != "1" else "2" + code[1:])
    assert wrong.status_code == 422
    assert "The gateway refused this unlock code." in text(wrong)
    assert 'name="unlock_code"' in text(wrong)

    right = post(console, "/admin/console/originators/unlock", originator=NUMERIC,
                 unlock_code=code)
    assert right.status_code == 200
    assert f"{NUMERIC} is authorized: SMS can be sent with it as sender." in text(right)
    assert 'name="unlock_code"' not in text(right)
    assert audit_actions(app)[1:] == [
        ("ops", "originator.check", NUMERIC_MASKED, "not_authorized"),
        ("ops", "originator.unlock_code", NUMERIC_MASKED, "pending"),
        ("ops", "originator.unlock", NUMERIC_MASKED, "unlock_code_rejected"),
        ("ops", "originator.unlock", NUMERIC_MASKED, "authorized"),
    ]


def test_a_code_not_used_yet_shows_as_pending_with_the_code_form(console):
    post(console, "/admin/console/originators/unlock-code", originator=NUMERIC)
    page = text(console.get("/admin/console/originators", query_string={"originator": NUMERIC}))
    assert f"An unlock code has been texted to {NUMERIC} and not used yet" in page
    assert 'name="unlock_code"' in page


def test_an_alphanumeric_sender_needs_no_unlocking_and_gets_no_code(console, simulator):
    page = text(post(console, "/admin/console/originators/unlock-code", originator="MyShop"))
    assert "MyShop is an alphanumeric sender id: it needs no unlocking." in page
    assert sim(simulator, "GET", "/_sim/messages") == []


@pytest.mark.parametrize("typed", ["12345", "TooLongSender1", "<script>alert(1)</script>"])
def test_an_invalid_sender_id_is_refused_before_the_gateway_and_shown_escaped(
        console, simulator, typed):
    response = console.get("/admin/console/originators", query_string={"originator": typed})
    assert response.status_code == 422
    assert "invalid_originator" in text(response)
    assert "<script>" not in text(response)
    assert gateway_calls(simulator) == {}


def test_an_unlock_code_the_api_would_refuse_is_refused_before_the_gateway(console, simulator):
    response = post(console, "/admin/console/originators/unlock", originator=NUMERIC,
                    unlock_code="12-34")
    assert response.status_code == 422
    assert "unlock code: String does not match expected pattern." in text(response)
    assert gateway_calls(simulator) == {}


@pytest.mark.parametrize("fault, status, code, words", [
    ({"http_status": 503}, 502, "upstream_error", "answered with an error"),
    ({"non_json": True}, 502, "upstream_error", "answered with an error"),
    ({"status_code": "3"}, 502, "upstream_auth_failed", "Check ASPSMS_USERKEY"),
    ({"status_code": "5"}, 503, "upstream_insufficient_credits", "Buy credits"),
    ({"status_code": "2"}, 503, "upstream_unavailable", "try again later"),
    ({"status_code": "10"}, 502, "upstream_rejected", "(gateway status 10)"),
])
def test_each_gateway_failure_has_its_own_message(console, simulator, fault, status, code,
                                                  words):
    sim(simulator, "POST", "/_sim/faults", json=fault)
    response = console.get("/admin/console/originators", query_string={"originator": NUMERIC})
    assert response.status_code == status
    assert code in text(response) and words in text(response)


def test_a_gateway_that_does_not_answer_in_time_is_a_timeout(make_app, simulator):
    http = make_app(ASPSMS_TIMEOUT="0.3").test_client()
    sign_in(http)
    sim(simulator, "POST", "/_sim/faults", json={"delay": 1})
    response = post(http, "/admin/console/originators/unlock-code", originator=NUMERIC)
    assert response.status_code == 504
    assert "upstream_timeout" in text(response) and "check the state" in text(response)


def test_a_lockout_is_cleared_and_a_phone_without_one_is_reported_as_not_locked(
        make_app, auth, simulator):
    http = make_app(OTP_MAX_FAILURES_PER_PHONE="1").test_client()
    http.post("/otp/start", json={"phone": PHONE}, headers=auth)
    code = last_code(simulator, PHONE)
    wrong = "".join(str((int(c) + 1) % 10) for c in code)
    http.post("/otp/check", json={"phone": PHONE, "code": wrong}, headers=auth)
    assert http.post("/otp/check", json={"phone": PHONE, "code": code},
                     headers=auth).status_code == 429
    sign_in(http)

    cleared = post(http, "/admin/console/lockouts", phone="0041 79 123 45 67")
    assert f"Cleared: {PHONE_MASKED} can check codes again." in text(cleared)
    again = post(http, "/admin/console/lockouts", phone=PHONE)
    assert f"{PHONE_MASKED} was not locked: nothing to clear." in text(again)
    assert PHONE not in text(again)


@pytest.mark.parametrize("phone, code", [("12", "invalid_phone"), ("", "validation_failed")])
def test_a_lockout_clear_needs_a_valid_phone(console, phone, code):
    response = post(console, "/admin/console/lockouts", phone=phone)
    assert response.status_code == 422
    assert code in text(response)


def test_the_audit_log_pages_through_entries_newest_first(app, console):
    audit = app.extensions["otp_audit"]
    for number in range(60):
        audit.record("ops", "test.action", f"target-{number:02d}", "ok")
    first = text(console.get("/admin/console/audit"))
    targets = re.findall(r"<td>(target-\d\d)</td>", first)
    assert targets == [f"target-{n:02d}" for n in range(59, 9, -1)]
    older = re.search(r'href="(/admin/console/audit\?before=[^"]+)" rel="next"', first).group(1)
    second = text(console.get(older.replace("&amp;", "&")))
    assert re.findall(r"<td>(target-\d\d)</td>", second) == [
        f"target-{n:02d}" for n in range(9, -1, -1)]
    assert "console.sign_in" in second and 'rel="next"' not in second


def test_an_audit_cursor_that_is_not_one_is_refused(console):
    response = console.get("/admin/console/audit", query_string={"before": "<x>"})
    assert response.status_code == 422
    assert "validation_failed" in text(response)


def test_json_api_requests_build_no_session_signer_and_the_console_still_signs_in(
        app, http, monkeypatch):
    built = []
    original = type(app.session_interface).get_signing_serializer

    def counting(interface, flask_app):
        built.append(flask_app)
        return original(interface, flask_app)

    monkeypatch.setattr(type(app.session_interface), "get_signing_serializer", counting)
    started = http.post("/otp/start", json={"phone": "+41791113301"},
                        headers={"Authorization": f"Bearer {CLIENT_KEY}"})
    assert started.status_code == 201 and built == []

    assert sign_in(http).status_code == 303
    assert session_data(app, http)["admin"] and built  # the cookie is signed and read


@pytest.mark.parametrize(("path", "field"), [
    ("/admin/console/lockouts", "phone"), ("/admin/console/originators/unlock-code", "originator"),
    ("/admin/console/originators/unlock", "unlock_code"), (SIGN_IN, "key")])
def test_a_form_field_that_is_not_utf_8_is_refused_as_text_not_a_500(console, path, field):
    # %ED%A0%80 is a UTF-16 surrogate in UTF-8 form: not text; the form parser replaces it
    token = csrf_token(console.get("/admin/console/lockouts"))
    body = f"{field}=%ED%A0%80&originator=Verify&csrf_token={token}"
    response = console.post(path, data=body.encode(),
                            content_type="application/x-www-form-urlencoded")
    assert response.status_code in (401, 422) and "</html>" in text(response)
