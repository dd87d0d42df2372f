"""Configuration: read once, refused with one line naming the variable."""

from __future__ import annotations

import pytest
from limits import parse_many

from service import gateway
from service.config import ConfigError, load_settings, parse_test_numbers
from service.verification.budgets import limit_items
from tests.config_table import FULL, SERVICE_ROWS


def test_no_configuration_at_all_means_sandbox_with_development_keys():
    settings = load_settings({})
    assert settings.sandbox is True and settings.redis.url is None
    assert list(settings.keys.clients.values()) == ["sandbox-client-key"]
    assert settings.policy.code_mask == "######" and settings.policy.validity_minutes == 10


def test_a_userkey_turns_sandbox_off_and_then_everything_else_is_required():
    with pytest.raises(ConfigError, match="^ASPSMS_PASSWORD: "):
        load_settings({"ASPSMS_USERKEY": "USERKEY"})
    assert load_settings(FULL).sandbox is False


@pytest.mark.parametrize(("variable", "overrides"), SERVICE_ROWS)
def test_a_bad_value_is_refused_with_one_line_naming_the_variable(variable, overrides):
    with pytest.raises(ConfigError) as error:
        load_settings({**FULL, **overrides})
    assert error.value.lines == [str(error.value)]
    message = str(error.value)
    assert message.startswith(f"{variable}: ") and "\n" not in message
    assert error.value.variable == variable


def test_every_contract_variable_has_a_bad_value_row():
    import re
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", table, flags=re.MULTILINE))
    assert documented and documented <= {variable for variable, _ in SERVICE_ROWS}


def test_every_problem_is_reported_at_once_one_line_each():
    with pytest.raises(ConfigError) as error:
        load_settings({"ASPSMS_USERKEY": "USERKEY", "LOG_LEVEL": "LOUD",
                       "OTP_MAX_SENDS": "lots"})
    assert error.value.variables == [
        "ASPSMS_PASSWORD", "ASPSMS_ORIGINATOR", "REDIS_URL", "OTP_API_KEYS", "OTP_ADMIN_KEYS",
        "OTP_SECRET", "OTP_MAX_SENDS", "LOG_LEVEL"]


def test_the_redis_url_can_come_from_a_file_and_is_not_in_the_repr(tmp_path):
    url_file = tmp_path / "REDIS_URL"
    url_file.write_text("rediss://otp:p%40ss@redis.example:6380/0\n")
    settings = load_settings({**FULL, "REDIS_URL": "", "REDIS_URL_FILE": str(url_file)})
    assert settings.redis.url == "rediss://otp:p%40ss@redis.example:6380/0"
    assert "p%40ss" not in repr(settings)


def test_a_redis_url_and_its_file_together_are_refused(tmp_path):
    url_file = tmp_path / "REDIS_URL"
    url_file.write_text("redis://other:6379/0")
    with pytest.raises(ConfigError, match="^REDIS_URL: set both"):
        load_settings({**FULL, "REDIS_URL_FILE": str(url_file)})


def test_sandbox_mode_may_use_redis_or_the_embedded_store():
    assert load_settings({}).redis.url is None
    assert load_settings({"REDIS_URL": "redis://127.0.0.1:1/0"}).redis.url


def test_a_missing_originator_outside_sandbox_is_a_configuration_error():
    env = {k: v for k, v in FULL.items() if k != "ASPSMS_ORIGINATOR"}
    with pytest.raises(ConfigError, match="^ASPSMS_ORIGINATOR: "):
        load_settings(env)


def test_secrets_can_come_from_files(tmp_path):
    secret_file = tmp_path / "password"
    secret_file.write_text("from-a-file\n")
    env = {k: v for k, v in FULL.items() if k != "ASPSMS_PASSWORD"}
    settings = load_settings({**env, "ASPSMS_PASSWORD_FILE": str(secret_file)})
    assert settings.gateway.password == "from-a-file"
    assert "from-a-file" not in repr(settings)


def test_an_unreadable_secret_file_names_the_file_variable(tmp_path):
    with pytest.raises(ConfigError, match="^OTP_SECRET_FILE: "):
        load_settings({**FULL, "OTP_SECRET": "", "OTP_SECRET_FILE": str(tmp_path / "nope")})


def test_loopback_gateway_urls_may_use_plain_http():
    assert load_settings({**FULL, "ASPSMS_URL": "http://127.0.0.1:8090/"}).gateway.url == \
        "http://127.0.0.1:8090"


@pytest.mark.parametrize("url", ["http://json.aspsms.com", "ftp://127.0.0.1", "https:",
                                 "http://[::1]:8090", "http://localhost:8090"])
