"""Renders the SDKs' copies of the error catalogue from :data:`bioverify.errors.CATALOGUE`.

The Python client (``sdk/python``) and the TypeScript SDK (``sdk/typescript``) are
installed without the server, so each carries the catalogue as generated data;
``errors.py`` stays the one place it is written. A test fails when a committed copy
differs from what this module renders (as for ``docs/errors.md``).

Regenerate both with ``python -m bioverify.errors_sdk --write`` (``make catalogues``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bioverify.errors import CATALOGUE, LEGACY_ALIASES

REPO_ROOT = Path(__file__).resolve().parents[2]
PYTHON_TARGET = REPO_ROOT / "sdk" / "python" / "src" / "bioverify_client" / "_catalogue_data.py"
TYPESCRIPT_TARGET = REPO_ROOT / "sdk" / "typescript" / "src" / "catalogue.ts"

_GENERATED = "Generated from bioverify.errors.CATALOGUE by `python -m bioverify.errors_sdk --write`"


def _text(value: str) -> str:
    # JSON string syntax is also valid Python and TypeScript, with the same meaning.
    return json.dumps(value, ensure_ascii=False)


def render_python() -> str:
    """``bioverify_client/_catalogue_data.py``: the rows as plain tuples."""
    lines = [
        f'"""{_GENERATED}; do not edit by hand."""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Final",
        "",
        "#: (code, name, kind, retry, http_status, message, remedy), in catalogue order.",
        "ROWS: Final[tuple[tuple[int, str, str, str, int, str, str], ...]] = (",
    ]
    for row in CATALOGUE.values():
        lines.append("    (")
        for value in (row.code, row.name, row.kind.value, row.retry.value, row.http_status):
            lines.append(f"        {_text(value) if isinstance(value, str) else value},")
        lines.append(f"        {_text(row.message)},")
        lines.append(f"        {_text(row.remedy)},")
        lines.append("    ),")
    lines.append(")")
    lines.append("")
    aliases = ", ".join(f"{alias}: {code}" for alias, code in LEGACY_ALIASES.items())
    lines.append("#: Codes accepted on input as another code's alias; never emitted.")
    lines.append(f"LEGACY_ALIASES: Final[dict[int, int]] = {{{aliases}}}")
    lines.append("")
    return "\n".join(lines)


def render_typescript() -> str:
    """``sdk/typescript/src/catalogue.ts``: the rows as a frozen, typed table."""
    lines = [
        f"// {_GENERATED}; do not edit by hand.",
        "",
        "/** Fatal codes end the session; diagnostic codes are recorded once and never end it. */",
        'export type Kind = "fatal" | "diagnostic";',
        "/** Whether trying again can change the outcome. */",
        'export type RetryClass = "permanent" | "transient";',
        "",
        "/** One row of the service's error catalogue. */",
        "export interface ErrorCode {",
        "  readonly code: number;",
        "  readonly name: string;",
        "  readonly kind: Kind;",
        "  readonly retry: RetryClass;",
        "  readonly httpStatus: number;",
        "  readonly message: string;",
        "  readonly remedy: string;",
        "}",
        "",
        "/** Every code, in catalogue order. */",
        "export const CATALOGUE: readonly ErrorCode[] = Object.freeze([",
    ]
    for row in CATALOGUE.values():
        lines.append("  Object.freeze({")
        lines.append(f"    code: {row.code},")
        lines.append(f"    name: {_text(row.name)},")
        lines.append(f"    kind: {_text(row.kind.value)},")
        lines.append(f"    retry: {_text(row.retry.value)},")
        lines.append(f"    httpStatus: {row.http_status},")
        lines.append(f"    message: {_text(row.message)},")
        lines.append(f"    remedy: {_text(row.remedy)},")
        lines.append("  }),")
    lines.append("]);")
    lines.append("")
    aliases = ", ".join(f'"{alias}": {code}' for alias, code in LEGACY_ALIASES.items())
    lines.append("/** Codes accepted on input as another code's alias; never emitted. */")
    lines.append(
        f"export const LEGACY_ALIASES: Readonly<Record<string, number>> = "
        f"Object.freeze({{ {aliases} }});"
    )
    lines.append("")
    names = ", ".join(f"{row.name}: {row.code}" for row in CATALOGUE.values())
    lines.append("/** Code numbers by name. */")
    lines.append(f"export const CODES = Object.freeze({{ {names} }} as const);")
    lines.append("")
    return "\n".join(lines)


TARGETS = {PYTHON_TARGET: render_python, TYPESCRIPT_TARGET: render_typescript}


def main(argv: list[str]) -> int:
    """``--write`` rewrites both copies; ``--check`` exits 1 naming a stale one."""
    if argv not in (["--write"], ["--check"]):
        print("usage: python -m bioverify.errors_sdk --write | --check", file=sys.stderr)
        return 2
    stale = [path for path, render in TARGETS.items() if _read(path) != render()]
    if argv == ["--check"]:
        for path in stale:
            print(f"{path.relative_to(REPO_ROOT)} is stale", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(TARGETS[path](), encoding="utf-8")
    return 0


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
