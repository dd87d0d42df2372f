"""Services (issue 17): the registry, its admin API, runtime keys and the per-process cache,
against a real redis-server and the simulator over HTTP."""

from __future__ import annotations

import re
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from service.tenants.store import DOCS, KEYS
from service.verification.tenant import twilio_service_sid
from tests.conftest import ADMIN_KEY, CLIENT_KEY, last_code
from tests.helpers import check, free_port, start, wait_for

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
SECRET = b"test-secret-0123456789abcdef"


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def create(http, **fields):
    response = http.post("/admin/services", json=fields, headers=ADMIN)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def new_key(http, service_id: str, name: str = "web") -> dict:
    response = http.post(f"/admin/services/{service_id}/keys", json={"name": name},
                         headers=ADMIN)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def audit(app) -> list[tuple]:
    entries, _ = app.extensions["otp"].admin.audit.page(100)
    return [(e.actor, e.action, e.target, e.outcome, e.fields) for e in reversed(entries)]


def within_a_second(predicate):
    """Poll (never a fixed sleep) and say how long it took."""
    began = time.monotonic()
    wait_for(predicate, timeout=1.0, interval=0.02)
    return time.monotonic() - began


# -- CRUD -------------------------------------------------------------------------------
def test_a_created_service_shows_its_overrides_over_the_environment_s_defaults(http):
    created = create(http, name="signup", friendly_name="Acme", validity_minutes=5,
                     limits={"start_per_phone": "3 per hour"}, budgets={"total": "100 per day"},
                     safe_list=["+4179123"], allowed_countries=["ch", "DE"])
    assert created["id"].startswith("sv_") and len(created["id"]) == 35
    assert created["twilio_sid"] == twilio_service_sid(SECRET, created["id"])
    assert created["name"] == "signup" and created["default"] is False
    assert created["validity_minutes"] == 5
    assert created["max_attempts"] == 5  # the environment's default
    assert created["originator"] == "Verify"  # ASPSMS_ORIGINATOR
    assert created["limits"]["start_per_phone"] == "3 per hour"
    assert created["limits"]["check_per_phone"] == "30 per hour"
    assert created["budgets"] == {"per_prefix": "50 per hour", "per_country": "1000 per hour",
                                  "total": "100 per day"}
    assert created["allowed_countries"] == ["CH", "DE"]
    assert created["overrides"] == {"name": "signup", "friendly_name": "Acme",
                                    "validity_minutes": 5,
                                    "limits": {"start_per_phone": "3 per hour"},
                                    "budgets": {"total": "100 per day"},
                                    "safe_list": ["+4179123"], "allowed_countries": ["ch", "DE"]}
    shown = http.get(f"/admin/services/{created['id']}", headers=ADMIN).get_json()
    assert shown == created
    assert shown["originator_status"] == {"originator": "Verify", "kind": "alphanumeric",
                                          "state": "no_authorization_needed",
                                          "authorized": True}


def test_the_list_has_the_default_service_first_then_the_managed_ones(http):
    first, second = create(http, name="one"), create(http, name="two")
    listed = http.get("/admin/services", headers=ADMIN).get_json()["services"]
    assert [s["id"] for s in listed] == ["default", first["id"], second["id"]]
    default = listed[0]
    assert default["default"] is True and default["overrides"] == {}
    assert default["keys"] == 2  # acme and other, from OTP_API_KEYS


def test_a_patch_changes_only_the_fields_it_names_and_null_restores_the_default(http):
    service = create(http, name="login", max_attempts=3, limits={"start_per_phone": "3 per hour",
                                                                 "check_per_phone": "9 per hour"})
    url = f"/admin/services/{service['id']}"
    patched = http.patch(url, json={"limits": {"start_per_phone": None}, "max_sends": 2,
                                    "max_attempts": None}, headers=ADMIN)
    assert patched.status_code == 200
    body = patched.get_json()
    assert body["overrides"] == {"name": "login", "max_sends": 2,
                                 "limits": {"check_per_phone": "9 per hour"}}
    assert body["max_attempts"] == 5
    assert body["limits"]["start_per_phone"] == "5 per hour;10 per day"


