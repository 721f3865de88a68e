"""The package's public surface is what `__all__` says, and the pure modules stay pure."""

from __future__ import annotations

import subprocess
import sys

from bioverify import audit


def test_all_names_are_exported() -> None:
    assert sorted(audit.__all__) == sorted(set(audit.__all__))
    for name in audit.__all__:
        assert getattr(audit, name) is not None


def test_receipt_checking_needs_no_database_code() -> None:
    code = (
        "import sys, bioverify.audit.receipt; "
        "print(any(m.startswith('sqlalchemy') or m == 'rfc8785' for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
