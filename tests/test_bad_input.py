"""Bad input gets its own clear problem, never a 500, and changes nothing."""

from __future__ import annotations

import pytest
import requests

JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(("body", "headers", "status", "code"), [
    (b'{"phone": ', JSON, 400, "malformed_json"),
    (b"[" * 5000 + b"]" * 5000, JSON, 400, "malformed_json"),
    (b"\xff\xfe", JSON, 400, "malformed_json"),
    (b"phone=+41791234567", {"Content-Type": "application/x-www-form-urlencoded"}, 415,
     "unsupported_media_type"),
    (b'{"phone": "+41791234567"}', {"Content-Type": "text/plain"}, 415,
     "unsupported_media_type"),
    (b'{"phone": "+41791234567"}', {}, 415, "unsupported_media_type"),
    (b"[]", JSON, 422, "validation_failed"),
    (b'"+41791234567"', JSON, 422, "validation_failed"),
    (b"{}", JSON, 422, "validation_failed"),
    (b'{"phone": 41791234567}', JSON, 422, "validation_failed"),
    (b'{"phone": null}', JSON, 422, "validation_failed"),
    (b'{"phone": "+41791234567", "admin": true}', JSON, 422, "validation_failed"),
    (b'{"phone": "+41791234567", "validity_minutes": "5"}', JSON, 422, "validation_failed"),
    (b'{"phone": "+41791234567", "validity_minutes": 5.5}', JSON, 422, "validation_failed"),
    (b'{"phone": "+41791234567", "case_sensitive": "yes"}', JSON, 422, "validation_failed"),
    (b'{"phone": "+41791234567", "reference": "' + b"r" * 129 + b'"}', JSON, 422,
     "validation_failed"),
    (b'{"phone": "+41791234567", "locale": "de\\nX"}', JSON, 422, "validation_failed"),
    (b'{"phone": "' + b"1" * 40 + b'"}', JSON, 422, "validation_failed"),
    (b'{"phone": "+41 900 123 456"}', JSON, 422, "phone_not_sms_capable"),
    (b'{"phone": "+41 79 12"}', JSON, 422, "invalid_phone"),
    (b'{"phone": "079 123 45 67"}', JSON, 422, "invalid_phone"),
    (b'{"phone": "+41791234567\\r\\nX-Evil: 1"}', JSON, 422, "invalid_phone"),
])
def test_bad_start_bodies_get_their_problem_and_send_nothing(
        http, auth, simulator, body, headers, status, code):
    response = http.post("/otp/start", data=body, headers={**auth, **headers})
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["code"] == code and problem["status"] == status
    assert requests.get(simulator.url + "/_sim/messages", timeout=5).json() == []


def test_a_2_mb_body_is_refused_with_413(http, auth):
    response = http.post("/otp/start", data=b'{"phone": "' + b"1" * 2_000_000 + b'"}',
                         headers={**auth, **JSON})
    assert response.status_code == 413
    assert response.get_json()["code"] == "payload_too_large"


@pytest.mark.parametrize(("body", "code"), [
    ({"code": "123456"}, "validation_failed"),
    ({"code": "123456", "id": "vf_x", "phone": "+41791234567"}, "validation_failed"),
    ({"code": 123456, "id": "vf_x"}, "validation_failed"),
    ({"code": "1" * 33, "id": "vf_x"}, "validation_failed"),
])
def test_bad_check_bodies_are_refused(http, auth, body, code):
    response = http.post("/otp/check", json=body, headers=auth)
    assert response.status_code == 422 and response.get_json()["code"] == code


@pytest.mark.parametrize("vid", ["vf_unknown", "vf_0000AAAAAAAAAAAAAAAAAAAAAA", "../admin",
                                 "vf_" + "x" * 60])
def test_unknown_or_malformed_ids_answer_404(http, auth, vid):
    response = http.get(f"/otp/verifications/{vid}", headers=auth)
    assert response.status_code == 404
    assert response.get_json()["code"] in ("verification_not_found", "not_found")


def test_an_unknown_route_is_a_404_problem(http, auth):
    response = http.get("/otp/nothing-here", headers=auth)
    assert response.status_code == 404 and response.get_json()["code"] == "not_found"


def test_a_wrong_method_is_a_405_problem_with_allow(http, auth):
    response = http.get("/otp/start", headers=auth)
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert response.get_json()["code"] == "method_not_allowed"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"},
                                     {"Authorization": "Basic Zm9vOmJhcg=="},
                                     {"Authorization": "Bearer "}])
def test_client_routes_need_a_known_client_key(http, headers):
    response = http.post("/otp/start", json={"phone": "+41791234567"}, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["code"] == "unauthorized"


def test_an_admin_key_on_a_client_route_is_forbidden(http, admin_auth):
    response = http.post("/otp/start", json={"phone": "+41791234567"}, headers=admin_auth)
    assert response.status_code == 403 and response.get_json()["code"] == "forbidden"


def test_an_invalid_idempotency_key_is_refused(http, auth):
    response = http.post("/otp/start", json={"phone": "+41791234567"},
                         headers={**auth, "Idempotency-Key": "x" * 300})
    assert response.status_code == 422