@pytest.mark.parametrize(("body", "errors"), [
    ({"validity_minutes": 99}, {"validity_minutes": ["must be between 1 and 60, got 99"]}),
    ({"max_attempts": True}, {"max_attempts": ["must be a whole number, got True"]}),
    ({"limits": {"check_per_phone": "often"}},
     {"limits.check_per_phone": ["must be limit notation like '5 per hour', got 'often'"]}),
    ({"limits": {"start_per_phone": "5 per 100000 day"}}, {"limits.start_per_phone": [
        "must have windows from one second to a year, got '5 per 100000 day'"]}),
    ({"limits": {"start_per_phone": "5 per 0 hour"}}, {"limits.start_per_phone": [
        "must have windows from one second to a year, got '5 per 0 hour'"]}),
    ({"budgets": {"per_prefix": "x"}},
     {"budgets.per_prefix": ["must be limit notation like '5 per hour', got 'x'"]}),
    ({"templates": {"de": "Ihr Code"}}, {"templates": ["de: must contain <VERIFICATIONCODE>"]}),
    ({"safe_list": ["4179"]}, None),
    ({"allowed_countries": ["XX"]}, {"allowed_countries": ["unknown country code 'XX'"]}),
    ({"originator": "+41 79"}, None),
    ({"friendly_name": "x" * 31}, {"friendly_name": ["must be 1 to 30 characters"]}),
    ({"friendly_name": "a\nb"},
     {"friendly_name": ["must not contain line breaks or other control characters"]}),
    ({"test_numbers": [{"phone": "+41790000002", "code": "654321", "expires": "2020-01-01"}]},
     {"test_numbers.0.expires": ["is in the past: the entry would be ignored"]}),
    ({"webhook_url": "http://example.com/hook"}, None),
    ({"webhook_events": ["verification.started", "sms.sent"]}, None),
    ({"test_numbers": [{"phone": "+41790000000", "code": "12"}]}, None),
    ({"colour": "red"}, {"colour": ["Unknown field."]}),
    ({"limits": {"per_client": "1 per second"}}, {"limits.per_client": ["Unknown field."]}),
])
def test_an_invalid_field_is_422_with_field_errors_and_nothing_is_stored(http, redis_db, app,
                                                                           body, errors):
    response = http.post("/admin/services", json=body, headers=ADMIN)
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["code"] == "validation_failed"
    if errors is not None:
        assert problem["errors"] == errors
    else:
        assert {name.partition(".")[0] for name in problem["errors"]} == set(body)
    assert redis_db.hlen(DOCS) == 0
    assert audit(app)[-1][1:4] == ("service.create", audit(app)[-1][2], "validation_failed")


def test_a_bad_patch_leaves_the_stored_service_as_it_was(http, redis_db):
    service = create(http, name="login")
    stored = redis_db.hget(DOCS, service["id"])
    response = http.patch(f"/admin/services/{service['id']}",
                          json={"name": "renamed", "code_mask": "?"}, headers=ADMIN)
    assert response.status_code == 422 and "code_mask" in response.get_json()["errors"]
    assert redis_db.hget(DOCS, service["id"]) == stored


@pytest.mark.parametrize("url", ["http://127.0.0.1:9000/hook", "http://localhost/h",
                                 "http://[::1]/h", "https://hooks.example.com/otp"])
def test_a_webhook_url_is_https_or_http_to_a_loopback_host(make_app, url):
    # http to loopback only where deliveries may use it (tests/test_webhooks.py: refused)
    http = make_app(OTP_WEBHOOK_ALLOW_PRIVATE="true").test_client()
    service = create(http, webhook_url=url, webhook_events=["verification.approved"])
    assert service["webhook_url"] == url and service["webhook_events"] == [
        "verification.approved"]


