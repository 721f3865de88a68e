"""deploy/prometheus/alerts.yml loads and only names metrics the service exports."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY, generate_latest

import bioverify.alerts.service
import bioverify.metrics
from bioverify.alerts.rules import DEFAULT_RULES

# Importing these registers their metrics in the default registry.
REGISTERING_MODULES = (bioverify.alerts.service, bioverify.metrics)

RULES = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "alerts.yml"


def test_rules_file_is_valid_prometheus_rule_groups() -> None:
    data = yaml.safe_load(RULES.read_text())
    assert data["groups"]
    names = set()
    for group in data["groups"]:
        assert group["name"] and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
            assert rule["labels"]["severity"] in {"warning", "critical"}
            assert rule["annotations"]["summary"]
            names.add(rule["alert"])
    assert {"BioverifySpoofAttempt", "BioverifyRepeatedCameraFailures"} <= names


def test_rules_reference_only_exported_metrics() -> None:
    exported = generate_latest(REGISTRY).decode()
    families = set(re.findall(r"^# TYPE (bioverify_\w+) ", exported, re.MULTILINE))
    # Counters are exported as <name>_total.
    known = families | {f"{f}_total" for f in families}
    used = set(re.findall(r"bioverify_\w+", RULES.read_text()))
    assert used <= known, f"unknown metrics in alerts.yml: {sorted(used - known)}"


def test_every_built_in_alert_rule_has_a_prometheus_counterpart() -> None:
    text = RULES.read_text()
    uncovered = [r.name for r in DEFAULT_RULES if r.name not in text and r.signal.value not in text]
    # camera_fail_* are covered by the -7 session counter; server_error by the 5xx rule.
    assert set(uncovered) <= {
        "camera_fail_client",
        "camera_fail_device",
        "server_error",
        "webhook_dead_letter",
    }
