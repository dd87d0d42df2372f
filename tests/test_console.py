"""Admin web console: Flask's test client, real Redis, the simulator over HTTP."""

from __future__ import annotations

import hashlib
import re

import pytest

from service.admin.console_sessions import ABSOLUTE_SECONDS, IDLE_SECONDS, KEY_PREFIX
from tests.conftest import ADMIN_KEY, CLIENT_KEY, last_code
from tests.helpers import free_port, gateway_calls, sim

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
    entries, _ = app.extensions["otp"].admin.audit.page(100)
    return [(e.actor, e.action, e.target, e.outcome) for e in reversed(entries)]


def session_data(app, http) -> dict:
    cookie = http.get_cookie(COOKIE, path="/admin")
    return app.session_interface.get_signing_serializer(app).loads(cookie.value)


class Clock:
    """The console sessions' clock, moved by hand."""

    def __init__(self, app):
        self.now = 1_800_000_000.0
        app.extensions["otp"].admin.console_sessions.clock = lambda: self.now


@pytest.fixture
def console(http):
    """A test client signed in with the admin key named ``ops``."""
    assert sign_in(http).status_code == 303
    return http


def console_routes(app, method: str) -> list[str]:
    adapter = app.url_map.bind("localhost")
    values = {"service_id": "default", "key_id": "key_0000000000000000"}
    return [adapter.build(rule.endpoint, {name: values[name] for name in rule.arguments})
            for rule in app.url_map.iter_rules()
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


def test_signing_in_keeps_only_a_session_id_in_a_strict_httponly_cookie(app, http, redis_db):
    response = sign_in(http)
    assert response.status_code == 303 and response.headers["Location"] == "/admin/"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for flag in ("HttpOnly", "SameSite=Strict", "Path=/admin", "Expires="):
        assert flag in cookie
    assert "Secure" not in cookie
    assert ADMIN_KEY not in cookie
    data = session_data(app, http)
    assert set(data) == {"sid", "_permanent"}  # the CSRF token joins on the next page
    assert "ops" not in str(data) and ADMIN_KEY not in str(data)
    # the store keys the entry by a hash of the id: it holds no usable cookie value
    stored = redis_db.keys(KEY_PREFIX + "*")
    assert stored == [KEY_PREFIX + hashlib.sha256(data["sid"].encode()).hexdigest()]
    assert data["sid"] not in str(redis_db.get(stored[0]))
    assert ADMIN_KEY not in redis_db.get(stored[0])


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


SERVICE_PAGES = {"/admin/console/services", "/admin/console/services/default",
                 "/admin/console/services/default/edit"}


@pytest.mark.parametrize("path", ["/admin/", "/admin/console/originators",
                                  "/admin/console/lockouts", "/admin/console/audit",
                                  "/admin/console/messages", "/admin/console/dashboard",
                                  "/admin/console/verifications", "/admin/console/webhooks",
                                  *sorted(SERVICE_PAGES)])
def test_every_page_sends_a_visitor_without_a_session_to_sign_in(app, http, path, simulator):
    assert path in console_routes(app, "GET")
    response = http.get(path)
    assert response.status_code == 303 and response.headers["Location"] == SIGN_IN
    assert gateway_calls(simulator) == {}


def test_the_page_table_above_lists_every_page_of_the_console(app):
    assert set(console_routes(app, "GET")) == {SIGN_IN, "/admin/", "/admin/console/originators",
                                               "/admin/console/lockouts", "/admin/console/audit",
                                               "/admin/console/messages",
                                               "/admin/console/dashboard",
                                               "/admin/console/verifications",
                                               "/admin/console/webhooks", *SERVICE_PAGES}


# -- the session --------------------------------------------------------------------------
@pytest.mark.parametrize("admin_keys", ["ops:rotated-key-0123456789",  # changed
                                        "root:admin-key-0123456789",  # renamed
                                        "root:second-admin-key-0123"])  # removed
def test_a_session_ends_when_its_key_is_removed_or_changed_by_a_restart(
        make_app, console, redis_db, admin_keys):
    cookie = console.get_cookie(COOKIE, path="/admin")
    other = make_app(OTP_ADMIN_KEYS=admin_keys).test_client()  # the restart, same store
    other.set_cookie(COOKIE, cookie.value, path="/admin")
    response = other.get("/admin/")
    assert response.status_code == 303 and response.headers["Location"] == SIGN_IN
    assert "session has ended" in text(other.get(SIGN_IN))
    assert redis_db.keys(KEY_PREFIX + "*") == []


def test_a_session_ends_a_working_day_after_signing_in_however_busy(app, http, redis_db):
    clock = Clock(app)
    sign_in(http)
    for _ in range(ABSOLUTE_SECONDS // (IDLE_SECONDS - 60)):  # busy: never idle for long
        clock.now += IDLE_SECONDS - 60
        assert http.get("/admin/console/lockouts").status_code == 200
    clock.now += IDLE_SECONDS - 60
    assert http.get("/admin/").headers["Location"] == SIGN_IN
    assert "session has ended" in text(http.get(SIGN_IN))
    assert redis_db.keys(KEY_PREFIX + "*") == []


def test_a_session_ends_after_half_an_hour_without_a_request(app, http):
    clock = Clock(app)
    sign_in(http)
    cookie = http.get_cookie(COOKIE, path="/admin").value
    clock.now += IDLE_SECONDS
    assert http.get("/admin/").status_code == 200  # just inside: and renewed
    clock.now += IDLE_SECONDS + 1
    assert http.get("/admin/").headers["Location"] == SIGN_IN
    again = app.test_client()  # a copy of the cookie is no better
    again.set_cookie(COOKIE, cookie, path="/admin")
    assert again.get("/admin/").headers["Location"] == SIGN_IN


def test_the_store_s_own_expiry_follows_the_idle_time(app, console, redis_db):
    (key,) = redis_db.keys(KEY_PREFIX + "*")
    assert IDLE_SECONDS - 5 <= redis_db.ttl(key) <= IDLE_SECONDS


def test_signing_out_ends_the_session_and_both_are_audited(app, console, redis_db):
    response = post(console, "/admin/console/sign-out")
    assert response.status_code == 303
    assert "You are signed out." in text(console.get(SIGN_IN))
    assert console.get("/admin/").headers["Location"] == SIGN_IN
    assert redis_db.keys(KEY_PREFIX + "*") == []
    assert audit_actions(app) == [("ops", "console.sign_in", "console", "ok"),
                                  ("ops", "console.sign_out", "console", "ok")]


def test_the_cookie_from_before_sign_out_opens_nothing_and_clears_no_lockout(
        make_app, auth, simulator, redis_db):
    app = make_app(OTP_MAX_FAILURES_PER_PHONE="1")
    http = app.test_client()
    http.post("/otp/start", json={"phone": PHONE}, headers=auth)
    code = last_code(simulator, PHONE)
    http.post("/otp/check", json={"phone": PHONE, "code": "".join(
        str((int(c) + 1) % 10) for c in code)}, headers=auth)
    sign_in(http)
    token = csrf_token(http.get("/admin/console/lockouts"))
    cookie = http.get_cookie(COOKIE, path="/admin").value  # with the CSRF token's secret
    post(http, "/admin/console/sign-out")

    def old_cookie():
        client = app.test_client()
        client.set_cookie(COOKIE, cookie, path="/admin")
        return client

    page = old_cookie().get("/admin/", follow_redirects=True)
    assert page.request.path == SIGN_IN and 'name="key"' in text(page)
    cleared = old_cookie().post("/admin/console/lockouts",
                                data={"phone": PHONE, "csrf_token": token})
    assert cleared.status_code == 303 and cleared.headers["Location"] == SIGN_IN
    assert http.post("/otp/check", json={"phone": PHONE, "code": code},
                     headers=auth).status_code == 429  # still locked
    assert [a for a in audit_actions(app) if a[1] == "lockout.clear"] == []


def test_without_the_store_the_console_says_so_and_lets_nobody_in(make_app):
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", REDIS_TIMEOUT="0.2")
    http = app.test_client()
    refused = sign_in(http)
    assert refused.status_code == 503
    assert "store_unavailable" in text(refused) and "Signed in as" not in text(refused)
    assert "sid" not in session_data(app, http)


def test_a_store_outage_after_signing_in_is_a_page_not_a_500(app, console, monkeypatch):
    import redis

    def down(*args, **kwargs):
        raise redis.exceptions.ConnectionError("store down")

    monkeypatch.setattr(app.extensions["otp"].admin.console_sessions.redis, "get", down)
    for path in ("/admin/", "/admin/nope"):
        response = console.get(path, headers={"Accept": "text/html"})
        assert response.status_code == 503 if path == "/admin/" else 404, path
        assert response.mimetype == "text/html"
    assert "store_unavailable" in text(console.get("/admin/"))


# -- CSRF ---------------------------------------------------------------------------------
FORM = {"originator": NUMERIC, "unlock_code": "12345678", "phone": PHONE, "key": ADMIN_KEY}


@pytest.mark.parametrize("token, reason", [(None, "The CSRF token is missing."),
                                           ("forged.token", "The CSRF token is invalid.")])
def test_every_form_post_without_a_valid_csrf_token_is_refused_and_does_nothing(
        app, console, simulator, token, reason):
    routes = console_routes(app, "POST")
    assert len(routes) == 12
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


def test_viewing_pages_writes_no_audit_entry_only_actions_and_signing_in_and_out_do(
        make_app, simulator):
    app = make_app(ASPSMS_ORIGINATOR=NUMERIC)
    http = app.test_client()
    sign_in(http)
    for _ in range(3):
        for path in ("/admin/", "/admin/console/lockouts", "/admin/console/audit",
                     f"/admin/console/originators?originator=%2B{NUMERIC[1:]}"):
            assert http.get(path).status_code == 200, path
    assert audit_actions(app) == [("ops", "console.sign_in", "console", "ok")]
    post(http, "/admin/console/originators/unlock-code", originator=NUMERIC)
    post(http, "/admin/console/sign-out")
    assert audit_actions(app)[1:] == [
        ("ops", "originator.unlock_code", NUMERIC_MASKED, "pending"),
        ("ops", "console.sign_out", "console", "ok")]


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
    audit = app.extensions["otp"].admin.audit
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
    assert session_data(app, http)["sid"] and built  # the cookie is signed and read


# -- addresses that are not pages ---------------------------------------------------------
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.mark.parametrize("path", ["/admin/nope", "/admin/console/nope", "/admin/console/audit/x"])
def test_a_mistyped_console_address_shows_the_console_s_404_page_to_a_browser(http, path):
    response = http.get(path, headers=BROWSER)
    assert response.status_code == 404
    page = text(response)
    assert "Page not found" in page and "There is no console page at this address." in page
    assert 'href="/static/console.css"' in page
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_the_404_page_keeps_the_menu_for_a_signed_in_admin(console):
    page = text(console.get("/admin/nope", headers=BROWSER))
    assert "Signed in as <strong>ops</strong>" in page


@pytest.mark.parametrize("path, accept", [
    ("/admin/nope", None), ("/admin/nope", "application/json"), ("/admin/nope", "*/*"),
    ("/nope", BROWSER["Accept"]), ("/otp/nope", BROWSER["Accept"]),
])
def test_api_clients_and_addresses_outside_admin_keep_problem_json(http, path, accept):
    response = http.get(path, headers={"Accept": accept} if accept else {})
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "not_found"


def test_a_wrong_method_on_a_console_address_is_an_html_page_for_a_browser(http):
    response = http.get("/admin/console/sign-out", headers=BROWSER)
    assert response.status_code == 405 and "POST" in response.headers["Allow"]
    assert "Method Not Allowed" in text(response)


def test_the_favicon_is_served_and_every_page_links_it(http):
    with http.get("/favicon.ico") as icon:
        assert icon.status_code == 200
        assert icon.mimetype in ("image/vnd.microsoft.icon", "image/x-icon")
        assert icon.data[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert '<link rel="icon" href="/favicon.ico">' in text(http.get(SIGN_IN))


def test_a_client_key_on_an_admin_route_is_told_it_needs_an_admin_key(http, auth, admin_auth):
    refused = http.get("/admin/credits", headers=auth)
    assert refused.status_code == 403
    assert refused.get_json()["detail"] == "This endpoint needs an admin key."
    other = http.post("/otp/start", json={"phone": PHONE}, headers=admin_auth)
    assert other.status_code == 403
    assert other.get_json()["detail"] == "This endpoint needs a client key."


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
