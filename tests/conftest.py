"""Fixtures: a real redis-server and the ASPSMS simulator over HTTP, never the shared 6379."""

from __future__ import annotations

import pytest
import requests

from service import create_app
from tests.helpers import RedisServer

CLIENT_KEY = "client-key-0123456789"
OTHER_KEY = "other-key-0123456789"
ADMIN_KEY = "admin-key-0123456789"
SIM_USER, SIM_PASSWORD = "SIMUSERKEY01", "sim-password"


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def simulator_server():
    from service.simulator import SimulatorServer

    server = SimulatorServer(userkey=SIM_USER, password=SIM_PASSWORD, credits=10**6).start()
    yield server
    server.stop()


@pytest.fixture
def simulator(simulator_server):
    requests.post(simulator_server.url + "/_sim/reset", timeout=5)
    return simulator_server


@pytest.fixture
def redis_db(redis_server):
    import redis

    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.flushall()
    yield client
    client.close()


def service_env(redis_url: str, simulator_url: str, **overrides: str) -> dict[str, str]:
    env = {
        "ASPSMS_USERKEY": SIM_USER, "ASPSMS_PASSWORD": SIM_PASSWORD,
        "ASPSMS_ORIGINATOR": "Verify", "ASPSMS_URL": simulator_url, "ASPSMS_TIMEOUT": "2",
        "REDIS_URL": redis_url, "OTP_SECRET": "test-secret-0123456789abcdef",
        "OTP_API_KEYS": f"acme:{CLIENT_KEY},other:{OTHER_KEY}",
        "OTP_ADMIN_KEYS": f"ops:{ADMIN_KEY}", "OTP_RESEND_COOLDOWN": "30",
    }
    env.update(overrides)
    return env


@pytest.fixture
def make_app(redis_db, redis_server, simulator):
    made = []

    def factory(**overrides: str):
        app = create_app(service_env(redis_server.url, simulator.url, **overrides))
        app.config["TESTING"] = True
        made.append(app)
        return app

    yield factory
    for app in made:  # its last dashboard counts land now, not in a later test's Redis
        app.extensions["otp"].stats.recorder.close()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def http(app):
    return app.test_client()


@pytest.fixture
def auth():
    return {"Authorization": f"Bearer {CLIENT_KEY}"}


@pytest.fixture
def other_auth():
    return {"Authorization": f"Bearer {OTHER_KEY}"}


@pytest.fixture
def admin_auth():
    return {"Authorization": f"Bearer {ADMIN_KEY}"}


def last_code(simulator, phone: str) -> str:
    messages = requests.get(simulator.url + "/_sim/messages", timeout=5).json()
    return [m for m in messages if m["recipient"] == phone][-1]["code"]
