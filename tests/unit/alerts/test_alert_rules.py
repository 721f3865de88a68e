"""Alert rules: thresholds, windows, deduplication."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bioverify.alerts.models import Alert
from bioverify.alerts.rules import DEFAULT_RULES, Signal, load_rules
from bioverify.alerts.service import AlertService
from bioverify.config import ConfigError
from bioverify.storage.database import session_factory, transaction
from support import FakeClock, migrated


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = migrated(f"sqlite:///{tmp_path / 'alerts.sqlite3'}")
    yield session_factory(engine)
    engine.dispose()


def observe(
    factory: sessionmaker[Session], service: AlertService, signal: Signal, **keys: str
) -> list[str]:
    with transaction(factory) as db:
        return [a.rule for a in service.observe(db, signal, keys=keys, client_id="c1")]


def test_one_spoof_raises_one_critical_alert(factory: sessionmaker[Session]) -> None:
    seen: list[Alert] = []
    service = AlertService(clock=FakeClock(), on_raised=[lambda _db, a: seen.append(a)])
    assert observe(factory, service, Signal.SPOOF, session="s1", client="c1") == ["spoof_attempt"]
    assert [a.severity for a in seen] == ["critical"]
    # The same session's spoof is one incident; another session's is another.
    assert observe(factory, service, Signal.SPOOF, session="s1", client="c1") == []
    assert observe(factory, service, Signal.SPOOF, session="s2", client="c1") == ["spoof_attempt"]


def test_camera_failures_alert_on_the_third_within_the_window(
    factory: sessionmaker[Session],
) -> None:
    clock = FakeClock()
    service = AlertService(clock=clock)
    results = []
    for _ in range(4):
        results.append(observe(factory, service, Signal.CAMERA_FAIL, client="c1"))
        clock.advance(60)
    assert results == [[], [], ["camera_fail_client"], []]


def test_camera_failures_spread_beyond_the_window_raise_nothing(
    factory: sessionmaker[Session],
) -> None:
    clock = FakeClock()
    service = AlertService(clock=clock)
    for _ in range(4):
        assert observe(factory, service, Signal.CAMERA_FAIL, client="c1") == []
        clock.advance(301)


def test_device_rule_counts_per_device(factory: sessionmaker[Session]) -> None:
    service = AlertService(clock=FakeClock())
    for i in range(3):
        rules = observe(factory, service, Signal.CAMERA_FAIL, client=f"c{i}", device="d1")
    assert rules == ["camera_fail_device"]


def test_a_new_window_alerts_again(factory: sessionmaker[Session]) -> None:
    clock = FakeClock()
    service = AlertService(clock=clock)
    for _ in range(3):
        observe(factory, service, Signal.CAMERA_FAIL, client="c1")
    clock.advance(601)
    fresh = [observe(factory, service, Signal.CAMERA_FAIL, client="c1") for _ in range(3)]
    assert fresh == [[], [], ["camera_fail_client"]]


def test_face_mismatch_takeover_rule(factory: sessionmaker[Session]) -> None:
    service = AlertService(clock=FakeClock())
    raised = [observe(factory, service, Signal.FACE_NOT_MATCH, customer="h1") for _ in range(5)]
    assert raised[-1] == ["takeover_attempt"]
    assert all(r == [] for r in raised[:-1])


def test_rules_file_overrides_defaults(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(
        '[{"name": "spoofs", "signal": "code:1", "per": "client", "threshold": 2,'
        ' "window_s": 60, "severity": "warning", "summary": "two spoofs"}]'
    )
    rules = load_rules(path)
    assert [r.name for r in rules] == ["spoofs"]
    assert load_rules(None) == DEFAULT_RULES
    path.write_text("[{}]")
    with pytest.raises(ConfigError, match="BIOVERIFY_ALERT_RULES_FILE"):
        load_rules(path)
