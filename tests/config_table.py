"""A valid configuration outside sandbox mode, and a bad value for every variable.

Each row is ``(variable the error must name, variables to set)``; the service rows are
checked by load_settings, by the gunicorn master and by ``aspsms-verify serve`` alike.
"""

from __future__ import annotations

MISSING = "/nonexistent/secret"

FULL = {
    "ASPSMS_USERKEY": "USERKEY", "ASPSMS_PASSWORD": "pw", "ASPSMS_ORIGINATOR": "Acme",
    "REDIS_URL": "redis://127.0.0.1:1/0", "OTP_SECRET": "0123456789abcdef0123",
    "OTP_API_KEYS": "web:k1-0123456789abcdef", "OTP_ADMIN_KEYS": "ops:k2-0123456789abcdef",
}

SERVICE_ROWS = [
    ("ASPSMS_USERKEY", {"ASPSMS_USERKEY_FILE": MISSING}),  # both given
    ("ASPSMS_USERKEY_FILE", {"ASPSMS_USERKEY": "", "ASPSMS_USERKEY_FILE": MISSING}),
    ("ASPSMS_PASSWORD", {"ASPSMS_PASSWORD": ""}),
    ("ASPSMS_PASSWORD_FILE", {"ASPSMS_PASSWORD": "", "ASPSMS_PASSWORD_FILE": MISSING}),
    ("ASPSMS_ORIGINATOR", {"ASPSMS_ORIGINATOR": "ThisIsTooLongForSMS"}),
    ("ASPSMS_ORIGINATOR", {"ASPSMS_ORIGINATOR": ""}),
    ("ASPSMS_URL", {"ASPSMS_URL": "http://json.aspsms.com"}),
    ("ASPSMS_URL", {"ASPSMS_URL": "ftp://127.0.0.1"}),
    ("ASPSMS_AFFILIATE_ID", {"ASPSMS_AFFILIATE_ID": "our partner id"}),
    ("ASPSMS_TIMEOUT", {"ASPSMS_TIMEOUT": "soon"}),
    ("ASPSMS_TIMEOUT", {"ASPSMS_TIMEOUT": "0"}),
    ("REDIS_URL", {"REDIS_URL": "http://x"}),
    ("REDIS_URL", {"REDIS_URL": "redis://127.0.0.1:port/0"}),
    ("REDIS_URL", {"REDIS_URL": ""}),  # credentials but no Redis
    ("REDIS_URL_FILE", {"REDIS_URL": "", "REDIS_URL_FILE": MISSING}),
    ("REDIS_TIMEOUT", {"REDIS_TIMEOUT": "0"}),
    ("OTP_API_KEYS", {"OTP_API_KEYS": "no-colon-here"}),
    ("OTP_API_KEYS", {"OTP_API_KEYS": "a:k1-0123456789abcdef,a:k3-0123456789abcdef"}),
    ("OTP_API_KEYS", {"OTP_API_KEYS": "web:fifteen-chars15"}),  # a 15-character key
    ("OTP_API_KEYS_FILE", {"OTP_API_KEYS": "", "OTP_API_KEYS_FILE": MISSING}),
    ("OTP_ADMIN_KEYS", {"OTP_ADMIN_KEYS": "ops:k1-0123456789abcdef"}),  # a client key
    ("OTP_ADMIN_KEYS", {"OTP_ADMIN_KEYS": "ops:short"}),
    ("OTP_ADMIN_KEYS_FILE", {"OTP_ADMIN_KEYS": "", "OTP_ADMIN_KEYS_FILE": MISSING}),
    ("OTP_SECRET", {"OTP_SECRET": "short"}),
    ("OTP_SECRET_FILE", {"OTP_SECRET": "", "OTP_SECRET_FILE": MISSING}),
    ("OTP_PUBLIC_URL", {"OTP_PUBLIC_URL": "not a url"}),
    ("OTP_CODE_MASK", {"OTP_CODE_MASK": "####"}),
    ("OTP_CODE_MASK", {"OTP_CODE_MASK": "###<###"}),
    ("OTP_CODE_MASK_FILE", {"OTP_CODE_MASK_FILE": "/etc/hostname"}),  # not a secret
    ("OTP_VALIDITY_MINUTES", {"OTP_VALIDITY_MINUTES": "0"}),
    ("OTP_MAX_ATTEMPTS", {"OTP_MAX_ATTEMPTS": "five"}),
    ("OTP_RESEND_COOLDOWN", {"OTP_RESEND_COOLDOWN": "-1"}),
    ("OTP_MAX_SENDS", {"OTP_MAX_SENDS": "11"}),
    ("OTP_TEST_NUMBERS", {"OTP_TEST_NUMBERS": "+41790000000=123456"}),
    ("OTP_ALLOWED_COUNTRIES", {"OTP_ALLOWED_COUNTRIES": "CH,XX"}),
    ("OTP_DEFAULT_REGION", {"OTP_DEFAULT_REGION": "Switzerland"}),
    ("OTP_ALLOW_VOIP", {"OTP_ALLOW_VOIP": "sometimes"}),
    ("OTP_MESSAGE_TEMPLATE", {"OTP_MESSAGE_TEMPLATE": "Your code"}),
    ("OTP_LIMIT_START_PER_PHONE", {"OTP_LIMIT_START_PER_PHONE": "lots"}),
    ("OTP_LIMIT_START_PER_PHONE", {"OTP_LIMIT_START_PER_PHONE": "5 per 100000 day"}),
    ("OTP_LIMIT_START_PER_IP", {"OTP_LIMIT_START_PER_IP": "100 per hours;x"}),
    ("OTP_LIMIT_START_PER_IP", {"OTP_LIMIT_START_PER_IP": "5 per 0 hour"}),
    ("OTP_LIMIT_CHECK_PER_IP", {"OTP_LIMIT_CHECK_PER_IP": "5 per fortnight"}),
    ("OTP_LIMIT_CHECK_PER_PHONE", {"OTP_LIMIT_CHECK_PER_PHONE": "thirty per hour"}),
    ("OTP_LIMIT_PER_CLIENT", {"OTP_LIMIT_PER_CLIENT": "per minute"}),
    ("OTP_MAX_FAILURES_PER_PHONE", {"OTP_MAX_FAILURES_PER_PHONE": "101"}),
    ("OTP_BUDGET_PER_PREFIX", {"OTP_BUDGET_PER_PREFIX": "50"}),
    ("OTP_BUDGET_PER_COUNTRY", {"OTP_BUDGET_PER_COUNTRY": "1000 per eon"}),
    ("OTP_BUDGET_GLOBAL", {"OTP_BUDGET_GLOBAL": "5 per fortnight"}),
    ("OTP_TRUSTED_PROXIES", {"OTP_TRUSTED_PROXIES": "-1"}),
    ("OTP_SMS_ENABLED", {"OTP_SMS_ENABLED": "maybe"}),
    ("OTP_WEBHOOK_ALLOW_PRIVATE", {"OTP_WEBHOOK_ALLOW_PRIVATE": "sometimes"}),
    ("LOG_LEVEL", {"LOG_LEVEL": "LOUD"}),
]

