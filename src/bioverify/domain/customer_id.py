"""The rule for integrator customer ids (API.md section 3), in one place.

PrivateID integrations use e-mail addresses, names and opaque ids as customer ids,
so anything a person could type is accepted: 1 to 128 Unicode characters, no
control characters (they break logs, headers and terminals), not only spaces.
"""

from __future__ import annotations

import unicodedata

MAX_LENGTH = 128

#: Cc: C0/C1 controls (newlines, tabs, NUL); Zl/Zp: line and paragraph separators.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


def customer_id_problem(value: str) -> str | None:
    """Why ``value`` is not a valid customer id, or ``None`` when it is."""
    if not 1 <= len(value) <= MAX_LENGTH:
        return f"must be 1 to {MAX_LENGTH} characters (got {len(value)})"
    if not value.strip():
        return "must not be only spaces"
    for char in value:
        if unicodedata.category(char) in _FORBIDDEN_CATEGORIES or "\ud800" <= char <= "\udfff":
            return f"must not contain control characters (found U+{ord(char):04X})"
    return None


def is_valid_customer_id(value: str) -> bool:
    return customer_id_problem(value) is None


__all__ = ["MAX_LENGTH", "customer_id_problem", "is_valid_customer_id"]