def test_unknown_services_and_keys_are_404_and_the_default_service_is_not_deletable(http):
    missing = "sv_" + "0" * 32
    for method, url in [("GET", f"/admin/services/{missing}"),
                        ("PATCH", f"/admin/services/{missing}"),
                        ("DELETE", f"/admin/services/{missing}"),
                        ("GET", f"/admin/services/{missing}/keys"),
                        ("POST", f"/admin/services/{missing}/keys"),
                        ("GET", "/admin/services/nonsense")]:
        body = {"name": "x"} if method in ("POST", "PATCH") else None
        response = http.open(url, method=method, json=body, headers=ADMIN)
        assert response.status_code == 404, (method, url)
        assert response.get_json()["code"] == "service_not_found"
    assert http.delete("/admin/services/default/keys/key_0000000000000000",
                       headers=ADMIN).get_json()["code"] == "key_not_found"
    refused = http.delete("/admin/services/default", headers=ADMIN)
    assert refused.status_code == 409 and refused.get_json()["code"] == "environment_managed"


def test_deleting_a_service_removes_it_and_refuses_its_keys(http, redis_db):
    service = create(http, name="gone")
    key = new_key(http, service["id"])["key"]
    deleted = http.delete(f"/admin/services/{service['id']}", headers=ADMIN)
    assert deleted.status_code == 204 and "Content-Type" not in deleted.headers
    assert http.get(f"/admin/services/{service['id']}", headers=ADMIN).status_code == 404
    assert redis_db.hlen(KEYS) == 0
    assert start(http, bearer(key)).status_code == 401


# -- the default service ----------------------------------------------------------------
def test_the_default_service_may_be_overridden_at_runtime_and_reset(app, http):
    response = http.patch("/admin/services/default", json={"friendly_name": "Acme"},
                          headers=ADMIN)
    assert response.status_code == 200
    body = response.get_json()
    assert body["friendly_name"] == "Acme" and body["overrides"] == {"friendly_name": "Acme"}
    assert app.extensions["otp"].tenants.default.policy.friendly_name == "Acme"
    http.patch("/admin/services/default", json={"friendly_name": None}, headers=ADMIN)
    assert app.extensions["otp"].default_tenant.policy.friendly_name is None


def test_the_default_service_lists_its_environment_keys_by_name_and_refuses_to_revoke_them(
        http):
    keys = http.get("/admin/services/default/keys", headers=ADMIN).get_json()["keys"]
    assert [(k["key_id"], k["name"], k["source"], k["revocable"]) for k in keys] == [
        ("env:acme", "acme", "environment", False), ("env:other", "other", "environment", False)]
    assert CLIENT_KEY not in str(keys)
    refused = http.delete("/admin/services/default/keys/env:acme", headers=ADMIN)
    assert refused.status_code == 409 and refused.get_json()["code"] == "environment_managed"
    assert "OTP_API_KEYS" in refused.get_json()["detail"]


def test_the_default_service_takes_runtime_keys_but_not_an_environment_key_s_name(http, auth):
    taken = http.post("/admin/services/default/keys", json={"name": "acme"}, headers=ADMIN)
    assert taken.status_code == 422 and "name" in taken.get_json()["errors"]
    key = new_key(http, "default", "rotated")["key"]
    started = start(http, bearer(key))
    assert started.status_code == 201
    # the default service scopes by key name, as OTP_API_KEYS always did
    other = http.get(f"/otp/verifications/{started.get_json()['id']}", headers=auth)
    assert other.status_code == 404


# -- runtime keys -----------------------------------------------------------------------
def test_a_runtime_key_is_shown_once_stored_as_a_hash_and_works_for_its_service(
        http, redis_db, simulator):
    service = create(http, name="signup")
    made = new_key(http, service["id"], "backend")
    key = made["key"]
    assert key.startswith("sk_") and len(key) >= 40 and made["name"] == "backend"
    assert key not in str(redis_db.hgetall(KEYS)) and key not in str(redis_db.hgetall(DOCS))
    listed = http.get(f"/admin/services/{service['id']}/keys", headers=ADMIN).get_json()
    assert key not in str(listed)
    assert [k["key_id"] for k in listed["keys"]] == [made["key_id"]]

    started = start(http, bearer(key))
    assert started.status_code == 201
    verification = started.get_json()["id"]
    # its verifications are the service's: a second key of the same service sees them
    second = new_key(http, service["id"], "backend-2")["key"]
    assert http.get(f"/otp/verifications/{verification}", headers=bearer(second)).status_code \
        == 200
    assert check(http, bearer(second), last_code(simulator, "+41791234567"),
                 id=verification).get_json()["status"] == "approved"
    read = http.get(f"/admin/verifications/{verification}", headers=ADMIN).get_json()
    assert read["client"] == service["id"]


