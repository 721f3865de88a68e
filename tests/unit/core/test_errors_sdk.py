"""The SDKs' copies of the error catalogue are generated from errors.py and current."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bioverify import errors
from bioverify.errors_sdk import PYTHON_TARGET, TARGETS, TYPESCRIPT_TARGET, main
from bioverify_client import catalogue as client_catalogue


@pytest.mark.parametrize("target", sorted(TARGETS), ids=lambda p: p.name)
def test_committed_sdk_catalogue_is_current(target: Path) -> None:
    assert target.read_text(encoding="utf-8") == TARGETS[target](), (
        f"{target} is stale: run `python -m bioverify.errors_sdk --write` (make catalogues)"
    )


def test_python_client_reads_the_same_rows_as_the_server() -> None:
    assert list(client_catalogue.CATALOGUE) == list(errors.CATALOGUE)
    for code, row in errors.CATALOGUE.items():
        mine = client_catalogue.CATALOGUE[code]
        assert (mine.name, mine.kind, mine.retry, mine.http_status) == (
            row.name,
            row.kind,
            row.retry,
            row.http_status,
        )
        assert (mine.message, mine.remedy) == (row.message, row.remedy)
        assert mine.is_fatal == row.is_fatal and mine.is_permanent == row.is_permanent
    assert dict(client_catalogue.LEGACY_ALIASES) == dict(errors.LEGACY_ALIASES)
    assert client_catalogue.lookup(-13) == client_catalogue.CATALOGUE[-8]


def test_typescript_catalogue_names_every_code_with_its_classes() -> None:
    text = TYPESCRIPT_TARGET.read_text(encoding="utf-8")
    rows = re.findall(
        r'code: (-?\d+),\n    name: "([A-Z_]+)",\n    kind: "(\w+)",\n'
        r'    retry: "(\w+)",\n    httpStatus: (\d+),',
        text,
    )
    expected = [
        (str(r.code), r.name, str(r.kind), str(r.retry), str(r.http_status))
        for r in errors.CATALOGUE.values()
    ]
    assert rows == expected


def test_check_mode_names_a_stale_copy(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--check"]) == 0
    monkeypatch.setitem(TARGETS, PYTHON_TARGET, lambda: "stale\n")
    assert main(["--check"]) == 1
    assert "_catalogue_data.py is stale" in capsys.readouterr().err
    assert main([]) == 2
