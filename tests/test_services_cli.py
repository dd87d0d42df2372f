"""``aspsms-verify services …``: the registry from a shell, on the same store as the service."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ADMIN_KEY
from tests.helpers import start, wait_for
from tests.test_cli import cli_env, run  # noqa: F401  (the fixture and the runner)

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
def store_env(cli_env, redis_server, redis_db):  # noqa: F811
    cli_env.setenv("REDIS_URL", redis_server.url)
    return cli_env


def test_a_service_made_with_the_cli_is_served_and_audited_and_the_api_sees_it(
        app, store_env, capsys, tmp_path):
    document = tmp_path / "service.json"
    document.write_text(json.dumps({"name": "signup", "limits": {"start_per_phone": "3 per hour"}}))
    code, out, _ = run(capsys, "services", "create", "--file", str(document))
    assert code == 0
    created = json.loads(out)
    service_id = created["id"]
    assert created["limits"]["start_per_phone"] == "3 per hour"

    code, out, _ = run(capsys, "services", "--actor", "gitops", "keys", "create", service_id, "web")
    assert code == 0
    key = json.loads(out)["key"]
    http = app.test_client()
    wait_for(lambda: start(http, {"Authorization": f"Bearer {key}"}).status_code == 201,
             timeout=1)
    shown = http.get(f"/admin/services/{service_id}", headers=ADMIN).get_json()
    assert shown["name"] == "signup"

    patch = tmp_path / "patch.json"
    patch.write_text(json.dumps({"name": "signup-2", "limits": {"start_per_phone": None}}))
    code, out, _ = run(capsys, "services", "update", service_id, "--file", str(patch))
    assert code == 0 and json.loads(out)["overrides"] == {"name": "signup-2"}
    code, out, _ = run(capsys, "services", "list")
    assert [s["name"] for s in json.loads(out)] == ["default", "signup-2"]
    code, out, _ = run(capsys, "services", "keys", "list", service_id)
    assert key not in out and [k["name"] for k in json.loads(out)] == ["web"]
    key_id = json.loads(out)[0]["key_id"]
    assert run(capsys, "services", "keys", "revoke", service_id, key_id)[0] == 0
    assert run(capsys, "services", "delete", service_id)[0] == 0
    code, _, err = run(capsys, "services", "show", service_id)
    assert code == 1 and json.loads(err)["code"] == "service_not_found"

    entries, _ = app.extensions["otp"].admin.audit.page(20)
    assert [(e.actor, e.action, e.fields) for e in reversed(entries)] == [
        ("cli", "service.create", ("limits.start_per_phone", "name")),
        ("gitops", "service.key_create", ()),
        ("cli", "service.update", ("limits.start_per_phone", "name")),
        ("cli", "service.key_revoke", ()),
        ("cli", "service.delete", ())]


def test_a_bad_document_is_refused_with_the_field_errors_and_nothing_is_stored(
        store_env, capsys, tmp_path, redis_db):
    document = tmp_path / "service.json"
    document.write_text(json.dumps({"max_attempts": 50, "colour": "red"}))
    code, _, err = run(capsys, "services", "create", "--file", str(document))
    assert code == 1
    problem = json.loads(err)
    assert problem["code"] == "validation_failed" and set(problem["errors"]) == {"colour"}
    document.write_text(json.dumps({"max_attempts": 50}))
    code, _, err = run(capsys, "services", "create", "--file", str(document))
    assert json.loads(err)["errors"] == {"max_attempts": ["must be between 1 and 10, got 50"]}
    assert redis_db.keys("otp:{otp-services}:*") == []


def test_the_services_command_needs_redis_url(cli_env, capsys):  # noqa: F811
    cli_env.delenv("REDIS_URL")
    code, _, err = run(capsys, "services", "list")
    assert code == 2 and "REDIS_URL" in err
