"""Review of issue 17 (services, end-user limits): black-box findings that are bugs, each a
test that holds the contract (§7) and fails on main 8c8ddd0. See /work/wt/REVIEW-17.md."""

from __future__ import annotations

import os
import time

import pytest

from tests.conftest import ADMIN_KEY
from tests.helpers import sim, start
from tests.test_cli import cli_env, run  # noqa: F401  (the fixture and the runner)

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def new_service_with_key(http) -> dict:
    service = http.post("/admin/services", json={"name": "login"}, headers=ADMIN)
    assert service.status_code == 201, service.get_json()
    made = http.post(f"/admin/services/{service.get_json()['id']}/keys", json={"name": "web"},
                     headers=ADMIN)
    assert made.status_code == 201, made.get_json()
    return made.get_json()


def test_a_key_revoked_elsewhere_is_refused_by_a_just_started_instance_after_a_second(
        make_app):
    """§7: a revoked key is "refused everywhere within 1 s". A worker that has just started
    (gunicorn restarting one, a new replica) loads the services once when it is built; its
    first client request within 3 s of that load does not look again, so a key revoked on
    another instance meanwhile still works there."""
    a = make_app()
    http_a = a.test_client()
    made = new_service_with_key(http_a)
    b = make_app()  # a fresh worker: its cache holds the key, its poller not yet started
    # an admin change on b (as a worker that served only admin calls): its cache reloads
    # now, so the 3 s it then trusts start here, whatever building b took
    assert b.test_client().patch("/admin/services/default", json={},
                                 headers=ADMIN).status_code == 200
    assert http_a.delete(f"/admin/services/{made['service_id']}/keys/{made['key_id']}",
                         headers=ADMIN).status_code == 204
    time.sleep(1.1)
    answer = start(b.test_client(), bearer(made["key"]), phone="+41791110003")
    assert answer.status_code == 401, answer.get_json()


def test_a_key_created_elsewhere_works_on_a_just_started_instance_after_a_second(make_app):
    """The same cause the other way round: the key made on A is refused by B (401) more than
    a second after it was created (seen with two gunicorn workers over HTTP)."""
    a, b = make_app(), make_app()
    assert b.test_client().patch("/admin/services/default", json={},
                                 headers=ADMIN).status_code == 200  # b's cache reloads now
    made = new_service_with_key(a.test_client())
    time.sleep(1.1)
    answer = start(b.test_client(), bearer(made["key"]), phone="+41791110004")
    assert answer.status_code == 201, answer.get_json()


def _text_sent_to(simulator, phone: str) -> str:
    messages = sim(simulator, "GET", "/_sim/messages")
    return [m for m in messages if m["recipient"] == phone][-1]["text"]


@pytest.mark.parametrize(("key", "locale"), [("en-US", "en-US"), ("DE", "de")])
def test_a_template_key_the_api_accepts_is_the_text_of_its_locale(make_app, simulator, key,
                                                                 locale):
    """§7: `templates` is `{locale: text}`. `en-US` and `DE` are accepted as keys (201) but
    never used: a start with `locale: en-US` (or `de`) gets the built-in text. Either is a
    fix: refuse such a key (422 on `templates…`), or send its text for its locale."""
    http = make_app().test_client()
    service = http.post("/admin/services", json={"templates": {key: "MINE <VERIFICATIONCODE>"}},
                        headers=ADMIN)
    if service.status_code == 422:
        assert any(name.startswith("templates") for name in service.get_json()["errors"])
        return
    assert service.status_code == 201, service.get_json()
    made = http.post(f"/admin/services/{service.get_json()['id']}/keys", json={"name": "web"},
                     headers=ADMIN).get_json()
    assert start(http, bearer(made["key"]), phone="+41791110005",
                 locale=locale).status_code == 201
    text = _text_sent_to(simulator, "+41791110005")
    assert text.startswith("MINE "), text


def test_the_services_cli_without_otp_secret_refuses_instead_of_printing_a_dead_key(
        app, cli_env, redis_server, capsys):  # noqa: F811
    """Runtime keys are stored as an HMAC with OTP_SECRET. With only REDIS_URL (what the
    README says the CLI works on) the CLI falls back to sandbox mode's random secret: it
    prints a key, exit 0, that the service refuses (401) for ever. It must refuse to run
    (naming OTP_SECRET) and store nothing."""
    for name in list(os.environ):
        if name.startswith(("ASPSMS_", "OTP_", "REDIS_")):
            cli_env.delenv(name)
    cli_env.setenv("REDIS_URL", redis_server.url)
    try:
        code, _, err = run(capsys, "services", "keys", "create", "default", "from-cli")
    except SystemExit as exit_:
        code, err = exit_.code, capsys.readouterr().err
    listed = app.test_client().get("/admin/services/default/keys", headers=ADMIN).get_json()
    assert "from-cli" not in [key["name"] for key in listed["keys"]]
    assert code != 0 and "OTP_SECRET" in err, (code, err)


def test_a_console_edit_audits_only_the_fields_it_changed(app):
    """Issue 17.4: "every change audited with the admin's name and the fields changed". A
    console edit that changes only the friendly name audits every field of the form."""
    from tests.test_console import csrf_token, sign_in

    http = app.test_client()
    assert sign_in(http).status_code == 303
    service = http.post("/admin/services", json={"friendly_name": "Before",
                                                 "limits": {"start_per_phone": "3 per hour"}},
                        headers=ADMIN).get_json()
    edit_url = f"/admin/console/services/{service['id']}/edit"
    form = {"csrf_token": csrf_token(http.get(edit_url)), "name": "", "friendly_name": "After",
            "originator": "", "sms_enabled": "", "safe_list": "",
            "limits.start_per_phone": "3 per hour"}  # as the form shows it, one field changed
    assert http.post(edit_url, data=form).status_code == 303
    shown = http.get(f"/admin/services/{service['id']}", headers=ADMIN).get_json()
    assert shown["overrides"] == {"friendly_name": "After",
                                  "limits": {"start_per_phone": "3 per hour"}}
    entries, _ = app.extensions["otp"].admin.audit.page(10)
    update = next(e for e in entries if e.action == "service.update")
    assert list(update.fields) == ["friendly_name"], update.fields


def test_a_default_service_key_named_like_another_service_never_resends_its_verification(
        app):
    """§7: "a key of another service gets 404 as for an unknown id". The start's pointer to
    a pending verification is keyed by the client's owner name alone: the default
    service's keys own by key name, a managed service's keys by the service id, so a
    default-service key named like a managed service's id (a valid key name, 201) takes
    over that service's pending verification on start (200, its id, a resend) although it
    gets 404 for the same id on GET and check."""
    http = app.test_client()
    made = new_service_with_key(http)
    service_id = made["service_id"]
    theirs = start(http, bearer(made["key"]), phone="+41791110007")
    assert theirs.status_code == 201
    named = http.post("/admin/services/default/keys", json={"name": service_id}, headers=ADMIN)
    if named.status_code == 422:  # refusing such a name is a fix too
        return
    assert named.status_code == 201, named.get_json()
    ours = start(http, bearer(named.get_json()["key"]), phone="+41791110007")
    assert ours.status_code == 201, ours.get_json()
    assert ours.get_json()["id"] != theirs.get_json()["id"]
