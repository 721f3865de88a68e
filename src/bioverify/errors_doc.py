"""Renders ``docs/errors.md`` from the catalogue (a test fails when the page is stale).

Regenerate with ``python -m bioverify.errors_doc > docs/errors.md``.
"""

from __future__ import annotations

from bioverify.errors import CATALOGUE, LEGACY_ALIASES, Kind


def render() -> str:
    lines = [
        "# Error codes",
        "",
        "Generated from `bioverify.errors.CATALOGUE` by `python -m bioverify.errors_doc`; "
        "do not edit by hand.",
        "",
        "- **fatal** codes end the session (`FAILED`) and fire the final webhook;",
        "- **diagnostic** codes are recorded at most once per session and never end it "
        "(except that a session whose `maxAttempts` no-face attempts are spent fails with "
        "-22);",
        "- **permanent**: do not retry, the outcome stands; **transient**: retry after the "
        "remedy (in a new session for fatal codes).",
        "",
        "| Code | Name | Kind | Retry | HTTP | Message | Remedy | Raised by |",
        "|---:|---|---|---|---:|---|---|---|",
    ]
    for row in CATALOGUE.values():
        lines.append(
            f"| {row.code} | {row.name} | {row.kind} | {row.retry} | "
            f"{row.http_status} | {row.message} | {row.remedy} | {row.raised_by} |"
        )
    lines += ["", "## Legacy aliases", ""]
    for alias, code in LEGACY_ALIASES.items():
        lines.append(
            f"- `{alias}` is accepted on input as `{code}` "
            f"({CATALOGUE[code].name}) and never emitted."
        )
    fatal = ", ".join(str(r.code) for r in CATALOGUE.values() if r.kind is Kind.FATAL)
    diagnostic = ", ".join(str(r.code) for r in CATALOGUE.values() if r.kind is Kind.DIAGNOSTIC)
    lines += ["", f"Fatal: {fatal}. Diagnostic: {diagnostic}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
