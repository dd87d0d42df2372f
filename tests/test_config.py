"""Configuration: read once, refused with one line naming the variable."""

from __future__ import annotations

import pytest

from service.config import ConfigError, load_settings, parse_test_numbers

FULL = {
    "ASPSMS_USERKEY": "USERKEY", "ASPSMS_PASSWORD": "pw", "ASPSMS_ORIGINATOR": "Acme",
    "OTP_SECRET": "0123456789abcdef0123", "OTP_API_KEYS": "web:k1-0123456789abcdef",
    "OTP_ADMIN_KEYS": "ops:k2-0123456789abcdef",
}


def test_no_configuration_at_all_means_sandbox_with_development_keys():
    settings = load_settings({})
    assert settings.sandbox is True and settings.redis_url is None
    assert list(settings.api_keys.values()) == ["sandbox-client-key"]
    assert settings.code_mask == "######" and settings.validity_minutes == 10


def test_a_userkey_turns_sandbox_off_and_then_everything_else_is_required():
    with pytest.raises(ConfigError, match="^ASPSMS_PASSWORD: "):
        load_settings({"ASPSMS_USERKEY": "USERKEY"})
    assert load_settings(FULL).sandbox is False


@pytest.mark.parametrize(("variable", "value"), [
    ("ASPSMS_URL", "http://json.aspsms.com"),
    ("ASPSMS_URL", "ftp://127.0.0.1"),
    ("ASPSMS_TIMEOUT", "soon"),
    ("ASPSMS_TIMEOUT", "0"),
    ("ASPSMS_ORIGINATOR", "ThisIsTooLongForSMS"),
    ("OTP_API_KEYS", "no-colon-here"),
    ("OTP_API_KEYS", "a:k1-0123456789abcdef,a:k3-0123456789abcdef"),
    ("OTP_ADMIN_KEYS", "ops:k1-0123456789abcdef"),
    ("OTP_SECRET", "short"),
    ("OTP_CODE_MASK", "####"),
    ("OTP_CODE_MASK", "###<###"),
    ("OTP_VALIDITY_MINUTES", "0"),
    ("OTP_MAX_ATTEMPTS", "five"),
    ("OTP_MAX_FAILURES_PER_PHONE", "101"),
    ("OTP_ALLOWED_COUNTRIES", "CH,XX"),
    ("OTP_DEFAULT_REGION", "Switzerland"),
    ("OTP_LIMIT_START_PER_PHONE", "lots"),
    ("OTP_BUDGET_GLOBAL", "5 per fortnight"),
    ("OTP_SMS_ENABLED", "maybe"),
    ("OTP_TEST_NUMBERS", "+41790000000=123456"),
    ("OTP_PUBLIC_URL", "not a url"),
    ("OTP_TRUSTED_PROXIES", "-1"),
])
def test_a_bad_value_is_refused_with_one_line_naming_the_variable(variable, value):
    with pytest.raises(ConfigError) as error:
        load_settings({**FULL, variable: value})
    message = str(error.value)
    assert message.startswith(f"{variable}: ") and "\n" not in message
    assert error.value.variable == variable


def test_a_missing_originator_outside_sandbox_is_a_configuration_error():
    env = {k: v for k, v in FULL.items() if k != "ASPSMS_ORIGINATOR"}
    with pytest.raises(ConfigError, match="^ASPSMS_ORIGINATOR: "):
        load_settings(env)


def test_secrets_can_come_from_files(tmp_path):
    secret_file = tmp_path / "password"
    secret_file.write_text("from-a-file\n")
    env = {k: v for k, v in FULL.items() if k != "ASPSMS_PASSWORD"}
    settings = load_settings({**env, "ASPSMS_PASSWORD_FILE": str(secret_file)})
    assert settings.aspsms_password == "from-a-file"
    assert "from-a-file" not in repr(settings)


def test_an_unreadable_secret_file_names_the_file_variable(tmp_path):
    with pytest.raises(ConfigError, match="^OTP_SECRET_FILE: "):
        load_settings({**FULL, "OTP_SECRET": "", "OTP_SECRET_FILE": str(tmp_path / "nope")})


def test_loopback_gateway_urls_may_use_plain_http():
    assert load_settings({**FULL, "ASPSMS_URL": "http://127.0.0.1:8090/"}).aspsms_url == \
        "http://127.0.0.1:8090"


def test_expired_test_numbers_are_ignored_and_valid_ones_kept():
    from datetime import date

    numbers = parse_test_numbers("+41790000000=123456@2027-01-31,+41790000001=654321@2020-01-01",
                                 today=date(2026, 11, 26))
    assert list(numbers) == ["+41790000000"] and numbers["+41790000000"].code == "123456"
