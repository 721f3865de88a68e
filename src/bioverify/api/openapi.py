"""The OpenAPI document, made exact: credentials as alternatives, public routes public.

FastAPI lists every credential header a route depends on as one security
requirement (all of them at once, so ``SLC`` looked required beside
``clientSecret``). API.md section 3 has three alternatives instead: key + client id +
secret, key + client id + SLC, and the key alone (key-only clients). Routes without
integrator credentials say so with an empty requirement list.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

#: Security scheme names (``scheme_name`` of the headers in ``api.deps``).
API_KEY, CLIENT_ID, CLIENT_SECRET, SLC = "apiKey", "clientId", "clientSecret", "slc"

#: API.md section 3: the ways an integrator may authenticate, any one of them.
INTEGRATOR_SECURITY: list[dict[str, list[str]]] = [
    {API_KEY: [], CLIENT_ID: [], CLIENT_SECRET: []},
    {API_KEY: [], CLIENT_ID: [], SLC: []},
    {API_KEY: []},
]

#: Routes whose path serves both integrators (a session id) and capture clients (a
#: capture token, which is the credential): no integrator credential is required.
_EITHER = {("get", "/v2/verification-session/{sessionId}")}

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def exact_security(schema: dict[str, Any]) -> None:
    """Rewrite each operation's ``security`` as API.md defines it (in place)."""
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            declared = operation.get("security") or []
            if any(API_KEY in requirement for requirement in declared):
                operation["security"] = [dict(r) for r in INTEGRATOR_SECURITY]
            elif (method, path) in _EITHER:
                operation["security"] = [{}, *(dict(r) for r in INTEGRATOR_SECURITY)]
            else:
                operation["security"] = []  # public (or the capture token in the path)


def install_openapi(app: FastAPI, models: list[type[Any]]) -> None:
    """Serve the exact document, with the self-parsed request bodies' schemas added."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in model_schema.pop("$defs", {}).items():
                components.setdefault(name, sub)
            components[model.__name__] = model_schema
        exact_security(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = ["INTEGRATOR_SECURITY", "exact_security", "install_openapi"]