def test_a_runtime_key_is_a_client_key_only(http):
    key = new_key(http, create(http)["id"])["key"]
    assert http.get("/admin/services", headers=bearer(key)).status_code == 403
    assert http.post("/admin/services", json={}, headers=bearer("sk_" + "x" * 43)).status_code \
        == 401


def test_a_revoked_key_is_refused_and_the_revocation_is_audited(app, http):
    service = create(http, name="signup")
    made = new_key(http, service["id"])
    url = f"/admin/services/{service['id']}/keys/{made['key_id']}"
    assert http.delete(url, headers=ADMIN).status_code == 204
    assert start(http, bearer(made["key"])).status_code == 401
    assert http.delete(url, headers=ADMIN).status_code == 404
    sid = service["id"]
    assert audit(app)[-3:] == [
        ("ops", "service.key_create", f"{sid}/{made['key_id']}", "ok", ()),
        ("ops", "service.key_revoke", f"{sid}/{made['key_id']}", "ok", ()),
        ("ops", "service.key_revoke", f"{sid}/{made['key_id']}", "key_not_found", ())]


def test_every_change_is_audited_with_the_admin_s_name_and_the_fields_never_values(app, http):
    service = create(http, name="login", test_numbers=[
        {"phone": "+41790000001", "code": "424242", "expires": "2099-01-01"}])
    http.patch(f"/admin/services/{service['id']}",
               json={"limits": {"start_per_phone": "2 per hour"}, "sms_enabled": False},
               headers=ADMIN)
    http.delete(f"/admin/services/{service['id']}", headers=ADMIN)
    sid = service["id"]
    assert audit(app) == [
        ("ops", "service.create", sid, "ok", ("name", "test_numbers")),
        ("ops", "service.update", sid, "ok", ("limits.start_per_phone", "sms_enabled")),
        ("ops", "service.delete", sid, "ok", ())]
    assert "424242" not in str(app.extensions["otp"].redis.xrange("otp:audit"))


# -- every process within 1 s ------------------------------------------------------------
def test_a_key_revoked_on_one_instance_is_refused_on_another_within_a_second(make_app):
    a, b = make_app(), make_app()
    http_a, http_b = a.test_client(), b.test_client()
    made = new_key(http_a, create(http_a, name="shared")["id"])
    service_id = made["service_id"]
    took = within_a_second(lambda: start(http_b, bearer(made["key"]),
                                         phone="+41791110001").status_code == 201)
    assert took < 1.0
    assert http_a.delete(f"/admin/services/{service_id}/keys/{made['key_id']}",
                         headers=ADMIN).status_code == 204
    took = within_a_second(lambda: start(http_b, bearer(made["key"]),
                                         phone="+41791110002").status_code == 401)
    assert took < 1.0


def test_a_policy_change_is_seen_by_every_instance_within_a_second(make_app):
    a, b = make_app(), make_app()
    service = create(a.test_client(), name="login")
    registries = [app.extensions["otp"].tenants for app in (a, b)]
    within_a_second(lambda: all(r.get(service["id"]) for r in registries))
    a.test_client().patch(f"/admin/services/{service['id']}",
                          json={"templates": {"de": "Code: <VERIFICATIONCODE>"},
                                "limits": {"start_per_phone": "2 per hour"}}, headers=ADMIN)
    assert registries[0].get(service["id"]).limits.start_per_phone == "2 per hour"
    within_a_second(lambda: registries[1].get(service["id"]).limits.start_per_phone
                    == "2 per hour")
    tenant = registries[1].get(service["id"])
    assert tenant.policy.templates == {"de": "Code: <VERIFICATIONCODE>"}
    assert registries[1].by_twilio_sid(service["twilio_sid"]) == tenant
    assert [t.id for t in registries[1].all()] == ["default", service["id"]]


