"""The Redis failure policy (service/storage.py), the same for every caller: the store unable
to carry out a command is 503 store_unavailable; an error a Lua script raised is a bug,
500 internal_error, whichever script raised it."""

from __future__ import annotations

import contextlib

import pytest

from service.errors import StoreUnavailable
from service.storage import STORE_ERRORS
from tests.conftest import CLIENT_KEY

AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}
PHONE = "+41791234567"
BROKEN = "return redis.error_reply('a bug in this script')"


def start(app, phone=PHONE):
    return app.test_client().post("/otp/start", json={"phone": phone}, headers=AUTH)


@contextlib.contextmanager
def full(redis_db):
    """Redis over its maxmemory (noeviction): it refuses every write."""
    redis_db.config_set("maxmemory", "1")
    try:
        yield
    finally:
        redis_db.config_set("maxmemory", "0")


def test_a_budget_scripts_error_is_a_500_and_takes_the_reservation_back(make_app, redis_db):
    app = make_app()
    limits = app.extensions["otp"].verifications.limits
    script, limits._script = limits._script, redis_db.register_script(BROKEN)
    refused = start(app)
    assert refused.status_code == 500
    assert refused.get_json()["code"] == "internal_error"
    limits._script = script
    # nothing holds a cooldown against the retry: the reservation was taken back
    assert start(app).status_code == 201


def test_a_domain_scripts_error_is_a_500_too(make_app, redis_db):
    app = make_app()
    store = app.extensions["otp"].store
    store._scripts["reserve_send"] = redis_db.register_script(BROKEN)
    refused = start(app)
    assert refused.status_code == 500
    assert refused.get_json()["code"] == "internal_error"


def test_a_script_error_is_not_a_store_error():
    import redis

    assert not issubclass(redis.exceptions.ResponseError, STORE_ERRORS)


def test_a_full_store_is_unavailable_not_a_bug(make_app, redis_db):
    app = make_app()
    with full(redis_db):
        refused = start(app)
    assert refused.status_code == 503
    assert refused.get_json()["code"] == "store_unavailable"


@pytest.mark.parametrize("caller", ["store", "budgets"])
def test_a_full_store_is_store_unavailable_for_every_domain_caller(make_app, redis_db, caller):
    app = make_app()
    services = app.extensions["otp"]
    vid = start(app).get_json()["id"]
    tenant = services.default_tenant
    phone = tenant.phones.parse(PHONE)
    call = {
        "store": lambda: services.verifications.check(tenant, "acme", "123456",
                                                      verification_id=vid),
        "budgets": lambda: services.verifications.limits.count_send(
            tenant, phone, services.store.phone_hash(phone.e164)),
    }[caller]
    with full(redis_db), pytest.raises(StoreUnavailable):
        call()
