"""The SDK's public surface, and its promise to import nothing from the server."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import bioverify.client as sdk

CLIENT_DIR = Path(sdk.__file__).parent
#: The only server modules the SDK may import (DESIGN.md section 2).
ALLOWED_SERVER_MODULES = {
    "bioverify.errors",
    "bioverify.audit.receipt",
    "bioverify.audit.merkle",
    "bioverify.audit.note",
}


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(sdk) if not name.startswith("_")}
    submodules = {"errors", "models", "retry", "webhooks", "receipts", "testing"}
    assert set(sdk.__all__) == public - submodules - {"annotations"}
    assert sdk.__all__ == sorted(sdk.__all__, key=lambda n: (not n.isupper(), n))
    for name in sdk.__all__:
        assert getattr(sdk, name) is not None


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_sources_import_only_allowed_server_modules() -> None:
    for path in CLIENT_DIR.glob("*.py"):
        for module in imported_modules(path):
            if module.startswith("bioverify") and not module.startswith("bioverify.client"):
                assert module in ALLOWED_SERVER_MODULES | {"bioverify"}, (path.name, module)


def test_importing_the_sdk_loads_no_server_code() -> None:
    probe = (
        "import sys, bioverify.client; "
        "bad = sorted(m for m in sys.modules if m.startswith(('bioverify.', 'sqlalchemy', "
        "'fastapi', 'starlette')) and not m.startswith('bioverify.client') and m not in "
        f"{sorted(ALLOWED_SERVER_MODULES | {'bioverify.audit'})!r}); print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
