"""Turning pydantic validation problems into one sentence a person can act on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from bioverify.errors import BadRequest

M = TypeVar("M", bound=BaseModel)


def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for part in parts:
        if part.isdigit():
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def describe_validation(problems: Sequence[Any], prefix: str = "") -> str:
    """One sentence naming the field and what is wrong with it (the first problem).

    ``prefix`` names where the validated object sits (``indicators``), so the field
    reads ``indicators.headless.webdriver``.
    """
    if not problems:
        return "The request is not valid"
    first = problems[0]
    kind = first.get("type", "")
    field = _field((prefix, *first.get("loc", ())) if prefix else first.get("loc", ()))
    if kind == "json_invalid":
        return "The request body is not valid JSON"
    if kind in {"model_type", "model_attributes_type", "dict_type"} and not field:
        return "The request body must be a JSON object"
    if kind == "missing":
        return f"{field} is required"
    if kind == "extra_forbidden":
        return f"{field} is not a known field"
    message = str(first.get("msg", "is not valid"))
    message = message.removeprefix("Value error, ")
    return f"{field}: {message}" if field else message


def parse_model(model: type[M], raw: object, *, prefix: str = "") -> M:
    """Validate ``raw`` as ``model``; a 400 naming the first bad field otherwise."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise BadRequest(describe_validation(exc.errors(), prefix)) from None


__all__ = ["describe_validation", "parse_model"]
