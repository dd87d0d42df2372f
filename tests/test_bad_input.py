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


# -- text that is not Unicode ---------------------------------------------------------------
# JSON may escape half a UTF-16 pair: "\ud800" decodes to a lone surrogate, which no encoder
# takes. Every string field of every JSON body, and a field name, is refused with its own
# field error.
LONE = "\\ud800"
_OTP = "/otp/verifications/vf_0000AAAAAAAAAAAAAAAAAAAAAA/cancel"
TEXT_FIELDS = [
    ("client", "/otp/start", {"phone": LONE}, "phone"),
    ("client", "/otp/start", {"phone": "+41791234567", "locale": "de" + LONE}, "locale"),
    ("client", "/otp/start", {"phone": "+41791234567", "code_mask": "######" + LONE},
     "code_mask"),
    ("client", "/otp/start", {"phone": "+41791234567", "reference": LONE}, "reference"),
    ("client", "/otp/start", {"phone": "+41791234567", "reference": "a\\udfffb"}, "reference"),
    ("client", "/otp/start", {"phone": "+41791234567", LONE: "x"}, LONE),
    ("client", "/otp/check", {"id": "vf_x", "code": LONE}, "code"),
    ("client", "/otp/check", {"id": LONE, "code": "123456"}, "id"),
    ("client", "/otp/check", {"phone": "+4179" + LONE, "code": "123456"}, "phone"),
    ("client", _OTP, {LONE: 1}, LONE),
    ("admin", "/admin/lockouts/clear", {"phone": LONE}, "phone"),
    ("admin", "/admin/originators/Verify/unlock", {"unlock_code": LONE}, "unlock_code"),
    ("admin", "/admin/originators/41791234567/unlock-code", {"x": [LONE]}, "x"),
]


@pytest.mark.parametrize(("who", "path", "fields", "field"), TEXT_FIELDS)
def test_a_lone_surrogate_in_any_json_text_is_a_422_field_error(
        http, auth, admin_auth, simulator, who, path, fields, field):
    body = "{" + ", ".join(f'"{name}": {_json(value)}' for name, value in fields.items()) + "}"
    for idempotency in ({}, {"Idempotency-Key": "k1"}):
        response = http.post(path, data=body.encode(), headers={
            **(auth if who == "client" else admin_auth), **JSON, **idempotency})
        assert response.status_code == 422, response.get_data(as_text=True)
        assert response.mimetype == "application/problem+json"
        problem = response.get_json()
        assert problem["code"] == "validation_failed"
        assert list(problem["errors"]) == [field]
    assert requests.get(simulator.url + "/_sim/messages", timeout=5).json() == []


def _json(value) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return "[" + ", ".join(map(_json, value)) + "]" if isinstance(value, list) else str(value)