def test_a_request_reads_no_policy_or_key_from_redis(make_app, monkeypatch):
    app = make_app()
    http = app.test_client()
    made = new_key(http, create(http)["id"])
    registry = app.extensions["otp"].tenants
    snapshots = []
    original = registry.store.snapshot
    monkeypatch.setattr(registry.store, "snapshot", lambda: snapshots.append(1) or original())
    monkeypatch.setattr(registry.store, "version", lambda: registry._view.version)
    for _ in range(5):
        assert registry.authenticate(made["key"]).owner == made["service_id"]
    assert snapshots == []


def test_without_the_store_a_runtime_key_is_refused_with_503_and_environment_keys_work(
        make_app, auth):
    from service.tenants.store import ServiceStore

    app = make_app()
    http = app.test_client()
    key = new_key(http, create(http)["id"])["key"]
    registry = app.extensions["otp"].tenants
    registry.stale_seconds = 0.3
    working = registry.store
    registry.store = ServiceStore(redis.Redis(port=free_port(), retry=Retry(NoBackoff(), 0)))
    wait_for(lambda: registry.stale, timeout=2)
    for presented in (key, "sk_" + "x" * 43):  # known, or perhaps made since
        refused = start(http, bearer(presented))
        assert refused.status_code == 503 and refused.get_json()["code"] == "store_unavailable"
    assert start(http, auth).status_code == 201
    registry.store = working  # the store is back: so is the key, within a poll
    wait_for(lambda: start(http, bearer(key), phone="+41791110003").status_code == 201,
             timeout=1)


# -- the web console ---------------------------------------------------------------------
def test_the_console_lists_shows_edits_and_manages_keys_of_a_service(app, http):
    from tests.test_console import csrf_token, sign_in, text

    assert sign_in(http).status_code == 303
    listing = http.get("/admin/console/services")
    assert listing.status_code == 200 and "default" in text(listing)
    token = csrf_token(listing)
    created = http.post("/admin/console/services", data={"name": "signup", "csrf_token": token})
    assert created.status_code == 303
    detail_url = created.headers["Location"]
    service_id = detail_url.rsplit("/", 1)[-1]
    detail = text(http.get(detail_url))
    assert service_id in detail and "Effective policy" in detail

    edit_url = f"/admin/console/services/{service_id}/edit"
    form = {"csrf_token": csrf_token(http.get(edit_url)), "name": "signup",
            "friendly_name": "Acme", "originator": "", "sms_enabled": "on",
            "limits.start_per_phone": "3 per hour", "budgets.total": "100 per day",
            "safe_list": "+4179123\n+41791234567\n"}
    assert http.post(edit_url, data=form).status_code == 303
    tenant = app.extensions["otp"].tenants.get(service_id)
    assert tenant.policy.friendly_name == "Acme" and tenant.policy.sms_enabled is True
    assert app.extensions["otp"].service_admin.show(service_id)["overrides"]["sms_enabled"]
    assert tenant.limits.start_per_phone == "3 per hour"
    assert tenant.limits.budget_total == "100 per day"
    assert tenant.policy.safe_list == ("+4179123", "+41791234567")

    refused = http.post(edit_url, data={**form, "limits.check_per_phone": "often"})
    assert refused.status_code == 422 and "often" in text(refused)
    assert app.extensions["otp"].tenants.get(service_id).limits.check_per_phone == "30 per hour"

    made = http.post(f"/admin/console/services/{service_id}/keys",
                     data={"name": "web", "csrf_token": token})
    assert made.status_code == 200
    key = re.search(r'<code class="secret">([^<]+)</code>', text(made)).group(1)
    assert start(http, bearer(key)).status_code == 201  # for its service (SMS on, above)
    assert key not in text(http.get(detail_url))  # shown once
    key_id = app.extensions["otp"].tenants.keys_of(service_id)[0].key_id
    revoked = http.post(f"/admin/console/services/{service_id}/keys/{key_id}/revoke",
                        data={"csrf_token": token})
    assert revoked.status_code == 303
    assert start(http, bearer(key)).status_code == 401
    without_token = http.post(f"/admin/console/services/{service_id}/delete")
    assert without_token.status_code == 400
    assert http.post(f"/admin/console/services/{service_id}/delete",
                     data={"csrf_token": token}).status_code == 303
    assert http.get(detail_url).status_code == 404
    actions = [entry[1] for entry in audit(app) if entry[0] == "ops"]
    assert actions == ["console.sign_in", "service.create", "service.update", "service.update",
                       "service.key_create", "service.key_revoke", "service.delete"]


