"""Metrics label every matched request by its route template, whatever base URL form
the integrator used (``/verification-session/...``, ``/v2/v2/...``): never "unmatched"."""

from __future__ import annotations

import re

import httpx
import pytest

from support import Creds

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

TEMPLATE = "/v2/verification-session/{sessionId}"


def _count(metrics: str, method: str, route: str) -> float:
    total = 0.0
    pattern = re.compile(r"^bioverify_http_requests_total\{(?P<labels>.*)\} (?P<value>\S+)$", re.M)
    for found in pattern.finditer(metrics):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', found.group("labels")))
        if labels.get("method") == method and labels.get("route") == route:
            total += float(found.group("value"))
    return total


@pytest.mark.parametrize(
    "prefix", ["/v2/verification-session", "/verification-session", "/v2/v2/verification-session"]
)
def test_every_base_url_form_is_labelled_by_its_template(
    app_client: httpx.Client, creds: Creds, prefix: str
) -> None:
    made = app_client.post(
        "/v2/verification-session", json={"type": "ENROLL"}, headers=creds.headers()
    )
    assert made.status_code == 201, made.text
    before = app_client.get("/metrics").text
    got = app_client.get(f"{prefix}/{made.json()['sessionId']}", headers=creds.headers())
    assert got.status_code == 200, got.text
    after = app_client.get("/metrics").text
    assert _count(after, "GET", TEMPLATE) == _count(before, "GET", TEMPLATE) + 1
    assert _count(after, "GET", "unmatched") == _count(before, "GET", "unmatched")
