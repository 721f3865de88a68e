"""The SDK's public surface, its independence from the server, and the server's alias."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import bioverify.client as alias
import bioverify_client as sdk

CLIENT_DIR = Path(sdk.__file__).parent
#: What the client distribution declares; nothing else may be imported at run time.
RUNTIME_DEPENDENCIES = {"httpx", "cryptography", "rfc8785"}
SUBMODULES = ("errors", "models", "receipts", "retry", "webhooks", "testing", "_core")


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(sdk) if not name.startswith("_")}
    submodules = {
        "catalogue",
        "errors",
        "models",
        "retry",
        "webhooks",
        "receipts",
        "testing",
        "tiles",
    }
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


def test_sources_import_only_the_standard_library_and_declared_dependencies() -> None:
    for path in CLIENT_DIR.glob("*.py"):
        for module in imported_modules(path):
            top = module.split(".")[0]
            allowed = top in sys.stdlib_module_names or top in RUNTIME_DEPENDENCIES
            assert allowed or top == "bioverify_client", (path.name, module)


def test_importing_the_sdk_loads_no_server_code() -> None:
    probe = (
        "import sys, bioverify_client; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('bioverify', 'sqlalchemy', 'fastapi', 'starlette', 'pydantic', 'cv2', 'numpy')); "
        "print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_the_server_alias_is_the_same_objects() -> None:
    # Existing ``bioverify.client`` imports keep working, and ``except`` clauses
    # written against either name catch the same exceptions.
    assert alias.__all__ == sdk.__all__
    for name in sdk.__all__:
        assert getattr(alias, name) is getattr(sdk, name), name
    for sub in SUBMODULES:
        mine = __import__(f"bioverify_client.{sub}", fromlist=["_"])
        theirs = __import__(f"bioverify.client.{sub}", fromlist=["_"])
        assert theirs.__all__ == mine.__all__
        for name in mine.__all__:
            assert getattr(theirs, name) is getattr(mine, name), (sub, name)