def test_the_console_s_services_pages_need_a_sign_in(http):
    for url in ("/admin/console/services", "/admin/console/services/default",
                "/admin/console/services/default/edit"):
        response = http.get(url)
        assert response.status_code == 303 and response.headers["Location"].endswith(
            "/admin/console/sign-in")


# -- the cache's thread ------------------------------------------------------------------
def test_the_cache_thread_starts_with_first_use_and_ends_with_close_or_its_registry(
        app, redis_db):
    import gc

    from service.tenants import Registry, ServiceStore

    base = app.extensions["otp"].tenants.base
    registry = Registry(ServiceStore(redis_db), SECRET, base, {})
    assert registry._thread is None  # nothing until used (a forked worker starts its own)
    assert registry.default.id == "default"
    thread = registry._thread
    assert thread.is_alive() and thread.daemon
    registry.close()
    wait_for(lambda: not thread.is_alive(), timeout=1)

    dropped = Registry(ServiceStore(redis_db), SECRET, base, {})
    dropped.all()
    thread = dropped._thread
    del dropped
    gc.collect()
    wait_for(lambda: not thread.is_alive(), timeout=1)


def test_a_key_of_one_service_never_sees_another_s_verifications(http, auth):
    one, two = new_key(http, create(http)["id"])["key"], new_key(http, create(http)["id"])["key"]
    started = start(http, bearer(one))
    assert started.status_code == 201
    url = f"/otp/verifications/{started.get_json()['id']}"
    assert http.get(url, headers=bearer(one)).status_code == 200
    for other in (bearer(two), auth):
        response = http.get(url, headers=other)
        assert response.status_code == 404
        assert response.get_json()["code"] == "verification_not_found"


@pytest.mark.parametrize(("body", "field"), [({}, "name"), ({"name": ""}, "name"),
                                             ({"name": "a b"}, "name"),
                                             ({"name": "web", "scope": "all"}, "scope"),
                                             ({"name": "sv_" + "0" * 32}, "name")])
def test_a_key_needs_a_valid_name_and_nothing_else(http, body, field):
    service = create(http)
    response = http.post(f"/admin/services/{service['id']}/keys", json=body, headers=ADMIN)
    assert response.status_code == 422 and field in response.get_json()["errors"]
    assert http.get(f"/admin/services/{service['id']}/keys", headers=ADMIN).get_json() == {
        "keys": []}


def test_services_work_on_the_sandbox_s_embedded_store(make_app):
    from service.config import SANDBOX_ADMIN_KEY

    app = make_app(ASPSMS_USERKEY="", ASPSMS_ORIGINATOR="", OTP_API_KEYS="", OTP_ADMIN_KEYS="",
                   REDIS_URL="")
    try:
        http = app.test_client()
        admin = bearer(SANDBOX_ADMIN_KEY)
        service = http.post("/admin/services", json={"name": "try"}, headers=admin).get_json()
        made = http.post(f"/admin/services/{service['id']}/keys", json={"name": "web"},
                         headers=admin).get_json()
        assert start(http, bearer(made["key"])).status_code == 201
    finally:
        app.extensions["otp"].simulator.stop()


