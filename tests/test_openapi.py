"""openapi.yaml is the truth about the code: every route, request limit and problem code."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest
import yaml
from marshmallow import fields, validate
from openapi_spec_validator import OpenAPIV31SpecValidator

import service
import service.admin
import service.http
import service.verification
from service.errors import ServiceError
from tests.conftest import CLIENT_KEY

ROOT = Path(__file__).resolve().parent.parent
SPEC_PATH = ROOT / "openapi.yaml"
SPEC = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
SCHEMAS = SPEC["components"]["schemas"]
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
# Werkzeug answers these for every route by itself; the document describes what views do.
IMPLICIT_METHODS = {"HEAD", "OPTIONS"}
# A probe's "not ready" is an answer for the orchestrator, not a problem for a caller.
NOT_PROBLEMS = {("/readyz", "503")}


def spec_routes(*, sandbox: bool) -> dict[str, set[str]]:
    """The document's operations, and the web console's pages it lists beside them."""
    routes = {path: set(methods) for path, methods in SPEC["x-console-routes"]["routes"].items()}
    for path, item in SPEC["paths"].items():
        operations = {m: op for m, op in item.items() if m in HTTP_METHODS}
        if not sandbox and any(op.get("x-sandbox-only") for op in operations.values()):
            continue
        routes.setdefault(path, set()).update(m.upper() for m in operations)
    return routes


def app_routes(app) -> dict[str, set[str]]:
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        routes.setdefault(path, set()).update(rule.methods - IMPLICIT_METHODS)
    return routes


def deref(node: dict) -> dict:
    """The object a ``$ref`` points at (the document has only local references)."""
    while "$ref" in node:
        target = SPEC
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def problem_table() -> dict[str, int]:
    """``code → status`` from the table in ProblemCode's description."""
    rows = re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", SCHEMAS["ProblemCode"]["description"],
                      flags=re.MULTILINE)
    return {code: int(status) for code, status in rows}


def all_subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | all_subclasses(sub)
    return found


def service_errors() -> set[type[ServiceError]]:
    """Every ServiceError subclass, after importing the app and every HTTP and domain module.

    (Not every module of the package: gunicorn_conf changes the environment on import.)
    """
    importlib.import_module("service.app")
    for package in (service.http, service.verification, service.admin):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(module.name)
    return all_subclasses(ServiceError)


@pytest.fixture
def sandbox_app(make_app):
    app = make_app(ASPSMS_USERKEY="")
    yield app
    app.extensions["otp"].simulator.stop()


def test_the_document_is_a_valid_openapi_3_1_description_of_this_version():
    assert SPEC["openapi"].startswith("3.1.")
    OpenAPIV31SpecValidator(SPEC).validate()
    assert SPEC["info"]["version"] == service.__version__


def test_every_route_of_the_sandbox_app_is_described_with_the_same_methods(sandbox_app):
    assert app_routes(sandbox_app) == spec_routes(sandbox=True)


def test_every_route_of_a_configured_app_is_described_and_sandbox_routes_are_not_there(app):
    assert app_routes(app) == spec_routes(sandbox=False)


def test_get_openapi_yaml_serves_this_document_in_sandbox_mode(sandbox_app):
    response = sandbox_app.test_client().get("/openapi.yaml")
    assert response.status_code == 200
    assert response.mimetype == "application/yaml"
    assert response.get_data() == SPEC_PATH.read_bytes()


def test_with_a_gateway_the_served_document_leaves_the_sandbox_routes_out(app, http):
    response = http.get("/openapi.yaml")
    assert response.status_code == 200 and response.mimetype == "application/yaml"
    served = yaml.safe_load(response.get_data(as_text=True))
    sandbox_only = {path for path, item in SPEC["paths"].items()
                    if any(op.get("x-sandbox-only") for m, op in item.items()
                           if m in HTTP_METHODS)}
    assert sandbox_only == {"/sandbox/messages"}
    assert served["paths"] == {p: i for p, i in SPEC["paths"].items() if p not in sandbox_only}
    assert "sandbox" not in {tag["name"] for tag in served["tags"]}
    assert {k: v for k, v in served.items() if k not in ("paths", "tags")} == {
        k: v for k, v in SPEC.items() if k not in ("paths", "tags")}
    assert http.get("/sandbox/messages",
                    headers={"Authorization": f"Bearer {CLIENT_KEY}"}).status_code == 404


def test_the_packaged_document_is_the_root_document():
    packaged = Path(service.__file__).parent / "openapi.yaml"
    assert packaged.read_bytes() == SPEC_PATH.read_bytes()


def test_every_problem_code_the_service_raises_is_in_the_enum_with_its_status():
    enum, table = set(SCHEMAS["ProblemCode"]["enum"]), problem_table()
    raised = {(cls.code, cls.status) for cls in service_errors()}
    assert {code for code, _ in raised} <= enum
    assert {(code, table[code]) for code, _ in raised} == raised


def test_each_problem_code_is_declared_by_one_class():
    """(A subclass that keeps its parent's code, to carry more for the code that catches it,
    declares nothing.)"""
    classes: dict[str, list[str]] = {}
    for cls in service_errors():
        if "code" in vars(cls):
            classes.setdefault(cls.code, []).append(cls.__qualname__)
    assert {code: names for code, names in classes.items() if len(names) > 1} == {}


