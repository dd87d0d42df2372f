"""The Prometheus alert rules and the Grafana dashboard in deploy/: promtool checks the
rules and runs their unit tests, parses every dashboard expression, and every series they
read is one that service.metrics exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from service import metrics

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "aspsms-verify.json"
PROMTOOL = shutil.which("promtool")

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is missing: scripts/test installs it with apt-get "
                             "(Debian's prometheus package)")

# Grafana's own interval variables, replaced by a sample value so PromQL can parse them.
GRAFANA_INTERVALS = re.compile(r"\$(?:__rate_interval|__interval|__range)\b")
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
# A word not led by a digit (1h, 1e3), neither a function call nor part of a longer word.
_WORD = re.compile(r"(?<![\w.:])[A-Za-z_:][\w:]*(?![\w:]|\s*\()")
_KEYWORDS = {"and", "or", "unless", "offset", "bool", "inf", "nan", "group_left", "group_right"}


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


def series_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (not its labels, functions, keywords)."""
    expr = _STRING.sub('""', expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)
    expr = _GROUPING.sub(" ", expr)
    return {word for word in _WORD.findall(expr) if word.lower() not in _KEYWORDS}


def exported_series() -> set[str]:
    """Every series name service.metrics can expose, with the text format's suffixes."""
    names = set()
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase):
            for family in metric.describe():
                names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def alert_rules() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def rule_tests() -> list[dict]:
    return [case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
            for case in test["alert_rule_test"]]


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_expressions() -> list[str]:
    board = dashboard()
    variables = [v["query"]["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    return [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]\
        + [re.sub(r"\Alabel_values\((\w+), \w+\)\Z", r"\1", query) for query in variables]


def recording_rules(expressions: list[str]) -> str:
    rules = [{"record": f"dashboard:expression_{index}",
              "expr": GRAFANA_INTERVALS.sub("5m", expr)}
             for index, expr in enumerate(expressions, start=1)]
    return yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]})


# -- the alert rules --------------------------------------------------------------------

@needs_promtool
def test_the_alert_rules_pass_promtool_check_rules():
    result = promtool("check", "rules", str(RULES))

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


@needs_promtool
def test_the_alert_rules_pass_their_unit_tests():
    result = promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_the_unit_tests_fail_when_an_alert_does_not_fire_as_expected(tmp_path):
    shutil.copy(RULES, tmp_path / RULES.name)
    spec = yaml.safe_load(RULE_TESTS.read_text())
    firing = next(case for test in spec["tests"] for case in test["alert_rule_test"]
                  if case.get("exp_alerts"))
    firing["exp_alerts"] = []
    (tmp_path / RULE_TESTS.name).write_text(yaml.safe_dump(spec))

    result = promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)

    assert result.returncode != 0
    assert f"alertname: {firing['alertname']}" in result.stdout + result.stderr


def test_every_alert_has_a_case_that_fires_and_one_that_does_not():
    names = {rule["alert"] for rule in alert_rules()}
    cases = rule_tests()
    fires = {case["alertname"] for case in cases if case.get("exp_alerts")}
    stays_quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}

    assert names - fires == set(), "no series that fire"
    assert names - stays_quiet == set(), "no series that do not fire"
    # promtool passes a quiet case for an alert that does not exist: no such names here
    assert {case["alertname"] for case in cases} <= names


def test_the_alerts_read_only_series_the_service_exports():
    exported = exported_series()
    for rule in alert_rules():
        read = series_names(rule["expr"])

        assert read, rule["alert"]
        assert read <= exported, f"{rule['alert']} reads {sorted(read - exported)}"


def test_a_scrape_writes_the_labels_the_credits_rule_trusts(http):
    """AspsmsCreditsLow believes aspsms_credits only beside a successful CheckCredits."""
    scraped = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
               for family in text_string_to_metric_families(http.get("/metrics").text)
               for sample in family.samples}

    assert scraped[("aspsms_credits", ())] > 0
    assert scraped[("aspsms_calls_total",
                    (("endpoint", "CheckCredits"), ("outcome", "ok")))] >= 1


def test_the_operations_guide_names_every_alert():
    guide = (ROOT / "deploy" / "OPERATIONS.md").read_text()

    assert [rule["alert"] for rule in alert_rules() if rule["alert"] not in guide] == []


# -- the dashboard -------------------------------------------------------------------------

def test_the_dashboard_is_grafana_json_with_a_query_in_every_panel():
    board = dashboard()
    panels = board["panels"]
    ids = [panel["id"] for panel in panels]

    assert board["uid"] == "aspsms-verify" and board["schemaVersion"] >= 36
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert all(target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
                       for target in panel["targets"]), panel["title"]


@needs_promtool
def test_every_dashboard_expression_parses_as_promql(tmp_path):
    expressions = dashboard_expressions()
    rules = tmp_path / "dashboard.rules.yml"
    rules.write_text(recording_rules(expressions))

    result = promtool("check", "rules", str(rules))

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(expressions)} rules found" in result.stdout


@needs_promtool
def test_a_dashboard_expression_that_is_not_promql_is_caught(tmp_path):
    rules = tmp_path / "dashboard.rules.yml"
    broken = "sum by (country (rate(otp_sms_sent_total[$__rate_interval]))"
    rules.write_text(recording_rules([broken]))

    result = promtool("check", "rules", str(rules))

    assert result.returncode != 0
    assert "parse error" in result.stdout + result.stderr


def test_the_dashboard_reads_only_series_the_service_exports():
    exported = exported_series()
    for expr in dashboard_expressions():
        read = series_names(expr)

        assert read, expr
        assert read <= exported, f"{sorted(read - exported)} in {expr}"


def test_the_dashboard_shows_conversion_delivery_gateway_credits_and_protection():
    read = set().union(*map(series_names, dashboard_expressions()))

    assert {"otp_sms_sent_total", "otp_approvals_total", "otp_sms_failed_total",
            "otp_delivery_reports_total", "aspsms_calls_total",
            "aspsms_call_duration_seconds_bucket", "aspsms_credits", "otp_breaker_trips_total",
            "otp_limit_hits_total", "otp_store_errors_total", "otp_problems_total"} <= read


# -- the helpers these checks stand on -------------------------------------------------------

def test_series_names_are_the_metrics_of_an_expression_not_its_labels_or_functions():
    expr = ('histogram_quantile(0.95, sum by (job, le) (rate(a_seconds_bucket{x="y or z"}'
            '[$__rate_interval] offset 1h))) / on (job) group_left b_total > 1e3 and c unless '
            'sum without (instance) (d)')

    assert series_names(expr) == {"a_seconds_bucket", "b_total", "c", "d"}


def test_the_exported_series_have_the_text_formats_suffixes():
    exported = exported_series()

    assert {"otp_sms_sent_total", "aspsms_credits", "aspsms_call_duration_seconds_bucket",
            "aspsms_call_duration_seconds_count"} <= exported
    assert "otp_sms_sent" not in exported and "aspsms_call_duration_seconds" not in exported