def test_a_patch_of_texts_and_limits_on_one_instance_rules_the_sends_of_another_within_1_s(
        make_app, simulator):
    from tests.helpers import sim

    a, b = make_app(OTP_RESEND_COOLDOWN="0"), make_app(OTP_RESEND_COOLDOWN="0")
    http_a, http_b = a.test_client(), b.test_client()
    service = create(http_a, name="login")
    key = bearer(new_key(http_a, service["id"])["key"])
    wait_for(lambda: b.extensions["otp"].tenants.get(service["id"]) is not None, timeout=1)
    http_a.patch(f"/admin/services/{service['id']}", headers=ADMIN, json={
        "friendly_name": "Acme", "templates": {"de": "{service} Code: <VERIFICATIONCODE>"},
        "limits": {"start_per_phone": "1 per hour"}})
    took = within_a_second(lambda: b.extensions["otp"].tenants.get(service["id"])
                           .limits.start_per_phone == "1 per hour")
    assert took < 1.0
    sent = start(http_b, key, phone="+41791110201", locale="de")
    assert sent.status_code == 201
    texts = [m["text"] for m in sim(simulator, "GET", "/_sim/messages")
             if m["recipient"] == "+41791110201"]
    assert texts[-1].startswith("Acme Code: ")
    again = start(http_b, key, phone="+41791110201", locale="de")
    assert again.status_code == 429 and again.get_json()["reason"] == "start_per_phone"


def test_a_numeric_originator_is_asked_at_the_gateway_for_one_service_not_for_the_list(
        http, simulator):
    from tests.helpers import gateway_calls

    service = create(http, name="sms", originator="+41791110009")
    assert service["originator_status"]["state"] == "unchecked"
    listed = http.get("/admin/services", headers=ADMIN).get_json()["services"]
    assert listed[1]["originator_status"] == {"originator": "+41791110009", "kind": "numeric",
                                              "state": "unchecked", "authorized": None}
    assert gateway_calls(simulator) == {}
    shown = http.get(f"/admin/services/{service['id']}", headers=ADMIN).get_json()
    assert shown["originator_status"] == {"originator": "+41791110009", "kind": "numeric",
                                          "authorized": False, "state": "not_authorized"}
    assert sum(gateway_calls(simulator).values()) == 1


def test_a_runtime_key_is_masked_in_every_log_line_by_its_shape(http):
    from service import logs

    key = new_key(http, create(http)["id"])["key"]
    masked = logs.MaskingFilter().mask(f"key={key} then {key}, done")
    assert key not in masked and masked.count("[redacted]") == 2


def test_a_key_made_on_one_instance_works_on_another_at_once(make_app):
    a, b = make_app(), make_app()
    registry = b.extensions["otp"].tenants
    registry.close()  # no poll on b from here: only the miss's own re-check can find the key
    wait_for(lambda: not registry._thread.is_alive(), timeout=1)
    made = new_key(a.test_client(), create(a.test_client())["id"])
    assert start(b.test_client(), bearer(made["key"])).status_code == 201
    # and made-up keys do not each cost a look at the store
    looks = []
    original = registry.store.version
    registry.store.version = lambda: looks.append(1) or original()
    began = time.monotonic()
    for _ in range(20):
        assert start(b.test_client(), bearer("sk_" + "y" * 43)).status_code == 401
    assert len(looks) <= (time.monotonic() - began) / 0.1 + 1


def test_every_services_answer_validates_against_its_openapi_schema(http):
    from jsonschema import Draft202012Validator

    from tests.test_openapi import SPEC

    def check_against(name: str, value) -> None:
        schema = {**SPEC["components"]["schemas"][name], "components": SPEC["components"]}
        errors = [e.message for e in Draft202012Validator(schema).iter_errors(value)]
        assert errors == [], (name, errors)

    service = create(http, name="s", limits={"start_per_phone": "1 per hour"})
    check_against("Service", service)
    check_against("CreatedServiceKey", new_key(http, service["id"]))
    for key in http.get(f"/admin/services/{service['id']}/keys", headers=ADMIN).get_json()[
            "keys"] + http.get("/admin/services/default/keys", headers=ADMIN).get_json()["keys"]:
        check_against("ServiceKey", key)