def test_the_gateway_url_rule_is_the_gateway_clients_own(url):
    """One rule, the client's: configuration refuses exactly what AspsmsClient would."""
    problem = gateway.url_problem(url)
    if problem is None:
        assert load_settings({**FULL, "ASPSMS_URL": url}).gateway.url == url
        return
    with pytest.raises(ConfigError) as error:
        load_settings({**FULL, "ASPSMS_URL": url})
    assert str(error.value) == f"ASPSMS_URL: {problem}"


def test_a_mapping_given_to_create_app_replaces_the_environment(monkeypatch):
    from service import create_app

    monkeypatch.setenv("OTP_MAX_SENDS", "lots")  # a developer's shell
    monkeypatch.setenv("OTP_CODE_MASK", "AAAAAAAA")
    app = create_app({**FULL, "ASPSMS_URL": "http://127.0.0.1:9"})
    policy = app.extensions["otp"].default_tenant.policy
    assert (policy.code_mask, policy.max_sends) == ("######", 5)


def test_without_a_mapping_create_app_reads_the_environment(monkeypatch):
    from service import create_app

    for name, value in {**FULL, "OTP_MAX_SENDS": "lots"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="^OTP_MAX_SENDS: "):
        create_app()


def test_a_policy_made_from_overrides_meets_the_rules_the_environment_meets():
    """A tenant's policy (overrides over the deployment's defaults) and the environment
    are held to one rule per field, in the same words."""
    from dataclasses import replace

    from service.verification.policy import PolicyError

    defaults = load_settings(FULL)
    tenant = replace(defaults.policy, max_sends=3)
    assert (tenant.max_sends, tenant.code_mask, defaults.policy.max_sends) == (3, "######", 5)
    with pytest.raises(PolicyError) as bad:
        replace(defaults.policy, max_sends=11, code_mask="####", originator="Too long a name")
    assert set(bad.value.problems) == {"max_sends", "code_mask", "originator"}
    with pytest.raises(PolicyError) as bad_limit:
        replace(defaults.limits, budget_global="5 per fortnight")
    for variable, value, problem in [
            ("OTP_MAX_SENDS", "11", bad.value.problems["max_sends"]),
            ("OTP_CODE_MASK", "####", bad.value.problems["code_mask"]),
            ("ASPSMS_ORIGINATOR", "Too long a name", bad.value.problems["originator"]),
            ("OTP_BUDGET_GLOBAL", "5 per fortnight", bad_limit.value.problems["budget_global"])]:
        with pytest.raises(ConfigError) as error:
            load_settings({**FULL, variable: value})
        assert str(error.value) == f"{variable}: {problem}"


def test_an_override_of_the_wrong_kind_is_a_policy_error_naming_the_field():
    from dataclasses import replace

    from service.verification.policy import PolicyError

    policy = load_settings(FULL).policy
    with pytest.raises(PolicyError) as bad:
        replace(policy, max_sends="3", sms_enabled="yes", max_attempts=True,
                message_template=7)
    assert bad.value.problems == {
        "max_sends": "must be a whole number, got '3'", "max_attempts":
        "must be a whole number, got True", "sms_enabled": "must be true or false, got 'yes'",
        "message_template": "must be text, got 7"}
    assert replace(policy, message_template=None).message_template is None


def test_the_app_uses_the_configured_parts_themselves():
    from service import create_app

    services = create_app({**FULL, "ASPSMS_URL": "http://127.0.0.1:9"}).extensions["otp"]
    settings, tenant = services.settings, services.default_tenant
    assert (tenant.policy, tenant.phones, tenant.limits) == (settings.policy, settings.phones,
                                                             settings.limits)
    assert limit_items(tenant.limits)["global"] == parse_many(settings.limits.budget_global)
    assert services.gateway.base_url == settings.gateway.url


def test_expired_test_numbers_are_ignored_and_valid_ones_kept():
    from datetime import date

    numbers = parse_test_numbers("+41790000000=123456@2027-01-31,+41790000001=654321@2020-01-01",
                                 today=date(2026, 11, 26))
    assert list(numbers) == ["+41790000000"] and numbers["+41790000000"].code == "123456"


def test_a_client_key_named_like_a_service_id_is_refused():
    # a default-service key's name owns its verifications as a managed service's id owns
    # that service's: a key named sv_… would resend that service's pending verifications
    name = "sv_" + "0" * 32
    with pytest.raises(ConfigError, match="^OTP_API_KEYS: a key name must not begin with 'sv_'"):
        load_settings({**FULL, "OTP_API_KEYS": f"{name}:{'k' * 24}"})
    assert load_settings({**FULL, "OTP_ADMIN_KEYS": f"{name}:{'a' * 24}"}).keys.admins