def test_the_problem_code_table_describes_exactly_the_enum():
    assert set(problem_table()) == set(SCHEMAS["ProblemCode"]["enum"])


def test_every_code_in_the_enum_can_actually_be_answered():
    from service.http.problems import HTTP_CODES

    answered = {cls.code for cls in service_errors()} | set(HTTP_CODES.values())
    assert set(SCHEMAS["ProblemCode"]["enum"]) <= answered


def request_bodies():
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS and "requestBody" in operation:
                # JSON, or form-encoded as Twilio's routes (/v2/) are
                (content,) = operation["requestBody"]["content"].values()
                yield pytest.param(deref(content["schema"]), id=f"{method.upper()} {path}")


@pytest.mark.parametrize("schema", list(request_bodies()))
def test_every_request_body_refuses_unknown_fields(schema):
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False


def marshmallow_schemas():
    from service.http import schemas

    return [
        pytest.param("StartRequest", schemas.START, id="start"),
        pytest.param("CheckRequest", schemas.CHECK, id="check"),
        pytest.param("UnlockRequest", schemas.UNLOCK, id="unlock"),
        pytest.param("LockoutClearRequest", schemas.LOCKOUT, id="lockout"),
        pytest.param("EmptyRequest", schemas.EMPTY, id="empty"),
    ]


TYPES = {fields.String: "string", fields.Integer: "integer", fields.Boolean: "boolean"}


def expected_property(field: fields.Field) -> dict:
    """The JSON Schema keywords a marshmallow field's type and validators stand for."""
    kind = next(name for cls, name in TYPES.items() if isinstance(field, cls))
    expected: dict = {"type": kind}
    for validator in field.validators:
        if isinstance(validator, validate.Length):
            expected.update({k: v for k, v in (("minLength", validator.min),
                                               ("maxLength", validator.max)) if v is not None})
        elif isinstance(validator, validate.Range):
            expected.update({"minimum": validator.min, "maximum": validator.max})
        elif isinstance(validator, validate.Regexp):
            # Python anchors \A…\Z (no match before a trailing newline) are ECMA's ^…$
            pattern = validator.regex.pattern
            expected["pattern"] = re.sub(r"\\Z$", "$", re.sub(r"^\\A", "^", pattern))
    return expected


@pytest.mark.parametrize(("name", "marshmallow_schema"), marshmallow_schemas())
def test_request_schemas_have_the_fields_and_limits_of_the_marshmallow_schemas(
        name, marshmallow_schema):
    schema = SCHEMAS[name]
    loaded = marshmallow_schema.fields
    assert set(schema.get("properties", {})) == set(loaded)
    assert set(schema.get("required", [])) == {n for n, f in loaded.items() if f.required}
    for field_name, field in loaded.items():
        expected, described = expected_property(field), schema["properties"][field_name]
        assert {k: described.get(k) for k in expected} == expected, field_name


def test_the_audit_query_parameters_have_the_limits_of_the_marshmallow_schema():
    from service.http import schemas

    described = {p["name"]: p["schema"] for p in SPEC["paths"]["/admin/audit"]["get"]["parameters"]
                 if p.get("in") == "query"}
    assert set(described) == set(schemas.AUDIT_QUERY.fields)
    limit = schemas.AUDIT_QUERY.fields["limit"]
    expected = {**expected_property(limit), "default": limit.load_default}
    assert {k: described["limit"].get(k) for k in expected} == expected


def operations():
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield pytest.param(path, operation, id=f"{method.upper()} {path}")


@pytest.mark.parametrize(("path", "operation"), list(operations()))
def test_every_operation_names_the_key_it_needs(path, operation):
    expected = ([{"adminKey": []}] if path.startswith("/admin/") else
                [{"clientKey": []}] if path.startswith(("/otp/", "/sandbox/")) else
                [{"twilioBasic": []}] if path.startswith("/v2/") else [])
    assert operation["security"] == expected


@pytest.mark.parametrize(("path", "operation"), list(operations()))
def test_every_error_response_is_a_problem_and_every_refusal_of_a_key_is_described(
        path, operation):
    responses = {status: deref(r) for status, r in operation["responses"].items()}
    if path.startswith("/v2/"):  # Twilio's routes answer Twilio's error body, 401 only
        for status, response in responses.items():
            if int(status) >= 400:
                assert response["content"] == {"application/json": {"schema": {
                    "$ref": "#/components/schemas/TwilioError"}}}, status
        assert responses["401"]["headers"]["WWW-Authenticate"]["$ref"].endswith(
            "/TwilioWWW-Authenticate")
        return
    for status, response in responses.items():
        if int(status) >= 400 and (path, status) not in NOT_PROBLEMS:
            assert list(response["content"]) == ["application/problem+json"], status
    if operation["security"]:
        assert {"401", "403"} <= set(responses)
        assert responses["401"]["headers"]["WWW-Authenticate"]["$ref"].endswith(
            "/WWW-Authenticate")
    if "429" in responses:
        assert "Retry-After" in responses["429"]["headers"]