# read by service/gunicorn_conf.py in the master
PROCESS_ROWS = [
    ("GUNICORN_THREADS", {"GUNICORN_THREADS": "many"}),
    ("GUNICORN_BIND", {"GUNICORN_BIND": "localhost:http-alt"}),
    ("GUNICORN_TIMEOUT", {"GUNICORN_TIMEOUT": "0"}),
    ("GUNICORN_GRACEFUL_TIMEOUT", {"GUNICORN_GRACEFUL_TIMEOUT": "30s"}),
    ("GUNICORN_KEEPALIVE", {"GUNICORN_KEEPALIVE": "-5"}),
    ("GUNICORN_MAX_REQUESTS", {"GUNICORN_MAX_REQUESTS": "lots"}),
    ("GUNICORN_MAX_REQUESTS_JITTER", {"GUNICORN_MAX_REQUESTS_JITTER": "1.5"}),
    ("GUNICORN_WORKER_TMP_DIR", {"GUNICORN_WORKER_TMP_DIR": "/nonexistent/tmp"}),
    ("GUNICORN_ACCESSLOG", {"GUNICORN_ACCESSLOG": "/nonexistent/access.log"}),
    ("GUNICORN_CONTROL_SOCKET", {"GUNICORN_CONTROL_SOCKET": "/nonexistent/gunicorn.ctl"}),
    ("PROMETHEUS_MULTIPROC_DIR", {"PROMETHEUS_MULTIPROC_DIR": "/dev/null/metrics"}),
]

# read by `aspsms-verify serve` (WEB_CONCURRENCY also by the image's entry point: gunicorn
# itself reads it at import, before any configuration file)
SERVE_ROWS = [
    ("WEB_CONCURRENCY", {"WEB_CONCURRENCY": "two"}),
    ("PORT", {"PORT": "eighty"}),
    ("HOST", {"HOST": "local host"}),
]
